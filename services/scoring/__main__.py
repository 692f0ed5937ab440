from services.scoring import SERVICE
from shared.service import main

main(SERVICE)

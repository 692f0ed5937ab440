from services.identity import SERVICE
from shared.service import main

main(SERVICE)

from services.supervision import SERVICE
from shared.service import main

main(SERVICE)

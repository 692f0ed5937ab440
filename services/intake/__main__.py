from services.intake import SERVICE
from shared.service import main

main(SERVICE)

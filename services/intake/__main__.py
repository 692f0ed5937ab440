from services.intake.app import SERVICE
from shared.service import main

main(SERVICE)

from services.ballot import SERVICE
from shared.service import main

main(SERVICE)

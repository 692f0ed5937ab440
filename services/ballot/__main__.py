# Guarded: the counting workers (multiprocessing, spawn) import this module as __mp_main__
# and must not start a server, nor import the web stack.
if __name__ == "__main__":
    from services.ballot.service import SERVICE
    from shared.service import main

    main(SERVICE)

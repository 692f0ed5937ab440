"""piaojue command line: run the services, replay the Fuyu 2024 scenario, mint tokens."""

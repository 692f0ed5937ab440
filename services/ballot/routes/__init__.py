"""HTTP routes of the ballot service: thin, they load, call the domain, save."""

"""票决 ballot: sessions, roll call, quorum, sealed secret ballots, tellers' keys, tally, certification.
Wiring: ``services.ballot.service``; the pure rules: ``services.ballot.domain``."""

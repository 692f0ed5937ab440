"""The ballot domain (票决), pure: no I/O, no web stack, no database driver.

``rules`` (quorum, validity, tally, passing, ranking, rounds, ratings), ``vote`` (the vote as an
aggregate: its states, refusals, rounds, result and certification), ``ballots`` (the ballot's
compact form, trackers and commitments), ``sealing`` (the cipher suites and the tellers' shares),
``session`` (a session's life and the roster's changes). The recount command needs only this."""

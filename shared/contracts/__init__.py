"""Event contracts: the envelope and every payload, the only code two services share about each other."""

from shared.contracts.envelope import EVENTS, Envelope, PoisonMessage, event, parse

__all__ = ["EVENTS", "Envelope", "PoisonMessage", "event", "parse"]

# Importing the producer modules registers their payloads.
from shared.contracts import ballot, identity, intake, scoring, supervision  # noqa: E402,F401

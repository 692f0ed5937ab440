"""Password and code hashing (argon2id), and the hashes of opaque tokens and device keys."""

from __future__ import annotations

import asyncio
import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) parameters: passwords
# A deputy's personal code is a few digits, guarded by the lock-out after a few wrong tries rather
# than by the hash's cost; a lighter argon2id keeps a hall of deputies checking in at once cheap.
_code_hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
_DUMMY = _hasher.hash("no account has this password")


async def hash_secret(secret: str, code: bool = False) -> str:
    """``code``: a deputy's personal code (the lighter parameters)."""
    return await asyncio.to_thread((_code_hasher if code else _hasher).hash, secret)  # CPU-bound: not on the event loop


async def verify_secret(stored: str | None, secret: str) -> bool:
    """Whether ``secret`` matches; an unknown account is checked against a dummy hash, so that
    the answer takes as long as for a real one."""

    def check() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY, secret) and stored is not None  # verify reads the parameters from the hash
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def digest(value: str) -> str:
    """SHA-256 of a high-entropy value (refresh token, device key): enough, and fast to look up."""
    return hashlib.sha256(value.encode()).hexdigest()

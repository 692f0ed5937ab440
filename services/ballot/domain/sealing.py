"""Sealed ballots and the tellers' key (监票人密钥分持). Pure computation, maintained libraries only.

Each round of a secret electronic vote has a key of its own. At the opening the service draws a
16-byte round secret in memory, derives the round's key pair from it, splits the secret k of n
among the session's tellers (Shamir, pycryptodome), seals each share to that teller's own public
key, keeps a commitment to each share and the round's public key, and forgets the secret. A cast
seals the compact ballot to the round's public key. At close, k tellers present their shares;
the secret is rebuilt in memory, checked against the public key, and the sealed ballots opened.

Cipher suites sit behind ``Suite`` so that the national SM2/SM3/SM4 suite (密评, GB/T 39786) can be
configured instead of the default:

- ``x25519-hkdf-sha256-aes128gcm``: HPKE (RFC 9180, base mode), ``cryptography``;
- ``sm2-sm3-sm4``: an SM2 digital envelope (数字信封) of an SM4-GCM key, SM3 for derivation;
  SM2 from ``gmalg`` (pure Python: ~16 ms a seal, fit for a township, not a province-wide sitting),
  SM3 and SM4 from ``cryptography``. Install with ``pip install 'piaojue[gm]'``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from Crypto.Protocol.SecretSharing import Shamir
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.ballot.domain.refusal import Refused, Why

SECRET_BYTES = 16  # Shamir over GF(2^128) in pycryptodome splits 16-byte secrets


class Unopenable(Exception):
    """A sealed ballot or share that does not open with the key (tampered, or not of this round)."""


class Suite(Protocol):
    name: str

    def keypair(self) -> tuple[bytes, bytes]:
        """A fresh (private, public) pair, e.g. a teller's."""

    def derive(self, secret: bytes, info: bytes) -> tuple[bytes, bytes]:
        """The (private, public) pair a round secret stands for."""

    def seal(self, public: bytes, plaintext: bytes, info: bytes) -> bytes: ...

    def sealer(self, public: bytes) -> Callable[[bytes, bytes], bytes]:
        """``seal`` with the public key parsed once, for a round's many ballots."""

    def open(self, private: bytes, sealed: bytes, info: bytes) -> bytes:
        """The plaintext, or ``Unopenable``."""

    def opener(self, private: bytes) -> Callable[[bytes, bytes], bytes]:
        """``open`` with the private key parsed once, for many sealed ballots."""


class HpkeX25519:
    """HPKE base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM; a fresh ephemeral key
    per seal, ``info`` bound into the key schedule."""

    name = "x25519-hkdf-sha256-aes128gcm"

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import hpke
        from cryptography.hazmat.primitives.asymmetric import x25519

        self._x25519 = x25519
        self._hpke = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)

    def keypair(self) -> tuple[bytes, bytes]:
        return self._pair(self._x25519.X25519PrivateKey.generate())

    def derive(self, secret: bytes, info: bytes) -> tuple[bytes, bytes]:
        raw = HKDF(hashes.SHA256(), 32, salt=None, info=b"piaojue/round-key/" + info).derive(secret)
        return self._pair(self._x25519.X25519PrivateKey.from_private_bytes(raw))

    def seal(self, public: bytes, plaintext: bytes, info: bytes) -> bytes:
        return self.sealer(public)(plaintext, info)

    def sealer(self, public: bytes) -> Callable[[bytes, bytes], bytes]:
        key = self._x25519.X25519PublicKey.from_public_bytes(public)
        return lambda plaintext, info: self._hpke.encrypt(plaintext, key, info)

    def open(self, private: bytes, sealed: bytes, info: bytes) -> bytes:
        return self.opener(private)(sealed, info)

    def opener(self, private: bytes) -> Callable[[bytes, bytes], bytes]:
        key = self._x25519.X25519PrivateKey.from_private_bytes(private)  # ~40 µs: once, not per ballot

        def open_one(sealed: bytes, info: bytes) -> bytes:
            try:
                return self._hpke.decrypt(sealed, key, info)
            except (InvalidTag, ValueError) as exc:
                raise Unopenable(str(exc) or "does not open") from exc

        return open_one

    def _pair(self, key) -> tuple[bytes, bytes]:
        from cryptography.hazmat.primitives import serialization as s

        return (key.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption()),
                key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw))


class Sm2Sm3Sm4:
    """SM2 public-key encryption (GB/T 32918.4) of a fresh SM4 key; SM4-GCM of the plaintext with
    ``info`` as associated data; SM3-HKDF to derive a round's SM2 key from its secret."""

    name = "sm2-sm3-sm4"
    ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)  # n of the SM2 curve

    def __init__(self) -> None:
        import gmalg  # optional: pip install 'piaojue[gm]'

        self._sm2 = gmalg.SM2

    def keypair(self) -> tuple[bytes, bytes]:
        return self.derive(os.urandom(32), b"keypair")

    def derive(self, secret: bytes, info: bytes) -> tuple[bytes, bytes]:
        raw = HKDF(hashes.SM3(), 40, salt=None, info=b"piaojue/round-key/" + info).derive(secret)
        private = (int.from_bytes(raw, "big") % (self.ORDER - 1) + 1).to_bytes(32, "big")
        return private, self._sm2().generate_pk(private)

    def seal(self, public: bytes, plaintext: bytes, info: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        key, nonce = os.urandom(16), os.urandom(12)
        wrapped = self._sm2(pk=public).encrypt(key)
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(info)
        body = enc.update(plaintext) + enc.finalize() + enc.tag
        return len(wrapped).to_bytes(2, "big") + wrapped + nonce + body

    def open(self, private: bytes, sealed: bytes, info: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        try:
            n = int.from_bytes(sealed[:2], "big")
            wrapped, nonce, body = sealed[2:2 + n], sealed[2 + n:14 + n], sealed[14 + n:]
            key = self._sm2(sk=private, pk=self._sm2().generate_pk(private)).decrypt(wrapped)
            dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, body[-16:])).decryptor()
            dec.authenticate_additional_data(info)
            return dec.update(body[:-16]) + dec.finalize()
        except Exception as exc:  # noqa: BLE001 — any failure to open is the same answer: it does not open
            raise Unopenable(str(exc) or "does not open") from exc

    def opener(self, private: bytes) -> Callable[[bytes, bytes], bytes]:
        return lambda sealed, info: self.open(private, sealed, info)

    def sealer(self, public: bytes) -> Callable[[bytes, bytes], bytes]:
        return lambda plaintext, info: self.seal(public, plaintext, info)


SUITES = {HpkeX25519.name: HpkeX25519, Sm2Sm3Sm4.name: Sm2Sm3Sm4}
DEFAULT_SUITE = HpkeX25519.name
_made: dict[str, Suite] = {}


def suite(name: str = DEFAULT_SUITE) -> Suite:
    if name not in SUITES:
        raise Refused(Why.INVALID, "unknown-suite", f"cipher suite {name!r} is not one of {', '.join(SUITES)}")
    if name not in _made:
        try:
            _made[name] = SUITES[name]()
        except ImportError as exc:
            raise Refused(Why.CONFLICT, "suite-not-installed", f"cipher suite {name} needs {exc.name}: "
                          "pip install 'piaojue[gm]'") from exc
    return _made[name]


def round_info(vote_id: object, round_: int) -> bytes:
    """What a round's sealed ballots and shares are bound to: one round of one vote."""
    return f"piaojue/{vote_id}/{round_}".encode()


def fingerprint(public: bytes) -> str:
    """A short form of a public key that a teller compares by eye: 4 groups of 4 hex digits."""
    h = hashlib.sha256(public).hexdigest()[:16]
    return "-".join(h[i:i + 4] for i in range(0, 16, 4))


# ---------------------------------------------------------------- the round key and the tellers' shares


@dataclass(frozen=True)
class TellerKey:
    teller_id: str
    public_key: bytes


@dataclass(frozen=True)
class SealedShare:
    """One teller's share of a round key, sealed to the teller's public key, and its commitment."""

    teller_id: str
    index: int
    teller_key: bytes
    sealed: bytes
    commitment: str


@dataclass(frozen=True)
class RoundKey:
    """What is kept of a round's key while the round is open: nothing that opens a ballot."""

    suite: str
    public_key: bytes
    threshold: int
    shares: list[SealedShare]


def share_commitment(info: bytes, index: int, share: bytes) -> str:
    return hashlib.sha256(b"piaojue/share/" + info + b"/" + str(index).encode() + b"/" + share).hexdigest()


def _share_info(info: bytes, teller_id: str, index: int) -> bytes:
    return info + f"/share/{teller_id}/{index}".encode()


def make_round_key(suite_name: str, tellers: list[TellerKey], threshold: int, info: bytes) -> RoundKey:
    """Draw a round secret, split it k of n among the tellers, seal each share to its teller; the
    secret and the private key go out of scope here and are never stored."""
    if not 1 <= threshold <= len(tellers):
        raise Refused(Why.CONFLICT, "bad-threshold", f"{threshold} of {len(tellers)} tellers cannot open a round")
    chosen = suite(suite_name)
    secret = os.urandom(SECRET_BYTES)
    _, public = chosen.derive(secret, info)
    shares = []
    for teller, (index, share) in zip(tellers, Shamir.split(threshold, len(tellers), secret), strict=True):
        sealed = chosen.seal(teller.public_key, share, _share_info(info, teller.teller_id, index))
        shares.append(SealedShare(teller.teller_id, index, teller.public_key, sealed, share_commitment(info, index, share)))
    return RoundKey(suite_name, public, threshold, shares)


def open_share(suite_name: str, teller_private: bytes, share: SealedShare, info: bytes) -> bytes:
    """What a teller does on their own device: open their sealed share with their private key."""
    return suite(suite_name).open(teller_private, share.sealed, _share_info(info, share.teller_id, share.index))


def check_share(share: SealedShare, presented: bytes, info: bytes) -> None:
    """A presented share must be the one committed to for this teller: else it is refused, clearly."""
    if len(presented) != SECRET_BYTES or share_commitment(info, share.index, presented) != share.commitment:
        raise Refused(Why.INVALID, "wrong-share", f"this is not teller {share.teller_id}'s share of this round's key")


def recover_private_key(suite_name: str, public_key: bytes, shares: list[tuple[int, bytes]], info: bytes) -> bytes:
    """Rebuild the round's private key from k checked shares; it must match the round's public key."""
    private, public = suite(suite_name).derive(Shamir.combine(shares), info)
    if public != public_key:
        raise Refused(Why.CONFLICT, "shares-do-not-combine", "the shares do not rebuild this round's key")
    return private


def open_batch(suite_name: str, private: bytes, info: bytes, sealed: list[bytes]) -> list[tuple[str, str | None]]:
    """Open sealed ballots: (tracker, compact ballot or None for one that does not open). Runs in a
    worker process for a large round (module-level and light to import for that reason)."""
    open_one, out = suite(suite_name).opener(private), []
    for blob in sealed:
        try:
            ballot = open_one(blob, info).decode("ascii")
        except (Unopenable, UnicodeDecodeError):
            ballot = None
        out.append((hashlib.sha256(blob).hexdigest(), ballot))
    return out


def presented_info(info: bytes, teller_id: str) -> bytes:
    """A presented share is sealed to the counting process's key, bound to the round and the teller."""
    return info + f"/presented/{teller_id}".encode()

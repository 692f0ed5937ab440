"""Signed access tokens: the keys (JWK), the claims, and signing. One module for both signers:
the identity service (production) and ``shared.auth.mint`` (development and tests), so that a
test token is exactly what identity would issue.

Keys are asymmetric (EdDSA/Ed25519 by default, or ES256): identity alone holds the private key;
every service verifies with the public keys (``shared/auth.py``). A key's id (``kid``) is its
RFC 7638 thumbprint, so the same key always has the same id and rotation is by id."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

ALGORITHMS = ("EdDSA", "ES256")  # never HS*, never none
STAFF_AUDIENCE = "piaojue"  # accounts and machine accounts: every service
SESSION_AUDIENCE = "piaojue-ballot"  # a deputy's voting credential, the hall's display: ballot only
_KTY = {"EdDSA": ("OKP", "Ed25519"), "ES256": ("EC", "P-256")}

# The DEVELOPMENT keys. Public on purpose: anyone can sign with them, so a process in production
# mode refuses to start while it would trust one of them (shared.auth.production_problems).
DEVELOPMENT_KEYS: dict[str, dict[str, str]] = {
    "EdDSA": {"kty": "OKP", "crv": "Ed25519", "x": "QfrA8DyRXxH_MNTkQ7lT5cD1tx21n-k-C3ARbz0-8KQ",
              "d": "KFooyNXmsw7-ECP2qSxnCnlIjHPeaPvHD9yH-C3tLnY"},
    "ES256": {"kty": "EC", "crv": "P-256", "x": "HCQ5BNz8lPbT9AkWLYfbZZjxtD7FGTmTlhwmS5ne0JI",
              "y": "-JRhD9BSmJwPx-1h6-0PBvXn3wuCNTUbQm10G5zUbFQ", "d": "8f4llzRj-SDL9mr5iF5cs4i7eoG79uw5ryqjSFt4hwk"},
}


class KeyError_(ValueError):
    """Not a usable key (a placeholder, a secret of the old kind, a key of the wrong type)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: the hash of the key's public members, the key's id."""
    members = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}.get(jwk.get("kty", ""))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise KeyError_(f"not an OKP (Ed25519) or EC (P-256) public key: kty={jwk.get('kty')!r}")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def algorithm_of(jwk: dict[str, Any]) -> str:
    for alg, (kty, crv) in _KTY.items():
        if jwk.get("kty") == kty and jwk.get("crv") == crv:
            return alg
    raise KeyError_(f"unsupported key type {jwk.get('kty')!r}/{jwk.get('crv')!r}: use Ed25519 (EdDSA) or P-256 (ES256)")


def public_jwk(jwk: dict[str, Any]) -> dict[str, str]:
    """The public half of a JWK, with its algorithm and id."""
    alg = algorithm_of(jwk)
    public = {k: jwk[k] for k in ("kty", "crv", "x", "y") if k in jwk}
    return {**public, "alg": alg, "use": "sig", "kid": thumbprint(public)}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any  # a cryptography private key object
    public: dict[str, str]  # its public JWK, as published


def parse_jwk(text: str | dict[str, Any]) -> dict[str, Any]:
    try:
        jwk = json.loads(text) if isinstance(text, str) else text
    except ValueError as exc:
        raise KeyError_("not a JWK (JSON): generate one with `piaojue keys generate`") from exc
    if not isinstance(jwk, dict):
        raise KeyError_("not a JWK (a JSON object)")
    return jwk


def signing_key(text: str | dict[str, Any]) -> SigningKey:
    """A private JWK as the identity service is given it (``PIAOJUE_AUTH_SIGNING_KEY``)."""
    jwk = parse_jwk(text)
    alg = algorithm_of(jwk)
    if "d" not in jwk:
        raise KeyError_("a public key: the signing key must be the private JWK (with 'd')")
    try:
        private = jwt.PyJWK({k: v for k, v in jwk.items() if k not in ("kid", "alg", "use")}, alg).key
    except jwt.PyJWTError as exc:
        raise KeyError_(f"not a valid {alg} key: {exc}") from exc
    return SigningKey(thumbprint(jwk), alg, private, public_jwk(jwk))


def generate(algorithm: str = "EdDSA") -> dict[str, str]:
    """A new private JWK (with its kid) for ``piaojue keys generate``."""
    if algorithm == "EdDSA":
        jwk = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate(), as_dict=True)
    elif algorithm == "ES256":
        jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    else:
        raise KeyError_(f"unsupported algorithm {algorithm!r}: one of {', '.join(ALGORITHMS)}")
    return {**jwk, "alg": algorithm, "kid": thumbprint(jwk)}


def development_key(algorithm: str) -> SigningKey:
    return signing_key(DEVELOPMENT_KEYS[algorithm])


def token_claims(sub: str, role: str, jurisdiction: str, ttl_s: int, issuer: str, name: str = "", *,
                 term: int | None = None, session: UUID | str | None = None, unit: str | None = None,
                 credential: UUID | str | None = None, now: int | None = None) -> dict[str, Any]:
    """The claims of every access token. A session's credential (a deputy's, the hall display's)
    names the session and is for the ballot service only; other tokens are for every service.
    A deputy is (jurisdiction, term, deputy id = sub), never the id alone: a deputy's token carries ``term``."""
    now = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer, "aud": SESSION_AUDIENCE if session else STAFF_AUDIENCE, "sub": sub, "role": str(role),
        "jurisdiction": jurisdiction, "name": name, "iat": now, "exp": now + ttl_s, "jti": uuid4().hex,
    }
    extra = {"term": term, "session": session and str(session), "unit": unit,
             "cid": credential and str(credential)}
    return claims | {k: v for k, v in extra.items() if v is not None}


def sign(claims: dict[str, Any], key: SigningKey) -> str:
    return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid})

"""Tokens only the issuer can sign (shared/tokens.py, shared/auth.py): every token that is not a
fresh, well-formed one signed by a trusted key is refused with a stable code; production mode
refuses missing, development and placeholder keys. Pure: no I/O."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import tokens
from shared.auth import KeyRing, Role, TokenRefused, production_problems, verify
from shared.settings import Settings

KEY = tokens.generate("EdDSA")
OTHER = tokens.generate("EdDSA")
EC_KEY = tokens.generate("ES256")
JWKS = json.dumps({"keys": [tokens.public_jwk(KEY), tokens.public_jwk(EC_KEY)]})
SETTINGS = Settings(auth_signing_key=json.dumps(KEY), auth_jwks=JWKS, auth_jwks_url="")
AUDIENCES = (tokens.STAFF_AUDIENCE, "piaojue-ballot")


def claims(**over) -> dict:
    return tokens.token_claims("fuyu-office", "office", "taihu.fuyu", 900, SETTINGS.auth_issuer) | over


def signed(key: dict, **over) -> str:
    return tokens.sign({k: v for k, v in claims(**over).items() if v is not None}, tokens.signing_key(key))


async def refused(token: str, audiences=AUDIENCES) -> str:
    with pytest.raises(TokenRefused) as exc:
        await verify(token, audiences, SETTINGS)
    return exc.value.code


async def test_a_token_signed_by_the_issuer_names_the_caller():
    who = await verify(signed(KEY, unit="交通办"), AUDIENCES, SETTINGS)
    assert (who.sub, who.role, who.jurisdiction, who.unit, who.own) == ("fuyu-office", Role.OFFICE, "taihu.fuyu", "交通办", False)
    ec = await verify(signed(EC_KEY), AUDIENCES, SETTINGS)  # the algorithm follows the key
    assert ec.sub == "fuyu-office"


async def test_an_expired_token_is_refused_as_expired():
    now = int(time.time())
    assert await refused(signed(KEY, iat=now - 3600, exp=now - 60)) == "token-expired"


async def test_a_token_without_exp_is_refused():
    assert await refused(signed(KEY, exp=None)) == "token-claims-invalid"


async def test_a_token_signed_with_the_old_shared_secret_is_refused():
    old = jwt.encode(claims(), "piaojue-local-development-secret", algorithm="HS256")
    assert await refused(old) == "token-algorithm-refused"
    # ...even if it names the id of a trusted key (no algorithm confusion with the public key).
    confused = jwt.encode(claims(), "x" * 32, algorithm="HS256", headers={"kid": tokens.public_jwk(KEY)["kid"]})
    assert await refused(confused) == "token-algorithm-refused"


async def test_an_unsigned_token_is_refused():
    assert await refused(jwt.encode(claims(), None, algorithm="none")) == "token-algorithm-refused"


async def test_a_token_signed_by_another_key_is_refused():
    assert await refused(signed(OTHER)) == "token-signature-invalid"
    # Another key claiming a trusted key's id does not verify either.
    forged = jwt.encode(claims(), tokens.signing_key(OTHER).private, algorithm="EdDSA",
                        headers={"kid": tokens.public_jwk(KEY)["kid"]})
    assert await refused(forged) == "token-signature-invalid"


async def test_the_development_key_is_not_trusted_where_keys_are_configured():
    assert await refused(tokens.sign(claims(), tokens.development_key("EdDSA"))) == "token-signature-invalid"


async def test_a_session_credential_is_for_the_ballot_service_only():
    credential = signed(KEY, aud=tokens.SESSION_AUDIENCE)
    assert await refused(credential, (tokens.STAFF_AUDIENCE, "piaojue-intake")) == "token-claims-invalid"
    assert (await verify(credential, (tokens.STAFF_AUDIENCE, "piaojue-ballot"), SETTINGS)).sub == "fuyu-office"


async def test_a_token_of_another_issuer_or_with_an_unknown_role_is_refused():
    assert await refused(signed(KEY, iss="someone-else")) == "token-claims-invalid"
    assert await refused(signed(KEY, role="superuser")) == "token-claims-invalid"
    assert await refused(signed(KEY, jurisdiction=None)) == "token-claims-invalid"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
async def test_garbage_is_refused_as_malformed_never_an_error(garbage):
    assert await refused(garbage) in ("token-malformed", "token-algorithm-refused", "token-signature-invalid")


# Claims as a careless or hostile issuer could write them: each registered claim missing, of the
# wrong type, or with a value on either side of the checks (now, the 30 s leeway, our issuer and audiences).
# Times are seconds from now (added when the token is made, far from the leeway's edges in between).
_TIMES = st.sampled_from([-3600, -40, -20, 0, 20, 40, 3600])
_CLAIM = {
    "exp": _TIMES | st.floats(min_value=-100, max_value=100).filter(lambda t: abs(abs(t) - 30) > 5) | st.none(),
    "iat": _TIMES | st.none() | st.just([1]) | st.just("soon"),
    "nbf": _TIMES | st.none(),
    "iss": st.sampled_from([SETTINGS.auth_issuer, "someone-else", None]),  # PyJWT will not sign another type
    "aud": st.sampled_from([tokens.STAFF_AUDIENCE, "piaojue-ballot", "piaojue-intake", None, [], ["x", "piaojue"], [1], 3]),
    "sub": st.sampled_from(["fuyu-office", None, 12, ["a"]]),
    "jti": st.sampled_from(["abc", None, 5]),
}


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({name: values for name, values in _CLAIM.items()}))
async def test_claims_are_judged_as_pyjwt_judges_them(over):
    """The decoder of ``verify`` is our own (PyJWT's walks every character in Python): on any claims,
    it accepts exactly what PyJWT's decode accepts with the same options, and refuses the rest with our codes."""
    now = int(time.time())
    over = {k: now + v if k in ("exp", "iat", "nbf") and isinstance(v, int | float) else v for k, v in over.items()}
    token = tokens.sign({k: v for k, v in claims(**over).items() if v is not None}, tokens.signing_key(KEY))
    try:
        jwt.decode(token, tokens.signing_key(KEY).private.public_key(), algorithms=["EdDSA"], audience=list(AUDIENCES),
                   issuer=SETTINGS.auth_issuer, options={"require": ["exp", "iat", "iss", "aud", "sub"]}, leeway=30)
        pyjwt = "accepted"
    except jwt.ExpiredSignatureError:
        pyjwt = "token-expired"
    except jwt.PyJWTError:
        pyjwt = "token-claims-invalid"
    try:
        ours = "accepted" if await verify(token, AUDIENCES, SETTINGS) else "?"
    except TokenRefused as exc:
        ours = exc.code
    assert ours == pyjwt


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.sampled_from("AaQw_-.=+/ "), st.sampled_from(["put", "drop", "insert"]))
async def test_a_token_changed_anywhere_is_refused(at, char, how):
    token = signed(KEY)
    at %= len(token)
    changed = {"put": token[:at] + char + token[at + 1:], "drop": token[:at] + token[at + 1:],
               "insert": token[:at] + char + token[at:]}[how]
    if changed == token:
        return
    try:
        jwt.decode(changed, tokens.signing_key(KEY).private.public_key(), algorithms=["EdDSA"], audience=list(AUDIENCES),
                   issuer=SETTINGS.auth_issuer, options={"require": ["exp", "iat", "iss", "aud", "sub"]}, leeway=30)
        assert False, "PyJWT accepted a changed token"  # noqa: B011 (only the signature's padding bits could; never here)
    except jwt.PyJWTError:
        pass
    assert await refused(changed) in ("token-malformed", "token-algorithm-refused", "token-signature-invalid")


async def test_an_oversized_token_is_refused_without_parsing():
    assert await refused(signed(KEY) + "A" * 10_000) == "token-malformed"
    assert await refused("eyJ" + "A" * 100_000) == "token-malformed"


async def test_an_unknown_key_id_is_looked_up_at_the_url_at_most_once_in_a_while():
    ring = KeyRing({"keys": []}, url="http://127.0.0.1:9/jwks", min_interval=60)  # nothing listens on port 9
    assert await ring.find("some-kid") is None
    first = ring.fetched_at
    assert await ring.find("another-kid") is None
    assert ring.fetched_at == first  # not asked again within the interval


def test_a_key_id_is_the_thumbprint_of_the_public_key():
    public = tokens.public_jwk(KEY)
    assert public["kid"] == tokens.thumbprint(public) == KEY["kid"]
    assert "d" not in public and public["alg"] == "EdDSA"
    assert tokens.public_jwk(tokens.generate("ES256"))["alg"] == "ES256"


# ---------------------------------------------------------------- production mode


def production(service: str = "ballot", **over) -> list[str]:
    base = {"env": "production", "database_url": "postgresql://piaojue:s3cret@db:5432/piaojue",
            "amqp_url": "amqp://piaojue:s3cret@mq:5672/", "auth_jwks": JWKS, "auth_signing_key": json.dumps(KEY)}
    return production_problems(Settings(**(base | over)), service)


def test_production_with_real_keys_may_start():
    assert production("ballot") == [] and production("identity") == []


def test_production_refuses_to_start_without_keys():
    assert any("PIAOJUE_AUTH_JWKS is not set" in p for p in production("intake", auth_jwks=""))
    assert any("PIAOJUE_AUTH_SIGNING_KEY is not set" in p for p in production("identity", auth_signing_key=""))


def test_production_refuses_the_development_key():
    development = tokens.DEVELOPMENT_KEYS["EdDSA"]
    assert any("development key" in p for p in production("scoring", auth_jwks=json.dumps(
        {"keys": [tokens.public_jwk(development)]})))
    assert any("development key" in p for p in production("identity", auth_signing_key=json.dumps(development)))


def test_production_refuses_placeholders():
    assert any("placeholder" in p for p in production("ballot", auth_jwks="CHANGE-ME-to-the-public-keys"))
    assert any("placeholder" in p for p in production("supervision",
                                                      database_url="postgresql://piaojue:CHANGE-ME@postgres.example.internal/p"))
    assert any("not a private key" in p for p in production("identity", auth_signing_key="change-me"))


def test_production_refuses_a_signing_key_the_services_would_not_trust():
    assert any("not in PIAOJUE_AUTH_JWKS" in p for p in production("identity", auth_signing_key=json.dumps(OTHER)))


def test_development_mode_never_refuses():
    assert production_problems(Settings(env="development", auth_jwks="", auth_signing_key=""), "identity") == []

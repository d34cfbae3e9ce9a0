"""Access-token keys: RFC 7638 key ids, signing and verification, rotation, and refusal of forged headers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mintplane.auth.keys import KeySet, load_private_key, load_public_keys, verification_key
from mintplane.common.errors import Unauthenticated

pytestmark = pytest.mark.unit

CLAIMS = {"user_id": "u-1", "session_id": "s-1", "address": "0x" + "ab" * 20, "chain": "eip155:1"}


def _sign(keys: KeySet, *, audience: str = "mintplane", expires_in: timedelta = timedelta(minutes=5)) -> str:
    # Issued now, at signing time: a module-level "now" goes stale when the suite runs for minutes.
    now = datetime.now(UTC)
    return keys.sign(issuer="mintplane-auth", audience=audience, issued_at=now, expires_at=now + expires_in,
                     **CLAIMS)


def _verify(keys: KeySet, token: str) -> object:
    return keys.verify(token, issuer="mintplane-auth", audience="mintplane")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_kid_is_the_rfc8037_thumbprint() -> None:
    # RFC 8037 appendix A.1 / A.3: this Ed25519 key's RFC 7638 thumbprint is kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k
    d = base64.urlsafe_b64decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
    key = verification_key(ed25519.Ed25519PrivateKey.from_private_bytes(d).public_key())
    assert key.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert key.jwk == {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                       "kid": key.kid, "alg": "EdDSA", "use": "sig"}


@pytest.mark.parametrize("private", [ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())])
def test_tokens_round_trip_and_carry_the_session(
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey,
) -> None:
    keys = KeySet(private)
    token = _sign(keys)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": keys.current.algorithm, "kid": keys.current.kid, "typ": "at+jwt"}
    claims = _verify(keys, token)
    assert (claims.user_id, claims.session_id, claims.address, claims.chain) == tuple(CLAIMS.values())  # type: ignore[attr-defined]


def test_rotation_keeps_old_tokens_valid_and_publishes_both_keys() -> None:
    old, new = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    old_token = _sign(KeySet(old))
    rotated = KeySet(new, [old.public_key()])
    assert _verify(rotated, old_token)
    assert [k["alg"] for k in rotated.jwks()] == ["EdDSA", "ES256"]
    assert all("d" not in jwk for jwk in rotated.jwks())  # public members only, never the private scalar
    with pytest.raises(Unauthenticated, match="unknown key"):
        _verify(KeySet(new), old_token)


def test_refuses_expired_foreign_audience_and_tampered_tokens() -> None:
    keys = KeySet(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(Unauthenticated, match="expired"):
        _verify(keys, _sign(keys, expires_in=timedelta(minutes=-1)))
    with pytest.raises(Unauthenticated):
        _verify(keys, _sign(keys, audience="elsewhere"))
    head, _body, sig = _sign(keys).split(".")
    forged_body = _b64(json.dumps({"sub": "admin"}).encode())
    with pytest.raises(Unauthenticated):
        _verify(keys, f"{head}.{forged_body}.{sig}")
    for garbage in ("", "a.b.c", "x" * 5000):
        with pytest.raises(Unauthenticated):
            _verify(keys, garbage)


def test_a_token_cannot_pick_its_own_algorithm() -> None:
    keys = KeySet(ed25519.Ed25519PrivateKey.generate())
    kid = keys.current.kid
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'kid': kid, 'typ': 'at+jwt'}).encode())}.{_b64(b'{}')}."
    with pytest.raises(Unauthenticated):
        _verify(keys, unsigned)
    # HS256 keyed with the public key bytes (the classic confusion attack)
    public = keys.current.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    hmac = jwt.api_jws.PyJWS().encode(b"{}", public, algorithm="HS256", headers={"kid": kid, "typ": "at+jwt"})
    with pytest.raises(Unauthenticated):
        _verify(keys, hmac)
    # a token that is not an access token (typ) is refused even if correctly signed
    other = jwt.encode({"sub": "x"}, keys._signing_key, algorithm="EdDSA", headers={"kid": kid})
    with pytest.raises(Unauthenticated, match="not an access token"):
        _verify(keys, other)


def test_pem_loading() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    assert verification_key(load_private_key(pem).public_key()).kid == verification_key(private.public_key()).kid
    publics = "\n".join(
        k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode() for k in (private, ec.generate_private_key(ec.SECP256R1()))
    )
    assert len(load_public_keys(publics)) == 2 and load_public_keys("") == []
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValueError, match="P-256"):
        KeySet(load_private_key(p384))

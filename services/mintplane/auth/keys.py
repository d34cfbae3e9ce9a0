"""Access tokens: asymmetric JWTs (PyJWT) signed by the current key and verified by any key of the set.

Why asymmetric: the gateway and other components verify tokens offline from ``GetJwks`` without being able
to mint them. Why a key *set*: rotating the signing key must not log everyone out, so keys being rotated
out stay in the set (verification only) until their last tokens expire. Key ids are RFC 7638 thumbprints,
so a key has the same ``kid`` wherever it is loaded and no kid has to be configured.

Tokens carry ``typ: at+jwt`` (RFC 9068), issuer, audience, subject (user id), ``sid`` (session id),
``addr``/``chain`` (what signed in), ``iat``/``exp`` and a ``jti``. Verification pins the algorithm to
the one the ``kid`` belongs to, so a token cannot choose a weaker algorithm for itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from mintplane.auth.settings import AuthSettings
from mintplane.common.errors import Unauthenticated
from mintplane.common.log import get_logger

log = get_logger(__name__)

TOKEN_TYPE = "at+jwt"  # noqa: S105  (a JWT "typ", not a secret)
MAX_TOKEN_CHARS = 4096
REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "iat", "exp", "jti"]
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.S)

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str
    algorithm: str
    public_key: PublicKey
    jwk: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    address: str
    chain: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verification_key(public_key: PublicKey) -> VerificationKey:
    """Public JWK, algorithm and RFC 7638 thumbprint (kid) of a supported public key."""
    members: tuple[str, ...]
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        algorithm, jwk = "EdDSA", OKPAlgorithm.to_jwk(public_key, as_dict=True)
        members = ("crv", "kty", "x")
    elif isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        algorithm, jwk = "ES256", ECAlgorithm.to_jwk(public_key, as_dict=True)
        members = ("crv", "kty", "x", "y")
    else:
        raise ValueError("JWT keys must be Ed25519 (EdDSA) or P-256 (ES256)")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    kid = _b64(hashlib.sha256(canonical.encode()).digest())
    public_jwk = {m: str(jwk[m]) for m in members} | {"kid": kid, "alg": algorithm, "use": "sig"}
    return VerificationKey(kid=kid, algorithm=algorithm, public_key=public_key, jwk=public_jwk)


def load_private_key(pem: str) -> PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("the JWT signing key must be an Ed25519 or P-256 private key")
    return key


def load_public_keys(pem_bundle: str) -> list[PublicKey]:
    keys: list[PublicKey] = []
    for block in _PEM_BLOCK.findall(pem_bundle):
        key = serialization.load_pem_public_key(block.encode())
        if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise ValueError("previous JWT keys must be Ed25519 or P-256 public keys")
        keys.append(key)
    return keys


class KeySet:
    """The signing key plus every key still accepted for verification (signing key first)."""

    def __init__(self, signing_key: PrivateKey, previous: list[PublicKey] | None = None) -> None:
        self._signing_key = signing_key
        self.current = verification_key(signing_key.public_key())
        self._keys: dict[str, VerificationKey] = {self.current.kid: self.current}
        for public_key in previous or []:
            key = verification_key(public_key)
            self._keys.setdefault(key.kid, key)

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> KeySet:
        previous = load_public_keys(settings.auth_jwt_previous_public_keys)
        if settings.auth_jwt_private_key is None:
            log.warning(
                "MINTPLANE_AUTH_JWT_PRIVATE_KEY is unset: signing access tokens with an ephemeral Ed25519 key; "
                "tokens will not survive a restart nor verify on other replicas (dev only)"
            )
            return cls(ed25519.Ed25519PrivateKey.generate(), previous)
        return cls(load_private_key(settings.auth_jwt_private_key.get_secret_value()), previous)

    def jwks(self) -> list[Mapping[str, str]]:
        return [key.jwk for key in self._keys.values()]

    def sign(
        self, *, issuer: str, audience: str, user_id: str, session_id: str, address: str, chain: str,
        issued_at: datetime, expires_at: datetime,
    ) -> str:
        claims: dict[str, Any] = {
            "iss": issuer, "aud": audience, "sub": user_id, "sid": session_id, "addr": address, "chain": chain,
            "iat": int(issued_at.timestamp()), "exp": int(expires_at.timestamp()), "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self.current.kid, "typ": TOKEN_TYPE}
        return jwt.encode(claims, self._signing_key, algorithm=self.current.algorithm, headers=headers)

    def verify(self, token: str, *, issuer: str, audience: str, leeway_seconds: int = 5) -> AccessClaims:
        """Claims of a valid token; UNAUTHENTICATED (with a reason, never the token) otherwise."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("access token is missing or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("access token is malformed") from None
        key = self._keys.get(str(header.get("kid", "")))
        if key is None:
            raise Unauthenticated("access token was signed by an unknown key")
        if header.get("typ") != TOKEN_TYPE:
            raise Unauthenticated("token is not an access token")
        try:
            claims = jwt.decode(
                token, key.public_key, algorithms=[key.algorithm], audience=audience, issuer=issuer,
                leeway=leeway_seconds, options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"access token is invalid ({type(exc).__name__})") from None
        return AccessClaims(
            user_id=str(claims["sub"]), session_id=str(claims["sid"]), address=str(claims.get("addr", "")),
            chain=str(claims.get("chain", "")), expires_at=int(claims["exp"]),
        )

"""The token pair a session hands out: a short-lived signed access token and an opaque refresh token.

Refresh tokens are 256 random bits (``secrets``) behind a recognisable prefix (``mpr_``, so secret
scanners and log redaction can spot them). Only their SHA-256 is stored. A plain fast hash is the right
tool here, unlike for passwords: a 256-bit random value cannot be guessed or found in a dictionary, so a
slow salted hash would add nothing but cost, and an unsalted deterministic hash lets PostgreSQL find the
session by an indexed equality lookup. A leaked database therefore yields no usable refresh token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from mintplane.auth.keys import AccessClaims, KeySet
from mintplane.auth.repository import SessionRecord
from mintplane.auth.settings import AuthSettings

REFRESH_PREFIX = "mpr_"
_REFRESH_SHAPE = re.compile(r"^mpr_[A-Za-z0-9_-]{43}$")


def new_refresh_token() -> tuple[str, str]:
    """(token for the client, hash for the database)."""
    token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_refresh_token_shaped(token: str) -> bool:
    """Cheap pre-check so garbage never reaches the database."""
    return bool(_REFRESH_SHAPE.fullmatch(token))


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


class TokenIssuer:
    def __init__(self, keys: KeySet, settings: AuthSettings) -> None:
        self.keys = keys
        self._issuer = settings.auth_jwt_issuer
        self._audience = settings.auth_jwt_audience
        self._ttl = timedelta(seconds=settings.auth_access_token_ttl_seconds)

    def issue(self, session: SessionRecord, refresh_token: str, now: datetime) -> IssuedTokens:
        """An access token for the session, never outliving it, alongside the session's refresh token."""
        expires_at = min(now + self._ttl, session.expires_at)
        access = self.keys.sign(
            issuer=self._issuer, audience=self._audience, user_id=session.user_id, session_id=session.session_id,
            address=session.address or "", chain=session.chain_id or "", issued_at=now, expires_at=expires_at,
        )
        return IssuedTokens(
            access_token=access,
            access_expires_at=expires_at.replace(microsecond=0),
            refresh_token=refresh_token,
            refresh_expires_at=session.expires_at,
        )

    def verify(self, access_token: str) -> AccessClaims:
        return self.keys.verify(access_token, issuer=self._issuer, audience=self._audience)

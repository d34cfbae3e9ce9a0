"""CreateNonce: a single-use nonce bound to (address, domain, chain), and the message that embeds it.

The nonce is 24 characters from [A-Za-z0-9] (~143 bits; EIP-4361 wants at least 8 alphanumerics). It is
stored before it is returned, with the same expiry the message's Expiration Time carries, so an expired
nonce and an expired message mean the same thing to the user.

Expired nonces are deleted a day after expiry (kept that long so audits can still match a login event to
its nonce), by a purge each replica starts at most every ten minutes from CreateNonce: the table stays
bounded by the sign-in rate without a separate job. Deleting is idempotent, so replicas may overlap.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from mintplane.auth.errors import SignInRejected
from mintplane.auth.ratelimit import AttemptLimiter
from mintplane.auth.repository import AuthRepository
from mintplane.auth.settings import AuthSettings
from mintplane.auth.signin import Clock, utc_now
from mintplane.auth.siwe_message import (
    MAX_DOMAIN_CHARS,
    MAX_STATEMENT_CHARS,
    MAX_URI_CHARS,
    MessagePolicy,
    build_message,
    chain_numeric,
    check_chain,
    check_domain,
    check_uri,
    default_uri,
    normalize_address,
)
from mintplane.common.errors import InvalidArgument, ResourceExhausted
from mintplane.common.log import get_logger

log = get_logger(__name__)

NONCE_ALPHABET = string.ascii_letters + string.digits
NONCE_LENGTH = 24
PURGE_EVERY_SECONDS = 600.0
KEEP_EXPIRED_SECONDS = 86400


def new_nonce() -> str:
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))


@dataclass(frozen=True, slots=True)
class IssuedNonce:
    nonce: str
    issued_at: datetime
    expires_at: datetime
    message: str


class NonceIssuer:
    def __init__(
        self, *, settings: AuthSettings, repo: AuthRepository, limiter: AttemptLimiter, clock: Clock = utc_now
    ) -> None:
        self._settings = settings
        self._policy = MessagePolicy.from_settings(settings)
        self._repo = repo
        self._limiter = limiter
        self._clock = clock
        self._ttl = timedelta(seconds=settings.auth_nonce_ttl_seconds)
        self._next_purge = 0.0
        self._purging: asyncio.Task[None] | None = None

    async def create(self, *, address: str, domain: str, caip2: str, uri: str, statement: str) -> IssuedNonce:
        try:
            account = normalize_address(address)
            chain = chain_numeric(caip2)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        if not domain or len(domain) > MAX_DOMAIN_CHARS:
            raise InvalidArgument(f"domain must be 1 to {MAX_DOMAIN_CHARS} characters")
        uri = uri or default_uri(domain)
        if len(uri) > MAX_URI_CHARS:
            raise InvalidArgument(f"uri must be at most {MAX_URI_CHARS} characters")
        statement = statement or self._settings.auth_default_statement
        if len(statement) > MAX_STATEMENT_CHARS or not statement.isprintable():
            raise InvalidArgument(f"statement must be one line of at most {MAX_STATEMENT_CHARS} printable characters")
        try:
            normalized_domain = check_domain(domain, self._policy)
            check_uri(uri, domain, self._policy)
            check_chain(caip2, self._policy)
        except SignInRejected as exc:
            raise InvalidArgument(exc.message) from None

        denied = await self._limiter.hit("nonce-address", account)
        if denied is not None:
            raise ResourceExhausted(
                f"too many nonces requested for this address (limit {denied.limit}); retry in "
                f"{denied.retry_after_seconds}s"
            )
        now = self._clock()
        issued_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the message has ms precision
        expires_at = issued_at + self._ttl
        nonce = new_nonce()
        try:
            message = build_message(
                domain=domain, address=account, uri=uri, chain=chain, nonce=nonce, statement=statement,
                issued_at=issued_at, expires_at=expires_at,
            )
        except ValidationError as exc:
            fields = ", ".join(sorted({str(err["loc"][0]) for err in exc.errors() if err.get("loc")}))
            raise InvalidArgument(f"cannot build a sign-in message from these values ({fields})") from None
        await self._repo.insert_nonce(nonce, account, normalized_domain, caip2, issued_at, expires_at)
        self._maybe_purge()
        return IssuedNonce(nonce=nonce, issued_at=issued_at, expires_at=expires_at, message=message)

    def _maybe_purge(self) -> None:
        if time.monotonic() < self._next_purge or (self._purging is not None and not self._purging.done()):
            return
        self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        self._purging = asyncio.get_running_loop().create_task(self._purge())

    async def _purge(self) -> None:
        try:
            deleted = await self._repo.purge_nonces(KEEP_EXPIRED_SECONDS)
        except Exception:
            log.exception("purging expired nonces failed")
            return
        if deleted:
            log.info("purged expired nonces", count=deleted)

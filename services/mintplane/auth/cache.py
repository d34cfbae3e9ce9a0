"""Redis copy of session state for ValidateSession, and the first-login lock (the Redis I/O of auth).

ValidateSession runs on every authenticated gateway request. Its answer depends on whether the session is
revoked, which PostgreSQL knows; asking it each time would put a database round trip on every request.
The state is cached for a few seconds instead. Revocations write "revoked" here at once, so on this Redis
they take effect immediately; if that write is lost, PostgreSQL wins again after the cache TTL.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import LockError

from mintplane.common.errors import Unavailable

SESSION_KEY = "mintplane:auth:session:{}"
FIRST_LOGIN_KEY = "mintplane:auth:first-login:{}"
_REVOKED = b"revoked"


@dataclass(frozen=True, slots=True)
class CachedSession:
    """What ValidateSession needs beyond the token: is it alive, whose is it, until when."""

    active: bool
    user_id: str = ""
    expires_at: float = 0.0  # epoch seconds


class SessionCache:
    def __init__(self, redis: Any, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def get(self, session_id: str) -> CachedSession | None:
        raw = await self._redis.get(SESSION_KEY.format(session_id))
        if raw is None:
            return None
        if raw == _REVOKED:
            return CachedSession(active=False)
        user_id, _, expires = raw.decode().partition("|")
        return CachedSession(active=True, user_id=user_id, expires_at=float(expires))

    async def remember_active(self, session_id: str, user_id: str, expires_at: datetime, now: datetime) -> None:
        ttl = min(self._ttl, int((expires_at - now).total_seconds()))
        if ttl > 0:
            await self._redis.set(SESSION_KEY.format(session_id), f"{user_id}|{expires_at.timestamp()}", ex=ttl)

    async def remember_revoked(self, session_ids: Iterable[str]) -> None:
        """Mark sessions dead for every replica (one pipelined round trip)."""
        ids = list(session_ids)
        if not ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.set(SESSION_KEY.format(session_id), _REVOKED, ex=self._ttl)
            await pipe.execute()

    @contextlib.asynccontextmanager
    async def first_login_lock(self, address: str, *, timeout: float = 15.0, wait: float = 10.0) -> AsyncIterator[None]:
        """Serialise first logins of one address across replicas, so two racing sign-ins create one user."""
        lock = self._redis.lock(FIRST_LOGIN_KEY.format(address), timeout=timeout, blocking_timeout=wait)
        if not await lock.acquire():
            raise Unavailable("another sign-in of this address is in progress; try again")
        try:
            yield
        finally:
            with contextlib.suppress(LockError):
                await lock.release()

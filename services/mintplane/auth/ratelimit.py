"""Per-address and per-IP attempt limits in Redis, shared by every auth replica (the `limits` library).

Moving window (an exact sliding log per key, one Lua call per hit): for limits this small (tens per
minute) it is exact at window edges where a fixed window would let twice the limit through. It runs on
the service's own redis-py connection pool. Redis being down fails the call (UNAVAILABLE) rather than
letting unlimited guesses through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from mintplane.auth.settings import AuthSettings

KEY_PREFIX = "mintplane:auth:rl"


@dataclass(frozen=True, slots=True)
class Denied:
    """Which limit was hit and when it frees up (for the client's message)."""

    scope: str
    limit: str
    retry_after_seconds: int


class AttemptLimiter:
    """Counts attempts per scope ("signin-ip", "signin-address", "nonce-address") and identifier."""

    def __init__(self, redis: Any, limits: dict[str, str]) -> None:
        storage = RedisStorage(
            "async+redis://", implementation="redispy", key_prefix=KEY_PREFIX, connection_pool=redis.connection_pool
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {scope: parse(text) for scope, text in limits.items()}

    @classmethod
    def from_settings(cls, redis: Any, settings: AuthSettings) -> AttemptLimiter:
        return cls(
            redis,
            {
                "signin-ip": settings.auth_rate_limit_signin_ip,
                "signin-address": settings.auth_rate_limit_signin_address,
                "nonce-address": settings.auth_rate_limit_nonce_address,
            },
        )

    async def hit(self, scope: str, identifier: str) -> Denied | None:
        """Count one attempt; a Denied when it goes over the scope's limit."""
        item = self._items[scope]
        if await self._limiter.hit(item, scope, identifier):
            return None
        stats = await self._limiter.get_window_stats(item, scope, identifier)
        return Denied(scope=scope, limit=str(item), retry_after_seconds=max(1, int(stats.reset_time - time.time())))

    async def reset(self, scope: str, identifier: str) -> None:
        await self._limiter.clear(self._items[scope], scope, identifier)

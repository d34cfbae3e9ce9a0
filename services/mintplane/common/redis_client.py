"""The Redis client for services with caches, nonces and rate limits (auth, user)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from mintplane.common.settings import InfraSettings


def create_client(settings: InfraSettings, *, max_connections: int = 200, wait_seconds: float = 5.0) -> Redis:
    """A client whose pool makes bursts wait for a free connection instead of failing with
    "Too many connections" (redis-py's default pool raises once it is exhausted)."""
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(),
        max_connections=max_connections,
        timeout=wait_seconds,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool, decode_responses=False)

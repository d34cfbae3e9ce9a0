"""The Redis client for services with caches, nonces and rate limits (auth, user)."""

from __future__ import annotations

from redis.asyncio import Redis

from mintplane.common.settings import InfraSettings


def create_client(settings: InfraSettings) -> Redis:
    return Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=False, health_check_interval=30)

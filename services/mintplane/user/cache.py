"""Redis read-through cache of users (user + profile), as serialized `User` messages.

Invalidation is exact, not "eventually, within the TTL". Plain cache-aside has a known race: a reader
loads the old row, a writer commits and deletes the key, then the reader stores the old row back. Each
user therefore has a *generation* counter next to its entry. Readers fetch the entry and the generation
in the same MGET, and store what they loaded from PostgreSQL only if the generation is still the one
they saw (a small Lua script, atomic in Redis). Writers, after their transaction commits, bump the
generation and delete the entry (and the username keys) in one MULTI. Whatever the interleaving, a value
read before a commit can no longer be stored after it.

Usernames map to user ids under their own keys; such a key is only a hint: the cached user is accepted
only if its current username still is the one asked for, so a stale mapping costs a database read,
never a wrong answer.

Redis being unavailable degrades to reading PostgreSQL (logged), never to failing the RPC; a failed
invalidation is logged loudly, and the TTL bounds how long that entry can be stale.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from mintplane.api.user.v1 import user_pb2
from mintplane.common.log import get_logger

log = get_logger(__name__)

_PREFIX = "mintplane:user:v1"
# KEYS[1] entry, KEYS[2] generation; ARGV[1] payload, ARGV[2] generation seen ("" = none), ARGV[3] ttl.
_STORE_IF_CURRENT = """
local current = redis.call('GET', KEYS[2]) or ''
if current == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""


def _entry_key(user_id: uuid.UUID) -> str:
    return f"{_PREFIX}:{{{user_id}}}:user"  # hash tag keeps entry and generation in one cluster slot


def _generation_key(user_id: uuid.UUID) -> str:
    return f"{_PREFIX}:{{{user_id}}}:gen"


def _username_key(username: str) -> str:
    return f"{_PREFIX}:username:{username}"


class UserCache:
    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        # Generations outlive entries so a reader's "seen" value cannot expire into a matching one.
        self._generation_ttl = max(ttl_seconds * 4, 3600)
        self._store = redis.register_script(_STORE_IF_CURRENT)

    async def get_many(
        self, user_ids: Sequence[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, user_pb2.User], dict[uuid.UUID, bytes] | None]:
        """Cached users by id, and the generation seen for each id (None when Redis could not be read).

        Pass the generations to `store_many` with what was then loaded from PostgreSQL."""
        if not user_ids:
            return {}, {}
        keys = [_entry_key(u) for u in user_ids] + [_generation_key(u) for u in user_ids]
        try:
            values: list[Any] = await self._redis.mget(keys)
        except RedisError as exc:
            log.warning("user cache read failed; reading PostgreSQL", error=str(exc))
            return {}, None
        found: dict[uuid.UUID, user_pb2.User] = {}
        for user_id, payload in zip(user_ids, values[: len(user_ids)], strict=True):
            if payload is not None:
                found[user_id] = user_pb2.User.FromString(payload)
        generations = {u: g or b"" for u, g in zip(user_ids, values[len(user_ids):], strict=True)}
        return found, generations

    async def store_many(self, users: Sequence[user_pb2.User], generations: dict[uuid.UUID, bytes] | None) -> None:
        """Store users loaded from PostgreSQL, each only if its generation is still the one seen before."""
        if not users or generations is None:
            return  # the read failed: never write without a generation guarding the write
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user in users:
                    user_id = uuid.UUID(user.user_id)
                    await self._store(
                        keys=[_entry_key(user_id), _generation_key(user_id)],
                        args=[user.SerializeToString(), generations.get(user_id, b""), self._ttl],
                        client=pipe,
                    )
                await pipe.execute()
        except RedisError as exc:
            log.warning("user cache fill failed", error=str(exc))

    async def user_id_for(self, username: str) -> uuid.UUID | None:
        try:
            value = await self._redis.get(_username_key(username))
        except RedisError as exc:
            log.warning("user cache read failed; reading PostgreSQL", error=str(exc))
            return None
        if not value:
            return None
        try:
            return uuid.UUID(value.decode() if isinstance(value, bytes) else value)
        except ValueError:
            return None

    async def remember_username(self, username: str, user_id: uuid.UUID) -> None:
        try:
            await self._redis.set(_username_key(username), str(user_id), ex=self._ttl)
        except RedisError as exc:
            log.warning("user cache fill failed", error=str(exc))

    async def invalidate(self, user_id: uuid.UUID, *usernames: str | None) -> None:
        """Call after the write committed: bump the generation, drop the entry and username hints."""
        generation = _generation_key(user_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(generation)
                pipe.expire(generation, self._generation_ttl)
                pipe.delete(_entry_key(user_id), *(_username_key(n) for n in usernames if n))
                await pipe.execute()
        except RedisError as exc:
            log.error("user cache invalidation failed; entry may be stale until its TTL",
                      user_id=str(user_id), ttl_seconds=self._ttl, error=str(exc))

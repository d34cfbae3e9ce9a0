"""Automatic persisted queries, as Apollo's protocol defines them.

A client sends `extensions.persistedQuery = {version: 1, sha256Hash}` instead of the query text (on POST,
or on GET as `?extensions=...&variables=...&operationName=...`, which makes the request cacheable by URL).
An unknown hash is answered with the standard `PersistedQueryNotFound` error; the client then sends the
query together with its hash, the gateway checks that the hash is the query's sha256 and remembers it.

Queries are kept in Redis, shared by every gateway process, behind a bounded per-process LRU: a hot query
costs no Redis round trip. Redis being down degrades to "not found" (clients resend the text), never to
a failed request.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from mintplane.common.log import get_logger
from mintplane.gateway.lru import Lru

log = get_logger(__name__)

PERSISTED_QUERIES = Counter(
    "gateway_persisted_queries_total", "Automatic persisted query lookups and registrations, by outcome.",
    ["outcome"],  # hit_local, hit_redis, not_found, registered, mismatch
)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
MISMATCH_MESSAGE = "provided sha does not match query"


class PersistedQueryError(Exception):
    """A persisted-query request the gateway refuses; `body` is the GraphQL response to send."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def body(self) -> bytes:
        return orjson.dumps({"errors": [{"message": self.message, "extensions": {"code": self.code}}]})


def not_found() -> PersistedQueryError:
    """What Apollo clients recognise (by message and by code) as "send the query text with the hash"."""
    return PersistedQueryError(NOT_FOUND_MESSAGE, "PERSISTED_QUERY_NOT_FOUND")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PersistedQueryRef:
    sha256_hash: str


def persisted_ref(extensions: Any) -> PersistedQueryRef | None:
    """The request's `persistedQuery` extension, None when it has none; refuses malformed ones."""
    if not isinstance(extensions, dict):
        return None
    ref = extensions.get("persistedQuery")
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise PersistedQueryError("extensions.persistedQuery must be an object.", "BAD_USER_INPUT")
    if ref.get("version") != 1:
        raise PersistedQueryError("Unsupported persisted query version.", "PERSISTED_QUERY_NOT_SUPPORTED")
    digest = ref.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
        raise PersistedQueryError("persistedQuery.sha256Hash must be 64 hexadecimal digits.", "BAD_USER_INPUT")
    return PersistedQueryRef(digest.lower())


def check_hash(ref: PersistedQueryRef, query: str) -> None:
    """A query sent with a hash must be the text that hashes to it (else a client could poison the store)."""
    if sha256_hex(query) != ref.sha256_hash:
        PERSISTED_QUERIES.labels("mismatch").inc()
        raise PersistedQueryError(MISMATCH_MESSAGE, "BAD_USER_INPUT")


class PersistedQueries:
    """hash -> query text: a local LRU, then Redis (`<namespace>:apq:<hash>`, expiring after `ttl_seconds`)."""

    def __init__(self, redis: Redis | None, *, namespace: str, ttl_seconds: int, local_size: int) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:apq:"
        self._ttl = ttl_seconds
        self._local: Lru[str, str] = Lru(local_size)

    async def get(self, sha256_hash: str) -> str | None:
        query = self._local.get(sha256_hash)
        if query is not None:
            PERSISTED_QUERIES.labels("hit_local").inc()
            return query
        if self._redis is not None:
            try:
                stored = await self._redis.get(self._prefix + sha256_hash)
            except RedisError as exc:
                log.warning("persisted query store unavailable", error=str(exc))
                stored = None
            if stored is not None:
                query = stored.decode() if isinstance(stored, bytes) else stored
                if sha256_hex(query) == sha256_hash:  # never trust a store that could have been written to
                    self._local.put(sha256_hash, query)
                    PERSISTED_QUERIES.labels("hit_redis").inc()
                    return query
        PERSISTED_QUERIES.labels("not_found").inc()
        return None

    async def register(self, sha256_hash: str, query: str) -> None:
        """Remember a query whose hash was checked (check_hash) and which parses and validates."""
        self._local.put(sha256_hash, query)
        PERSISTED_QUERIES.labels("registered").inc()
        if self._redis is not None:
            try:
                await self._redis.set(self._prefix + sha256_hash, query.encode(), ex=self._ttl)
            except RedisError as exc:
                log.warning("persisted query store unavailable", error=str(exc))

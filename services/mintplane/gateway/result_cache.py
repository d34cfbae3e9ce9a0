"""The result cache of public catalog queries: whole serialised responses, served without running GraphQL.

What may be cached (all must hold):

1. the operation is a query, and the document parses and validates against the schema;
2. the document selects no viewer-dependent field (VIEWER_FIELDS, or a field returning one of
   VIEWER_TYPES), wherever it appears in the document, fragments included;
3. while it ran, no resolver asked who the caller is (CachingContext flags `viewer()`,
   `viewer_or_none()` and `has_credentials`, signed in or not) and no auth RPC was made: a run that
   looked at the caller may differ per caller, so it is never shared;
4. the response has data and no errors.

Rules 2 and 3 are independent guards: the static one keeps viewer queries off the cache path entirely,
the runtime one catches a resolver that reads the viewer without being listed. A signed-in request whose
operation passes rule 2 is served the shared entry (rule 3 proved the result does not depend on who asks),
but its response says `Cache-Control: private, no-store`.

Key: sha256 of (format, schema version, sha256 of the query text, which is the APQ hash, operationName,
canonical JSON of the variables). Value: the response bytes, with the tags of what they were built from.

Tags come from what the catalog answered, not from resolvers remembering to report it: the clients every
resolver uses are wrapped (`tracked_clients`) so each catalog call adds `collection:<id>` / `token:<id>`
for the ids in its request and response; a list or search call not scoped to ids, and a lookup that
failed (it may have become a null), adds the coarse `catalog:lists`, which every change event
invalidates, so a new collection or token appears in lists at once. Data from services that publish no
change events (profiles, wallets, chain heads) limits the entry to a short TTL.

Entries live in Redis (`<ns>:r:<key>`, with a set per tag `<ns>:t:<tag>` naming the keys) and in a
per-process LRU. A race is closed by time: an entry whose execution began before an invalidation of one
of its tags (plus the allowed clock skew) is neither stored nor accepted from Redis.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from google.protobuf.message import Message
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    parse,
    specified_rules,
    validate,
    visit,
)
from graphql.error import GraphQLError
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from mintplane.common.log import get_logger
from mintplane.gateway.clients import Clients
from mintplane.gateway.context import GatewayContext, Identity
from mintplane.gateway.lru import Lru

log = get_logger(__name__)

CACHE_FORMAT = "1"
LISTS_TAG = "catalog:lists"

RESULT_CACHE = Counter(
    "gateway_result_cache_total", "Result cache lookups and stores, by outcome.",
    ["outcome"],  # hit_local, hit_redis, miss, stored, not_stored, stale
)
INVALIDATIONS = Counter(
    "gateway_result_cache_invalidations_total", "Cache entries dropped by catalog change events, by tier.",
    ["tier"],  # local, redis
)

# Fields and types whose value depends on who is asking. Keep in step with the schema: a unit test fails
# when a resolver that reads the viewer is missing here (tests/unit/test_gateway_persisted_cache.py).
VIEWER_TYPES = frozenset({"Viewer", "Session", "SessionConnection", "SessionEdge", "LoginEvent",
                          "LoginEventConnection", "LoginEventEdge", "Preferences", "AuthPayload"})
VIEWER_FIELDS = frozenset({
    "Query.me", "Query.sessions", "Query.loginEvents", "Query.wallets", "Query.viewer",
    "User.viewerIsFollowing", "Wallet.label", "Wallet.connector", "Wallet.verifiedAt",
})


# ------------------------------------------------------------------------------------ per-request scope


@dataclass
class CacheScope:
    """What one execution depended on; set in a ContextVar by the hot path around a cacheable run."""

    started: float = field(default_factory=time.time)
    tags: set[str] = field(default_factory=set)
    viewer_read: bool = False
    unevented: bool = False  # read data that no change event invalidates


current_scope: ContextVar[CacheScope | None] = ContextVar("gateway_cache_scope", default=None)


def _viewer_read() -> None:
    scope = current_scope.get()
    if scope is not None:
        scope.viewer_read = True


class CachingContext(GatewayContext):
    """The request context, reporting every look at the caller to the cache scope (rule 3)."""

    @property
    def has_credentials(self) -> bool:
        _viewer_read()
        return super().has_credentials

    async def viewer(self) -> Identity:
        _viewer_read()
        return await super().viewer()

    async def viewer_or_none(self) -> Identity | None:
        _viewer_read()
        return await super().viewer_or_none()


# Request fields naming what a catalog call is scoped to, by (message, field); any message's collection_id
# and token_id fields count too.
_ID_FIELDS = {
    ("GetCollectionRequest", "id"): "collection", ("BatchGetCollectionsRequest", "ids"): "collection",
    ("GetTokenRequest", "id"): "token", ("BatchGetTokensRequest", "ids"): "token",
}
_ANY_ID_FIELDS = {"collection_id": "collection", "collection_ids": "collection", "token_id": "token",
                  "token_ids": "token"}


def _request_tags(request: Message) -> set[str]:
    """Ids a catalog request is scoped to (the entity may not exist yet: a later event names it)."""
    tags: set[str] = set()
    name = request.DESCRIPTOR.name
    for descriptor, value in request.ListFields():
        kind = _ID_FIELDS.get((name, descriptor.name)) or _ANY_ID_FIELDS.get(descriptor.name)
        if kind is None:
            continue
        values = value if descriptor.is_repeated else [value]
        tags.update(f"{kind}:{v}" for v in values if v)
    return tags


_SKIP = frozenset({"Timestamp", "TokenTrait", "TraitValue", "ChainRef", "PageResponse", "Money"})


def _response_tags(message: Message, tags: set[str]) -> None:
    """Every collection and token id in a catalog response (collections, tokens, and whatever names them)."""
    name = message.DESCRIPTOR.name
    for descriptor, value in message.ListFields():
        field_name = descriptor.name
        if descriptor.message_type is not None:
            if descriptor.message_type.name in _SKIP:
                continue
            if descriptor.is_repeated:
                if descriptor.message_type.GetOptions().map_entry:
                    continue
                for item in value:
                    _response_tags(item, tags)
            else:
                _response_tags(value, tags)
        elif field_name == "id" and name == "Collection":
            tags.add(f"collection:{value}")
        elif field_name == "id" and name == "Token":
            tags.add(f"token:{value}")
        elif field_name == "collection_id" and isinstance(value, str) and value:
            tags.add(f"collection:{value}")
        elif field_name == "token_id" and isinstance(value, str) and value:
            tags.add(f"token:{value}")


def catalog_tags(method: str, request: Message, response: Message | None) -> set[str]:
    """Tags of one catalog call: see the module docstring. `response` None: the call failed."""
    tags = _request_tags(request)
    if response is None or (not tags and not method.startswith("get_")):
        tags.add(LISTS_TAG)
    if response is not None:
        _response_tags(response, tags)
    if not tags:
        tags.add(LISTS_TAG)
    return tags


class _TrackedClient:
    """One upstream client whose calls report to the current cache scope (no scope: a plain pass-through)."""

    def __init__(self, service: str, client: object) -> None:
        self._service = service
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method) or name.startswith("_"):
            return method
        service = self._service

        async def call(request: Message) -> Any:
            scope = current_scope.get()
            if scope is None:
                return await method(request)
            if service == "auth":
                scope.viewer_read = True
                return await method(request)
            if service != "catalog":
                scope.unevented = True
                return await method(request)
            try:
                response = await method(request)
            except BaseException:
                scope.tags.update(catalog_tags(name, request, None))
                raise
            scope.tags.update(catalog_tags(name, request, response))
            return response

        setattr(self, name, call)  # later lookups skip __getattr__
        return call


def tracked_clients(clients: Clients) -> Clients:
    """The same clients, reporting what each request read to its cache scope."""
    wrapped = {name: cast(Any, _TrackedClient(name, getattr(clients, name)))
               for name in clients.__dataclass_fields__}
    return Clients(**wrapped)


# ------------------------------------------------------------------------------------- document analysis


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the cache needs to know about one query text (kept per hash)."""

    valid: bool
    viewer_dependent: bool
    operations: Mapping[str | None, OperationType]

    def cacheable(self, operation_name: str | None) -> bool:
        if not self.valid or self.viewer_dependent:
            return False
        if operation_name is None:
            if len(self.operations) != 1:
                return False
            kind = next(iter(self.operations.values()))
        else:
            found = self.operations.get(operation_name)
            if found is None:
                return False
            kind = found
        return kind is OperationType.QUERY


class _ViewerFields(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.found = False

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self.type_info.get_parent_type()
        if parent is not None and f"{parent.name}.{node.name.value}" in VIEWER_FIELDS:
            self.found = True
        field_type = self.type_info.get_type()
        if field_type is not None and get_named_type(field_type).name in VIEWER_TYPES:
            self.found = True


def analyse(schema: GraphQLSchema, query: str, *, max_tokens: int) -> Analysis:
    """Parse, validate (the spec's rules) and look for viewer fields, once per distinct query text."""
    try:
        document: DocumentNode = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return Analysis(False, False, {})
    if validate(schema, document, specified_rules):
        return Analysis(False, False, {})
    operations = {
        (node.name.value if node.name else None): node.operation
        for node in document.definitions if isinstance(node, OperationDefinitionNode)
    }
    type_info = TypeInfo(schema)
    finder = _ViewerFields(type_info)
    visit(document, TypeInfoVisitor(type_info, finder))
    return Analysis(True, finder.found, operations)


# ------------------------------------------------------------------------------------------ the cache


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    etag: str
    tags: tuple[str, ...]
    started: float  # wall-clock start of the execution that produced it
    expires: float  # monotonic deadline in the local tier


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _frame(entry: Entry) -> bytes:
    """Redis value: `<started>\\n<etag>\\n<tag,tag...>\\n<body>` (tags never contain a comma or newline)."""
    return b"%r\n%s\n%s\n%s" % (entry.started, entry.etag.encode(), ",".join(entry.tags).encode(), entry.body)


def _unframe(raw: bytes, local_ttl: float) -> Entry | None:
    try:
        started, etag, tags, body = raw.split(b"\n", 3)
        return Entry(body=body, etag=etag.decode(), tags=tuple(t for t in tags.decode().split(",") if t),
                     started=float(started), expires=time.monotonic() + local_ttl)
    except ValueError:
        return None


# Drops every entry of the given tag sets and the sets themselves: one round trip, atomic.
_INVALIDATE = """
local dropped = 0
for _, tag in ipairs(KEYS) do
  local members = redis.call('SMEMBERS', tag)
  for i = 1, #members, 500 do
    redis.call('UNLINK', unpack(members, i, math.min(i + 499, #members)))
  end
  dropped = dropped + #members
  redis.call('DEL', tag)
end
return dropped
"""

_RECENT_WINDOW_SECONDS = 120.0  # longer than any execution: an entry older than that was already dropped


class ResultCache:
    """Response bytes by key, in a local LRU and in Redis, dropped by tag when the catalog changes."""

    def __init__(
        self, redis: Redis | None, *, namespace: str, schema_version: str, ttl_seconds: int,
        unevented_ttl_seconds: int, local_size: int, local_ttl_seconds: float, clock_skew_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._entry_prefix = f"{namespace}:r:"
        self._tag_prefix = f"{namespace}:t:"
        self._namespace = namespace
        self._schema_version = schema_version
        self.ttl = ttl_seconds
        self.unevented_ttl = unevented_ttl_seconds
        self._local_ttl = local_ttl_seconds
        self._skew = clock_skew_seconds
        self._clock = clock
        self._local: Lru[str, Entry] = Lru(local_size, on_evict=self._unindex)
        self._by_tag: dict[str, set[str]] = {}
        self._invalidated_at: dict[str, float] = {}
        self._flushed_at = 0.0
        self._pruned_at = 0.0
        self._script = redis.register_script(_INVALIDATE) if redis is not None else None
        # False until the invalidation consumer listens: an entry nobody would invalidate is never served.
        self.active = False

    def key(self, document_hash: str, operation_name: str | None, variables: Mapping[str, Any] | None) -> str:
        canonical = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        material = b"\0".join((CACHE_FORMAT.encode(), self._schema_version.encode(), document_hash.encode(),
                               (operation_name or "").encode(), canonical))
        return hashlib.sha256(material).hexdigest()

    # --------------------------------------------------------------------------------------- reading

    async def get(self, key: str) -> Entry | None:
        entry = self._local.get(key)
        if entry is not None:
            if entry.expires > time.monotonic():
                RESULT_CACHE.labels("hit_local").inc()
                return entry
            self._drop_local(key)
        if self._redis is not None:
            try:
                raw = await self._redis.get(self._entry_prefix + key)
            except RedisError as exc:
                log.warning("result cache unavailable", error=str(exc))
                raw = None
            if raw is not None:
                entry = _unframe(raw if isinstance(raw, bytes) else raw.encode(), self._local_ttl)
                if entry is not None and self._fresh(entry):
                    self._put_local(key, entry)
                    RESULT_CACHE.labels("hit_redis").inc()
                    return entry
                RESULT_CACHE.labels("stale").inc()
        RESULT_CACHE.labels("miss").inc()
        return None

    def _fresh(self, entry: Entry) -> bool:
        """False when the entry's execution may have read data an invalidation has since replaced."""
        limit = entry.started - self._skew
        if self._flushed_at > limit:
            return False
        return not any(self._invalidated_at.get(tag, 0.0) > limit for tag in entry.tags)

    # --------------------------------------------------------------------------------------- writing

    async def put(self, key: str, body: bytes, scope: CacheScope) -> Entry | None:
        """Store a response built under `scope`; None (not stored) when it may already be stale."""
        ttl = self.unevented_ttl if scope.unevented else self.ttl
        tags = tuple(sorted(scope.tags))
        entry = Entry(body=body, etag=etag_of(body), tags=tags, started=scope.started,
                      expires=time.monotonic() + min(float(ttl), self._local_ttl))
        if ttl <= 0 or not self.active or not self._fresh(entry):
            RESULT_CACHE.labels("not_stored").inc()
            return None
        self._put_local(key, entry)
        if self._redis is not None:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.set(self._entry_prefix + key, _frame(entry), ex=ttl)
                    for tag in tags:
                        pipe.sadd(self._tag_prefix + tag, self._entry_prefix + key)
                        pipe.expire(self._tag_prefix + tag, self.ttl + 60)
                    await pipe.execute()
            except RedisError as exc:
                log.warning("result cache unavailable", error=str(exc))
        RESULT_CACHE.labels("stored").inc()
        return entry

    def _put_local(self, key: str, entry: Entry) -> None:
        self._drop_local(key)
        self._local.put(key, entry)
        if key in self._local:
            for tag in entry.tags:
                self._by_tag.setdefault(tag, set()).add(key)

    def _drop_local(self, key: str) -> None:
        entry = self._local.pop(key)
        if entry is not None:
            self._unindex(key, entry)

    def _unindex(self, key: str, entry: Entry) -> None:
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    # ---------------------------------------------------------------------------------- invalidation

    async def invalidate(self, tags: Iterable[str]) -> int:
        """Drop every entry carrying one of `tags`, here and in Redis; returns the number dropped here."""
        now = self._clock()
        tags = set(tags)
        dropped = 0
        for tag in tags:
            self._invalidated_at[tag] = now
            for key in list(self._by_tag.get(tag, ())):
                self._drop_local(key)
                dropped += 1
        INVALIDATIONS.labels("local").inc(dropped)
        if now - self._pruned_at > 1.0:
            self._pruned_at = now
            horizon = now - _RECENT_WINDOW_SECONDS
            self._invalidated_at = {t: at for t, at in self._invalidated_at.items() if at > horizon}
        if self._script is not None and tags:
            try:
                in_redis = await self._script(keys=[self._tag_prefix + tag for tag in sorted(tags)])
                INVALIDATIONS.labels("redis").inc(int(in_redis))
            except RedisError as exc:
                log.warning("result cache invalidation failed in redis", error=str(exc))
        return dropped

    def invalidated_at(self, tag: str) -> float | None:
        """When `tag` was last invalidated in this process (wall clock), if recently."""
        return self._invalidated_at.get(tag)

    async def flush(self) -> None:
        """Forget everything (events may have been missed while the consumer was away)."""
        self._flushed_at = self._clock()
        self._local.clear()
        self._by_tag.clear()
        if self._redis is None:
            return
        try:
            batch: list[bytes] = []
            async for name in self._redis.scan_iter(match=f"{self._namespace}:[rt]:*", count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    await self._redis.unlink(*batch)
                    batch.clear()
            if batch:
                await self._redis.unlink(*batch)
        except RedisError as exc:
            log.warning("result cache flush failed in redis", error=str(exc))


def change_tags(body: Mapping[str, Any]) -> set[str]:
    """The tags a catalog change event invalidates (catalog/changes.py writes the body)."""
    tags = {LISTS_TAG}
    tags.update(f"collection:{value}" for value in body.get("collection_ids", ()) if isinstance(value, str))
    tags.update(f"token:{value}" for value in body.get("token_ids", ()) if isinstance(value, str))
    return tags


Invalidate = Callable[[Iterable[str]], Awaitable[int]]

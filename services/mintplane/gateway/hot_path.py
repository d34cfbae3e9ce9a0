"""The gateway's hot read path: pure ASGI in front of Strawberry on /graphql.

Per request, before any GraphQL runs:

1. read the operation (GET query string or POST JSON body) and its `persistedQuery` extension (APQ);
2. look the result up by (query hash, operationName, variables, schema version): a hit is answered here
   from bytes, with no parsing, validation or resolver at all, which is what lets cached queries run at
   close to the plain-JSON rate (DESIGN.md §7: Strawberry itself tops out near 185 req/s for a 50-token
   page);
3. on a miss resolve an APQ hash to its text (or answer PersistedQueryNotFound), register a newly sent
   one, and hand the request to Strawberry, the query text filled in; if the operation may be cached
   (result_cache.Analysis), the run is watched (CacheScope) and its response stored when it qualifies.

Every /graphql response carries `Vary: Authorization`. Cacheable GET responses to callers without
credentials get `Cache-Control: public, max-age=..., stale-while-revalidate=...` and a strong ETag (a hash
of the body; `If-None-Match` gets 304); everything else `Cache-Control: private, no-store`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aio_pika
import orjson
import strawberry
from aio_pika.abc import AbstractConnection
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mintplane.common.redis_client import create_client
from mintplane.common.settings import InfraSettings
from mintplane.gateway.invalidation import Invalidator
from mintplane.gateway.lru import Lru
from mintplane.gateway.persisted import (
    PersistedQueries,
    PersistedQueryError,
    PersistedQueryRef,
    check_hash,
    not_found,
    persisted_ref,
    sha256_hex,
)
from mintplane.gateway.result_cache import Analysis, CacheScope, Entry, ResultCache, analyse, current_scope
from mintplane.gateway.settings import GatewaySettings

PRIVATE = b"private, no-store"
CACHE_HEADER = b"x-mintplane-cache"
_REPLACED = frozenset({b"cache-control", b"content-length", b"etag", b"vary"})


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison, any of a list, or `*`."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


class _Request:
    """The parts of one GraphQL HTTP request the hot path looks at."""

    __slots__ = ("authorized", "body", "data", "get", "if_none_match", "scope")

    def __init__(self, scope: Scope, data: dict[str, Any], body: bytes | None, headers: dict[bytes, bytes]) -> None:
        self.scope = scope
        self.data = data
        self.body = body
        self.get = scope["method"] == "GET"
        self.authorized = bool(headers.get(b"authorization", b"").strip())
        self.if_none_match = headers.get(b"if-none-match", b"").decode("latin-1")


class GraphQLHotPath:
    """APQ and the result cache around the GraphQL endpoint at `path` (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, path: str, persisted: PersistedQueries | None, cache: ResultCache | None,
        analyse: Callable[[str], Analysis], max_age: int, stale_while_revalidate: int,
        analyses_size: int = 1024,
    ) -> None:
        self.app = app
        self.path = path
        self.persisted = persisted
        self.cache = cache
        self._analyse = analyse
        self._analyses: Lru[str, Analysis] = Lru(analyses_size)
        # key -> the entry its running miss will store (None when it stores nothing): concurrent misses of
        # one key wait for that run instead of each executing the same query (a thundering herd on expiry)
        self._inflight: dict[str, asyncio.Future[Entry | None]] = {}
        self._public = f"public, max-age={max_age}, stale-while-revalidate={stale_while_revalidate}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        headers = {name: value for name, value in scope["headers"]
                   if name in (b"authorization", b"if-none-match", b"content-type")}
        body: bytes | None = None
        data: Any = None
        if scope["method"] == "GET":
            data = self._query_params(scope)
        elif b"application/json" in headers.get(b"content-type", b""):
            body = await _read_body(receive)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                data = None
        if not isinstance(data, dict):  # GraphiQL, batches, bad JSON, multipart...: Strawberry answers
            await self._forward(scope, receive, send, body)
            return
        await self._handle(_Request(scope, data, body, headers), receive, send)

    @staticmethod
    def _query_params(scope: Scope) -> dict[str, Any] | None:
        raw = scope["query_string"]
        if not raw:
            return None
        params = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
        data: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            if params.get(name):
                try:
                    data[name] = orjson.loads(params[name])
                except orjson.JSONDecodeError:
                    return None
            else:
                data.pop(name, None)
        return data

    async def _handle(self, request: _Request, receive: Receive, send: Send) -> None:
        data = request.data
        query, operation, variables = data.get("query"), data.get("operationName"), data.get("variables")
        if not (isinstance(query, str | None) and isinstance(operation, str | None)
                and isinstance(variables, dict | None)):
            await self._forward(request.scope, receive, send, request.body)
            return
        try:
            ref = self._persisted_ref(data.get("extensions"))
            if ref is not None and query is not None:
                check_hash(ref, query)
        except PersistedQueryError as error:
            await _respond(send, 200, error.body, PRIVATE)
            return
        document_hash = ref.sha256_hash if ref is not None else sha256_hex(query) if query else None
        if document_hash is None:
            await self._forward(request.scope, receive, send, request.body)
            return

        key: str | None = None
        known = self._analyses.get(document_hash)
        if self.cache is not None and self.cache.active and (known is None or known.cacheable(operation)):
            key = self.cache.key(document_hash, operation, variables)
            entry = await self.cache.get(key)
            if entry is not None:
                await self._serve(request, send, entry, b"hit")
                return

        scope, body = request.scope, request.body
        if query is None:  # a bare APQ hash: the text must be known already
            assert ref is not None and self.persisted is not None
            query = await self.persisted.get(document_hash)
            if query is None:
                await _respond(send, 200, not_found().body, PRIVATE)
                return
            scope, body = _with_query(request, query)
        analysis = self._analysis(document_hash, query)
        if ref is not None and data.get("query") is not None and analysis.valid and self.persisted is not None:
            await self.persisted.register(document_hash, query)

        if key is None or not analysis.cacheable(operation):  # viewer queries, mutations: no lookup next time
            await self._forward(scope, receive, send, body)
            return
        await self._run_and_store(request, scope, body, key, receive, send)

    def _persisted_ref(self, extensions: Any) -> PersistedQueryRef | None:
        if self.persisted is None:
            if isinstance(extensions, dict) and extensions.get("persistedQuery") is not None:
                raise PersistedQueryError("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")
            return None
        return persisted_ref(extensions)

    def _analysis(self, document_hash: str, query: str) -> Analysis:
        analysis = self._analyses.get(document_hash)
        if analysis is None:
            analysis = self._analyse(query)
            self._analyses.put(document_hash, analysis)
        return analysis

    async def _run_and_store(
        self, request: _Request, scope: Scope, body: bytes | None, key: str, receive: Receive, send: Send,
    ) -> None:
        assert self.cache is not None
        running = self._inflight.get(key)
        if running is not None:
            entry = await asyncio.shield(running)
            if entry is not None:  # a public entry, stored by the run this request waited for
                await self._serve(request, send, entry, b"hit")
                return
        future: asyncio.Future[Entry | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        entry = None
        try:
            entry = await self._execute(scope, body, key, receive, request, send)
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]
            future.set_result(entry)

    async def _execute(
        self, scope: Scope, body: bytes | None, key: str, receive: Receive, request: _Request, send: Send,
    ) -> Entry | None:
        """Runs the operation once, stores its response when it qualifies, answers; returns what was stored."""
        assert self.cache is not None
        watched = CacheScope()
        status = 500
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        token = current_scope.set(watched)
        try:
            await self.app(scope, _replay(body, receive), capture)
        finally:
            current_scope.reset(token)
        payload = b"".join(chunks)
        entry: Entry | None = None
        if status == 200 and not watched.viewer_read and _clean(payload):
            entry = await self.cache.put(key, payload, watched)
        if entry is not None:
            await self._serve(request, send, entry, b"miss")
            return entry
        kept = [(name, value) for name, value in response_headers if name not in _REPLACED]
        await _respond(send, status, payload, PRIVATE, kept, cache_state=b"miss")
        return None

    async def _serve(self, request: _Request, send: Send, entry: Entry, state: bytes) -> None:
        public = request.get and not request.authorized
        if not public:
            await _respond(send, 200, entry.body, PRIVATE, cache_state=state)
            return
        extra = [(b"etag", entry.etag.encode())]
        if request.if_none_match and _etag_matches(request.if_none_match, entry.etag):
            await _respond(send, 304, b"", self._public, extra, cache_state=state)
            return
        await _respond(send, 200, entry.body, self._public, extra, cache_state=state)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        """Strawberry answers; the response only gains the private cache headers."""

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(n, v) for n, v in message.get("headers", []) if n not in (b"cache-control", b"vary")]
                headers += [(b"cache-control", PRIVATE), (b"vary", b"Authorization")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, _replay(body, receive), with_headers)


def _clean(payload: bytes) -> bool:
    """A response worth sharing: data, and not a single error."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and parsed.get("data") is not None and not parsed.get("errors")


def _with_query(request: _Request, query: str) -> tuple[Scope, bytes | None]:
    """The request as Strawberry must see it: the persisted query's text filled in."""
    if request.get:
        raw = request.scope["query_string"]
        extra = urlencode({"query": query}).encode()
        return {**request.scope, "query_string": raw + b"&" + extra if raw else extra}, None
    body = orjson.dumps({**request.data, "query": query})
    headers = [(n, v) for n, v in request.scope["headers"] if n != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    return {**request.scope, "headers": headers}, body


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)


def _replay(body: bytes | None, receive: Receive) -> Receive:
    """A receive that hands over an already-read body once, then defers to the real one (disconnects)."""
    if body is None:
        return receive
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(
    send: Send, status: int, body: bytes, cache_control: bytes, extra: list[tuple[bytes, bytes]] | None = None,
    *, cache_state: bytes | None = None,
) -> None:
    headers = [(b"content-type", b"application/json")] if not extra or all(n != b"content-type" for n, _ in extra) \
        else []
    headers += extra or []
    headers += [(b"cache-control", cache_control), (b"vary", b"Authorization")]
    if status != 304:
        headers.append((b"content-length", str(len(body)).encode()))
    if cache_state is not None:
        headers.append((CACHE_HEADER, cache_state))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HotReadPath:
    """The hot path's long-lived parts (Redis client, stores, change consumer), built with the app and
    started/stopped by its lifespan.

    Without `infra` (unit tests over fake upstreams) nothing is shared: persisted queries live in the local
    LRU only, and the result cache stays inactive, since no change event could ever reach it."""

    def __init__(self, settings: GatewaySettings, infra: InfraSettings | None, schema: strawberry.Schema) -> None:
        self.settings = settings
        needs_redis = infra is not None and (settings.persisted_queries or settings.result_cache)
        self.redis: Redis | None = create_client(infra, max_connections=100) if infra and needs_redis else None
        namespace = settings.result_cache_namespace
        self.persisted = PersistedQueries(
            self.redis, namespace=namespace, ttl_seconds=settings.persisted_query_ttl_seconds,
            local_size=settings.persisted_query_local_size,
        ) if settings.persisted_queries else None
        self.cache = ResultCache(
            self.redis, namespace=namespace, schema_version=sha256_hex(schema.as_str())[:16],
            ttl_seconds=settings.result_cache_ttl_seconds,
            unevented_ttl_seconds=settings.result_cache_unevented_ttl_seconds,
            local_size=settings.result_cache_local_size, local_ttl_seconds=settings.result_cache_local_ttl_seconds,
            clock_skew_seconds=settings.result_cache_clock_skew_seconds,
        ) if settings.result_cache else None
        self.invalidator: Invalidator | None = None
        if infra is not None and self.cache is not None:
            amqp_url = infra.amqp_url.get_secret_value()

            async def connect() -> AbstractConnection:
                return await aio_pika.connect(amqp_url, client_properties={"connection_name": "mintplane-gateway"})

            self.invalidator = Invalidator(self.cache, connect)
        graphql_schema = schema._schema
        max_tokens = settings.max_tokens
        self._analyse = lambda query: analyse(graphql_schema, query, max_tokens=max_tokens)
        self._task: asyncio.Task[None] | None = None

    def middleware_options(self) -> dict[str, Any]:
        """Keyword arguments of GraphQLHotPath (app.add_middleware)."""
        return {
            "path": "/graphql", "persisted": self.persisted, "cache": self.cache, "analyse": self._analyse,
            "max_age": self.settings.http_max_age_seconds,
            "stale_while_revalidate": self.settings.http_stale_while_revalidate_seconds,
        }

    async def start(self) -> None:
        if self.invalidator is not None:
            self._task = asyncio.create_task(self.invalidator.run(), name="gateway cache invalidation")

    async def stop(self) -> None:
        if self._task is not None:
            # Bounded: a cancellation swallowed inside a client library must not hang the app's shutdown. A
            # second cancel reaches a task that swallowed the first one and went on waiting.
            for _ in range(2):
                self._task.cancel()
                done, _ = await asyncio.wait({self._task}, timeout=5)
                if done:
                    break
            if self._task.done() and not self._task.cancelled():
                with contextlib.suppress(BaseException):
                    self._task.result()
        if self.redis is not None:
            await self.redis.aclose()

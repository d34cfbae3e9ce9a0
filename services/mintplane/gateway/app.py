"""The gateway's HTTP application: GraphQL at /graphql, plus the operational routes (routes.py).

`create_app(settings)` opens one gRPC channel per upstream when the app starts (lifespan) and closes them
when it stops; tests pass `upstreams=` to run the same app over fakes of the client interfaces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import orjson
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection
from strawberry.fastapi import GraphQLRouter

from mintplane.common.log import configure_logging, get_logger
from mintplane.common.settings import InfraSettings
from mintplane.gateway.clients import ChannelPool, Clients, MediaClient
from mintplane.gateway.context import ClientInfo, GatewayContext
from mintplane.gateway.hot_path import GraphQLHotPath, HotReadPath
from mintplane.gateway.media_routes import media_routes
from mintplane.gateway.metrics import HttpMetrics
from mintplane.gateway.middleware import BodySizeLimit, RequestId
from mintplane.gateway.result_cache import CachingContext, tracked_clients
from mintplane.gateway.routes import operational_routes
from mintplane.gateway.schema import build_schema
from mintplane.gateway.settings import GatewaySettings

log = get_logger(__name__)
MAX_USER_AGENT = 512


class Upstreams(Protocol):
    """What the app needs from its upstream connections (ChannelPool in production, fakes in tests)."""

    def clients(self, timeout: float) -> Clients: ...
    async def health(self, timeout: float) -> dict[str, str]: ...
    async def close(self) -> None: ...


class OrjsonGraphQLRouter(GraphQLRouter[GatewayContext, None]):
    """Strawberry's router with orjson in and out (several times faster than json on large results)."""

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)


def create_app(
    settings: GatewaySettings | None = None, *, upstreams: Upstreams | None = None,
    infra: InfraSettings | None = None, media: MediaClient | None = None,
) -> FastAPI:
    """`infra` says where Redis and RabbitMQ are (persisted queries, result cache, change events); with fake
    `upstreams` and no `infra` the app touches neither. `media` serves /media (tests pass a fake); by default
    the pool's media channel does."""
    settings = settings or GatewaySettings()
    schema = build_schema(settings)
    # Fake upstreams without infra (unit tests): no Redis, no broker, no shared cache.
    hot = HotReadPath(settings, infra if infra is not None or upstreams is not None else InfraSettings(), schema)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: Upstreams = upstreams or ChannelPool(settings.upstream_addresses())
        app.state.upstreams = pool
        app.state.clients = pool.clients(settings.rpc_timeout_seconds)
        app.state.media = media or (pool.media(settings.media_timeout_seconds) if isinstance(pool, ChannelPool)
                                    else None)
        log.info("gateway upstreams", **settings.upstream_addresses())
        try:
            yield
        finally:
            await pool.close()

    @asynccontextmanager
    async def lifespan_with_hot_path(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app):
            # Every upstream call reports what it read to the request's cache scope (result_cache.py).
            app.state.clients = tracked_clients(app.state.clients)
            await hot.start()
            try:
                yield
            finally:
                await hot.stop()

    app = FastAPI(
        title="mintplane gateway", lifespan=lifespan_with_hot_path, docs_url=None, redoc_url=None,
        openapi_url=None,
    )
    app.state.hot_path = hot

    async def get_context(connection: HTTPConnection) -> GatewayContext:
        headers = connection.headers
        return CachingContext(
            clients=connection.app.state.clients,
            settings=settings,
            authorization=headers.get("authorization"),
            client=ClientInfo(
                ip_address=connection.client.host if connection.client else "",
                user_agent=headers.get("user-agent", "")[:MAX_USER_AGENT],
                origin=headers.get("origin", ""),
            ),
        )

    router = OrjsonGraphQLRouter(
        schema,
        path="/graphql",
        context_getter=get_context,
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=True,
    )
    app.include_router(router)

    app.include_router(operational_routes(settings))
    app.include_router(media_routes(settings))

    # Added innermost first: RequestId wraps everything, CORS wraps the body limit (so a browser can read a
    # 413), and preflights are answered before any body is read. The hot path (APQ, result cache) sits
    # right in front of Strawberry, inside the body limit.
    app.add_middleware(GraphQLHotPath, **hot.middleware_options())
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes,
                       overrides={"/media": settings.media_max_upload_bytes})
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["authorization", "content-type", "x-request-id", "apollo-require-preflight"],
        expose_headers=["x-request-id"],
        max_age=600,
    )
    app.add_middleware(HttpMetrics)
    app.add_middleware(RequestId)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn (`factory=True`): every worker process configures logging and builds its app."""
    settings = GatewaySettings()
    configure_logging(settings.log_level, json=settings.log_json, service="gateway")
    return create_app(settings)

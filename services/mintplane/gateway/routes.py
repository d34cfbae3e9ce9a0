"""The gateway's non-GraphQL endpoints: liveness, readiness, metrics, and the token-verification keys."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mintplane.common.log import get_logger
from mintplane.gateway.jwks import JwksCache
from mintplane.gateway.settings import GatewaySettings

log = get_logger(__name__)


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json", headers=headers)


def operational_routes(settings: GatewaySettings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    jwks = JwksCache(settings.jwks_cache_seconds)

    @router.get("/healthz")
    async def healthz() -> Response:
        """The process answers; says nothing about upstreams (that is /readyz)."""
        return json_response({"status": "ok"})

    @router.get("/readyz")
    async def readyz(request: Request) -> Response:
        """Ready when every upstream's gRPC health check answers SERVING."""
        upstream_status = await request.app.state.upstreams.health(settings.readiness_timeout_seconds)
        ready = all(status == "SERVING" for status in upstream_status.values())
        body = {"status": "ready" if ready else "unavailable", "upstreams": upstream_status}
        return json_response(body, status_code=200 if ready else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format (per process: with several workers, each keeps its own counters)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/.well-known/jwks.json")
    async def jwks_json(request: Request) -> Response:
        """Public keys verifying access tokens (RFC 7517), cached; stale keys are served if auth is down."""
        try:
            keys = await jwks.get(request.app.state.clients.auth)
        except Exception as exc:  # any failure: verifiers retry later; the cause goes to the log only
            log.warning("jwks unavailable", error=repr(exc)[:300])
            return json_response({"error": "keys temporarily unavailable"}, status_code=503,
                                 headers={"Retry-After": "5"})
        return json_response(keys, headers={"Cache-Control": f"public, max-age={int(settings.jwks_cache_seconds)}"})

    return router

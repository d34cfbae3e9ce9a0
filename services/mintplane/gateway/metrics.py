"""Prometheus metrics of the gateway, served at /metrics.

Labels are bounded on purpose: operation names come from clients, so operations are counted by type
(query, mutation) and by the codes of their errors, never by name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

HTTP_REQUESTS = Histogram(
    "gateway_http_request_seconds", "Time to answer an HTTP request, by route and status.",
    ["route", "status"], buckets=_BUCKETS,
)
GRAPHQL_OPERATIONS = Counter(
    "gateway_graphql_operations_total", "GraphQL operations by type and outcome (ok, or the first error code).",
    ["operation_type", "outcome"],
)
_ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/.well-known/jwks.json", "/metrics"})


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        try:
            operation_type = context.operation_type.value
        except RuntimeError:  # unparseable document or unknown operation name
            operation_type = "unknown"
        errors = context.result.errors if context.result is not None else None
        outcome = "ok"
        if errors:
            outcome = str((errors[0].extensions or {}).get("code", "INTERNAL"))
        GRAPHQL_OPERATIONS.labels(operation_type, outcome).inc()


class HttpMetrics:
    """Request durations by route (unknown paths share one label) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope["path"] if scope["path"] in _ROUTES else "other"
            HTTP_REQUESTS.labels(route, str(status)).observe(time.perf_counter() - started)

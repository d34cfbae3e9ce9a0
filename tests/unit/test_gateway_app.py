"""The gateway's HTTP surface over fake upstreams: probes, JWKS, body limit, CORS, GraphiQL, request ids."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
import pytest

from mintplane.api.auth.v1 import auth_pb2
from mintplane.gateway.app import create_app
from mintplane.gateway.errors import from_status
from mintplane.gateway.settings import GatewaySettings
from mintplane.gateway.testing import FakeAuth, FakeBackend

pytestmark = pytest.mark.unit


@asynccontextmanager
async def client_for(backend: FakeBackend, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewaySettings(**settings), upstreams=backend)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


async def test_healthz_and_readyz() -> None:
    backend = FakeBackend()
    async with client_for(backend) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        backend.health_status["wallet"] = "UNAVAILABLE"
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json() == {"status": "unavailable", "upstreams": {
            "auth": "SERVING", "user": "SERVING", "wallet": "UNAVAILABLE", "catalog": "SERVING",
            "chain_registry": "SERVING"}}


async def test_jwks_is_served_from_auth_and_cached() -> None:
    backend = FakeBackend()
    async with client_for(backend, jwks_cache_seconds=60) as client:
        responses = [await client.get("/.well-known/jwks.json") for _ in range(3)]
    assert all(r.status_code == 200 for r in responses)
    assert responses[0].json() == {"keys": [
        {"kid": "k1", "kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "x": "eA", "y": "eQ"}
    ]}
    assert responses[0].headers["cache-control"] == "public, max-age=60"
    assert backend.calls["GetJwks"] == 1


async def test_jwks_unavailable_is_503_without_details() -> None:
    class DownAuth(FakeAuth):
        async def get_jwks(self, request: auth_pb2.GetJwksRequest) -> auth_pb2.GetJwksResponse:
            raise from_status(grpc.StatusCode.UNAVAILABLE, "connection refused 127.0.0.1:50051")

    backend = FakeBackend()
    original: Callable[..., Any] = backend.clients
    backend.clients = lambda timeout=0: dataclasses.replace(  # type: ignore[method-assign]
        original(), auth=DownAuth(backend))
    async with client_for(backend) as client:
        response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 503 and "50051" not in response.text


async def test_graphql_answers_json_with_codes_and_request_ids() -> None:
    async with client_for(FakeBackend()) as client:
        ok = await client.post("/graphql", json={"query": "{ me { id } }"}, headers={"x-request-id": "req-123"})
        assert ok.status_code == 200 and ok.json() == {"data": {"me": None}}
        assert ok.headers["content-type"].startswith("application/json")
        assert ok.headers["x-request-id"] == "req-123"
        generated = await client.post("/graphql", json={"query": "{ me { id } }"},
                                      headers={"x-request-id": "evil\r\nvalue with spaces"})
        assert len(generated.headers["x-request-id"]) == 32
        bad_token = await client.post("/graphql", json={"query": "{ me { id } }"},
                                      headers={"authorization": "Bearer nope"})
        assert bad_token.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        not_json = await client.post("/graphql", content=b"{nope", headers={"content-type": "application/json"})
        assert not_json.status_code == 400


async def test_oversized_bodies_are_refused_with_413() -> None:
    async with client_for(FakeBackend(), max_request_bytes=2048) as client:
        padding = "#" + "x" * 4096 + "\n"
        declared = await client.post("/graphql", json={"query": padding + "{ me { id } }"})
        assert declared.status_code == 413
        assert declared.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 1024

        streamed = await client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        small = await client.post("/graphql", json={"query": "{ me { id } }"})
        assert small.status_code == 200


async def test_cors_allows_only_configured_origins() -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    async with client_for(FakeBackend(), cors_origins=["https://app.example"]) as client:
        allowed = await client.options("/graphql", headers={"origin": "https://app.example", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        denied = await client.options("/graphql", headers={"origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in denied.headers
        simple = await client.post("/graphql", json={"query": "{ me { id } }"},
                                   headers={"origin": "https://app.example"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_graphiql_only_when_enabled() -> None:
    html = {"accept": "text/html"}
    async with client_for(FakeBackend()) as client:
        assert (await client.get("/graphql", headers=html)).status_code == 404
    async with client_for(FakeBackend(), graphiql=True) as client:
        page = await client.get("/graphql", headers=html)
        assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_introspection_can_be_turned_off() -> None:
    query = {"query": "{ __schema { queryType { name } } }"}
    async with client_for(FakeBackend()) as client:
        allowed = (await client.post("/graphql", json=query)).json()
        assert allowed == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    async with client_for(FakeBackend(), introspection=False) as client:
        refused = (await client.post("/graphql", json=query)).json()
        assert refused["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_client_ip_and_user_agent_reach_the_auth_service() -> None:
    backend = FakeBackend()
    message = f"localhost wants you to sign in with your Ethereum account:\n0x{'c3' * 20}\n\nNonce: abc"
    async with client_for(backend) as client:
        response = await client.post("/graphql", headers={"user-agent": "wallet-app/1.0"}, json={
            "query": 'mutation($m: String!) { signIn(message: $m, signature: "0x12") '
                     "{ session { ipAddress userAgent } } }",
            "variables": {"m": message},
        })
    assert response.json()["data"]["signIn"]["session"] == {"ipAddress": "203.0.113.9", "userAgent": "wallet-app/1.0"}


async def test_metrics_count_operations_by_type_and_outcome() -> None:
    async with client_for(FakeBackend()) as client:
        before = (await client.get("/metrics")).text
        await client.post("/graphql", json={"query": "{ me { id } }"})
        await client.post("/graphql", json={"query": "{ me { nope } }"})
        after = (await client.get("/metrics")).text

    def value(text: str, sample: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(sample + " ")]
        return float(lines[0].split()[-1]) if lines else 0.0

    ok = 'gateway_graphql_operations_total{operation_type="query",outcome="ok"}'
    invalid = 'gateway_graphql_operations_total{operation_type="query",outcome="GRAPHQL_VALIDATION_FAILED"}'
    assert value(after, ok) == value(before, ok) + 1
    assert value(after, invalid) == value(before, invalid) + 1
    assert 'gateway_http_request_seconds_count{route="/graphql",status="200"}' in after

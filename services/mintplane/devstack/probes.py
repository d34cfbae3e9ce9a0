"""Real health probes: each talks to its piece through the client the services use and returns a short
detail (usually the version) or raises. `status` and `up` share them, so "up" means what "status" checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import urllib.request
from pathlib import Path
from typing import Any

# A probe of a piece that is still starting fails by design; aio-pika would log each refusal.
for _noisy in ("aio_pika", "aiormq"):
    logging.getLogger(_noisy).setLevel(logging.CRITICAL)


async def postgres(dsn: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        version = await conn.fetchval("SELECT current_setting('server_version')")
    finally:
        await conn.close()
    return f"PostgreSQL {version}"


async def redis(url: str) -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        if not await client.ping():
            raise RuntimeError("PING did not answer PONG")
        info = await client.info("server")
    finally:
        await client.aclose()
    return f"Redis {info['redis_version']}"


async def rabbitmq(url: str) -> str:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=5)
    try:
        props: dict[str, Any] = connection.transport.connection.server_properties  # type: ignore[union-attr]
        version = props.get("version", b"?")
    finally:
        await connection.close()
    return f"RabbitMQ {version.decode() if isinstance(version, bytes) else version}"


async def mongo(url: str) -> str:
    from motor.motor_asyncio import AsyncIOMotorClient

    client: Any = AsyncIOMotorClient(url, serverSelectionTimeoutMS=3000)
    try:
        await client.admin.command("ping")
        info = await client.admin.command("buildInfo")
    finally:
        client.close()
    server = "FerretDB" if "ferretdbVersion" in info else "MongoDB"
    return f"{server} (MongoDB wire {info.get('version')})"


def _http_get(url: str, context: ssl.SSLContext | None = None, data: bytes | None = None) -> bytes:
    headers = {"Content-Type": "application/json"} if data else {}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - loopback URLs we build
    with urllib.request.urlopen(request, timeout=3, context=context) as response:  # noqa: S310
        body: bytes = response.read()
        return body


async def etcd(url: str) -> str:
    health = json.loads(await asyncio.to_thread(_http_get, f"{url}/health"))
    if health.get("health") != "true":
        raise RuntimeError(f"etcd unhealthy: {health}")
    version = json.loads(await asyncio.to_thread(_http_get, f"{url}/version"))
    return f"etcd {version['etcdserver']}"


def kube_tls(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


async def kube_apiserver(url: str, pki: Path) -> str:
    context = kube_tls(pki)
    ready = await asyncio.to_thread(_http_get, f"{url}/readyz", context)
    if ready.strip() != b"ok":
        raise RuntimeError(f"/readyz said {ready[:200]!r}")
    version = json.loads(await asyncio.to_thread(_http_get, f"{url}/version", context))
    return f"Kubernetes {version['gitVersion']}"


async def kube_controller_manager(url: str) -> str:
    # Its serving cert is self-signed and /healthz is on the always-allowed list: check liveness only.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    body = await asyncio.to_thread(_http_get, f"{url}/healthz", context)
    if body.strip() != b"ok":
        raise RuntimeError(f"/healthz said {body[:200]!r}")
    return "healthz ok"


async def eth_rpc(url: str, expected_chain_id: int | None = None) -> str:
    async def call(method: str) -> Any:
        payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
        reply = json.loads(await asyncio.to_thread(_http_get, url, None, payload))
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    chain_id = int(await call("eth_chainId"), 16)
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise RuntimeError(f"eth_chainId is {chain_id}, expected {expected_chain_id}")
    head = int(await call("eth_blockNumber"), 16)
    client = await call("web3_clientVersion")
    return f"{client}, chain {chain_id}, head {head}"


async def kubo(api_url: str) -> str:
    """kubo's RPC API answers POST only (a GET is refused with 405, by design against browser CSRF)."""
    version = json.loads(await asyncio.to_thread(_http_get, f"{api_url}/api/v0/version", None, b""))
    return f"kubo {version['Version']}"


async def grpc_health(target: str, service: str = "") -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=3)
    status: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise RuntimeError(f"health is {status}")
    return status


async def http_ready(url: str) -> str:
    body = json.loads(await asyncio.to_thread(_http_get, url))
    if body.get("status") != "ready":
        raise RuntimeError(f"{url} says {body}")
    return "ready"


async def http_ok(url: str) -> str:
    await asyncio.to_thread(_http_get, url)  # raises on a non-2xx answer or no answer
    return "ok"


def _http_get_typed(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback URLs we build
        body: bytes = response.read()
        return str(response.headers.get("Content-Type", "")), body


async def static_json(url: str, key: str) -> str:
    """A static JSON document served as application/json and holding ``key`` (the demo file server)."""
    content_type, body = await asyncio.to_thread(_http_get_typed, url)
    if content_type.split(";")[0].strip() != "application/json":
        raise RuntimeError(f"{url} answered {content_type or 'no content type'}, not application/json")
    document = json.loads(body)
    if key not in document:
        raise RuntimeError(f"{url} has no {key!r}")
    return f"serving ({len(body)} bytes at {url.rsplit('/', 2)[-2]}/{url.rsplit('/', 1)[-1]})"


async def indexer_lane(target: str, caip2: str) -> str:
    """An indexer process that follows ``caip2`` itself: its GetStatus reports a live lane with a head (the
    status-only server, which answers from checkpoints, reports no head and does not pass)."""
    import grpc

    from mintplane.api.common.v1 import common_pb2
    from mintplane.api.indexer.v1 import indexer_pb2, indexer_pb2_grpc

    async with grpc.aio.insecure_channel(target) as channel:
        stub = indexer_pb2_grpc.IndexerServiceStub(channel)
        reply = await stub.GetStatus(indexer_pb2.GetStatusRequest(chain=common_pb2.ChainRef(caip2=caip2)), timeout=3)
    status = reply.status
    state = indexer_pb2.IndexerState.Name(status.state).removeprefix("INDEXER_STATE_")
    if status.head_block <= 0:
        raise RuntimeError(f"no live lane for {caip2} yet ({state}, no head reported)")
    return f"{state} {caip2}, block {status.last_indexed_block} of {status.head_block}"

"""The endpoint probe against a small JSON-RPC server started by the test (HTTP and websocket)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from mintplane.common.endpoint_auth import AuthType, Credential
from mintplane.operator import probe

pytestmark = pytest.mark.unit

SECRET = "sk_live_0123456789abcdefSECRET"


class RpcServer:
    """Answers the probe batch with a chosen chain id and head; records what it received."""

    def __init__(self) -> None:
        self.chain_id = 31337
        self.head = 42
        self.delay = 0.0
        self.status = 200
        self.seen: list[web.Request] = []

    def answer(self) -> list[dict[str, Any]]:
        return [{"jsonrpc": "2.0", "id": 1, "result": hex(self.chain_id)},
                {"jsonrpc": "2.0", "id": 2, "result": hex(self.head)}]

    async def http(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.Response(status=self.status, text=f"denied {SECRET}")
        return web.json_response(self.answer())

    async def ws(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            assert len(json.loads(message.data)) == 2
            await socket.send_json(self.answer())
        return socket


@pytest.fixture
async def rpc() -> AsyncIterator[tuple[RpcServer, str]]:
    server = RpcServer()
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.http)
    app.router.add_get("/ws", server.ws)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield server, f"127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_probe_reads_chain_id_and_head(rpc: tuple[RpcServer, str], session: aiohttp.ClientSession) -> None:
    _, host = rpc
    result = await probe.probe(session, f"http://{host}/", timeout=2)
    assert (result.answered, result.chain_id, result.head_block) == (True, 31337, 42)
    assessed = probe.assess(result, expected_chain_id=31337, best_peer_head=44, max_blocks_behind=10)
    assert (assessed.healthy, assessed.blocks_behind, assessed.score) == (True, 2, "green")


async def test_websocket_endpoints_are_probed_too(rpc: tuple[RpcServer, str], session: aiohttp.ClientSession) -> None:
    server, host = rpc
    server.head = 7
    result = await probe.probe(session, f"ws://{host}/ws", timeout=2)
    assert (result.chain_id, result.head_block) == (31337, 7)


async def test_wrong_chain_is_unhealthy_with_reason(rpc: tuple[RpcServer, str],
                                                    session: aiohttp.ClientSession) -> None:
    server, host = rpc
    server.chain_id = 1
    assessed = probe.assess(await probe.probe(session, f"http://{host}"), expected_chain_id=31337,
                            best_peer_head=None, max_blocks_behind=10)
    assert not assessed.healthy
    assert assessed.error == "ChainIdMismatch: expected 31337, got 1"
    assert assessed.score == "red"


@pytest.mark.parametrize(
    ("auth", "param", "check"),
    [
        ("bearer", "", lambda r: r.headers["Authorization"] == f"Bearer {SECRET}"),
        ("header", "x-api-key", lambda r: r.headers["x-api-key"] == SECRET),
        ("path", "", lambda r: r.path == f"/v3/{SECRET}"),
        ("query", "apikey", lambda r: r.query["apikey"] == SECRET),
        ("basic", "", lambda r: r.headers["Authorization"].startswith("Basic ")),
    ],
)
async def test_each_crd_auth_type_reaches_the_endpoint(rpc: tuple[RpcServer, str], session: aiohttp.ClientSession,
                                                       auth: str, param: str,
                                                       check: Callable[[web.Request], bool]) -> None:
    """The CRD's names map onto the shared request builder (whose own cases live in test_endpoint_auth)."""
    server, host = rpc
    value = SECRET if auth != "basic" else f"user:{SECRET}"
    credential = Credential(auth_type=probe.crd_auth_type(auth), value=value, param=param)
    result = await probe.probe(session, f"http://{host}/v3", credential=credential)
    assert result.answered
    assert check(server.seen[-1])


def test_every_crd_auth_type_has_a_registry_name() -> None:
    crd = Path(__file__).resolve().parents[2] / "crds" / "chainendpoints.mintplane.io.yaml"
    schema = yaml.safe_load(crd.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert set(schema["properties"]["spec"]["properties"]["authType"]["enum"]) == set(probe.CRD_AUTH_TYPES)
    assert set(probe.CRD_AUTH_TYPES.values()) == set(AuthType)
    with pytest.raises(ValueError, match="authType 'apiKey' is not one of none, bearer"):
        probe.crd_auth_type("apiKey")


@pytest.mark.parametrize("auth", ["header", "query"])
async def test_named_auth_without_a_name_is_not_sent(rpc: tuple[RpcServer, str], session: aiohttp.ClientSession,
                                                     auth: str) -> None:
    server, host = rpc
    credential = Credential(probe.crd_auth_type(auth), SECRET)
    result = await probe.probe(session, f"http://{host}/", credential=credential)
    assert result.reason == "InvalidSpec" and "needs auth_param (authParam in a ChainEndpoint)" in result.error
    assert server.seen == [] and SECRET not in result.error


async def test_failures_never_leak_the_key(rpc: tuple[RpcServer, str], session: aiohttp.ClientSession) -> None:
    server, host = rpc
    server.status = 401
    credential = Credential(auth_type=AuthType.API_KEY_PATH, value=SECRET)
    result = await probe.probe(session, f"http://{host}/v3", credential=credential)
    assert result.reason == "HttpStatus"
    assert SECRET not in result.error
    server.status, server.delay = 200, 1.0
    slow = await probe.probe(session, f"http://{host}/v3", credential=credential, timeout=0.2)
    assert slow.reason == "Timeout"
    assert SECRET not in slow.error


async def test_unreachable_endpoint_reports_connection_error(session: aiohttp.ClientSession,
                                                             free_port: int) -> None:
    result = await probe.probe(session, f"http://127.0.0.1:{free_port}", timeout=1)
    assert result.reason == "ConnectionError"
    assert f"127.0.0.1:{free_port}" in result.error


def test_scores_follow_public_rpc_list_thresholds() -> None:
    assert probe.score(healthy=True, latency_ms=120, blocks_behind=1) == "green"
    assert probe.score(healthy=True, latency_ms=450, blocks_behind=1) == "orange"
    assert probe.score(healthy=True, latency_ms=100, blocks_behind=8) == "orange"
    assert probe.score(healthy=True, latency_ms=1500, blocks_behind=0) == "red"
    assert probe.score(healthy=False, latency_ms=10, blocks_behind=0) == "red"
    lagging = probe.assess(probe.ProbeResult(latency_ms=10, chain_id=1, head_block=100), expected_chain_id=1,
                           best_peer_head=150, max_blocks_behind=10)
    assert (lagging.healthy, lagging.reason, lagging.blocks_behind) == (False, "Lagging", 50)

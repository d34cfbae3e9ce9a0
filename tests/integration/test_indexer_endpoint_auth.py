"""Keyed RPC endpoints end to end: the registry describes how the key travels, the key comes from the
environment, and the indexer backfills through a provider that refuses every request without it.

A small aiohttp JSON-RPC proxy stands in front of a fresh anvil and answers only requests carrying the
key (as query parameter ``apikey``, or in a named header). The chain registry (the dev stack's, over gRPC)
holds three endpoints for the chain, all pointing at the proxy: one whose key variable holds a stale key
(refused with 401, so the pool fails over), one whose key variable is not set at all (skipped with a
warning), and the right one. The lane runs in this process, as the indexer runs it; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import grpc
import pytest
import pytest_asyncio
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
import chainkit as ck
import pipeline as pl

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as rpb
from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc as rpb_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.common.postgres import create_pool
from mintplane.common.settings import InfraSettings
from mintplane.indexer.lane import LaneSpec, Tuning
from mintplane.indexer.queries import status_message
from mintplane.indexer.registry import secret_env_name
from mintplane.indexer.repository import backfill_scope

pytestmark = pytest.mark.integration

AMQP_URL = InfraSettings().amqp_url.get_secret_value()
NAMESPACE = "mintplane-test"


@pytest_asyncio.fixture
async def pg() -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(InfraSettings(pg_pool_max=4), application_name="mintplane-endpoint-auth-tests")
    yield pool
    await pool.close()


@dataclass
class KeyedProxy:
    """Forwards JSON-RPC to anvil only when the key is in the query parameter or header ``param``."""

    upstream: str
    where: str  # "query" | "header"
    param: str
    key: str
    forwarded: Counter[str] = field(default_factory=Counter)  # by path
    refused: Counter[str] = field(default_factory=Counter)
    url: str = ""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> KeyedProxy:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        presented = request.query.get(self.param) if self.where == "query" else request.headers.get(self.param)
        if presented != self.key:
            self.refused[request.path] += 1
            return web.json_response({"error": "missing or invalid API key"}, status=401)
        assert self._session is not None
        async with self._session.post(self.upstream, data=await request.read(),
                                      headers={"Content-Type": "application/json"}) as upstream:
            body, status = await upstream.read(), upstream.status
        self.forwarded[request.path] += 1
        return web.Response(body=body, status=status, content_type="application/json")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


async def _bind_queue(name: str, caip2: str) -> None:
    """A queue for the chain's events on the test exchange: the publisher's confirms need a route."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(pl.TEST_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(name, durable=True)
        await queue.bind(exchange, f"chain.{caip2}.#")
    finally:
        await connection.close()


def _build_chain(anvil: ck.Anvil) -> tuple[str, int, int]:
    """An ERC-721 with 12 blocks of mints and one transfer: (contract, first block, last block)."""
    erc721 = ck.deploy(anvil, "ERC721")
    start = anvil.head()
    for block in range(12):
        ck.mine_block_with(anvil, [ck.mint_721_tx(erc721, ck.ACCOUNTS[1 + block % 5], block * 10 + 1, 10)])
    ck.mine_block_with(anvil, [ck.transfer_721_tx(erc721, ck.ACCOUNTS[1], ck.ACCOUNTS[9], 1)])
    return erc721, start, anvil.head()


async def _register(target: str, anvil: ck.Anvil, erc721: str, start: int,
                    endpoints: list[tuple[str, int, str]], auth_type: int, auth_param: str) -> None:
    """The chain, its keyed endpoints ((url, priority, secret ref)) and the contract, as the operator would."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = rpb_grpc.ChainRegistryServiceStub(channel)
        await stub.UpsertChain(rpb.UpsertChainRequest(chain=rpb.Chain(
            caip2=anvil.caip2, chain_numeric=anvil.chain_id, name=f"endpoint auth test {anvil.chain_id}",
            native_symbol="ETH", enabled=True)), timeout=10)
        for url, priority, ref in endpoints:
            await stub.UpsertEndpoint(rpb.UpsertEndpointRequest(endpoint=rpb.Endpoint(
                caip2=anvil.caip2, url=url, priority=priority, weight=1, auth_type=auth_type,  # type: ignore[arg-type]
                auth_secret_ref=ref, auth_param=auth_param, active=True)), timeout=10)
        await stub.UpsertContract(rpb.UpsertContractRequest(contract=rpb.Contract(
            caip2=anvil.caip2, address=erc721, start_block=start, standard=common_pb2.TOKEN_STANDARD_ERC721,
            name="endpoint auth test")), timeout=10)


@pytest.mark.parametrize(
    ("where", "auth_type", "param"),
    [("query", rpb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "apikey"),
     ("header", rpb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER, "X-Mintplane-Key")],
    ids=["api-key-query", "api-key-header"],
)
async def test_backfill_through_a_provider_that_wants_its_key(
    pg: asyncpg.Pool[Any], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    where: str, auth_type: int, param: str,
) -> None:
    assert ck.registry_answers(), "the chain-registry service must answer on its port (dev stack)"
    registry = ck.registry_target()
    mongo = pl.mongo_client()
    tag = uuid.uuid4().hex[:10]
    key, stale_key = f"sk-{uuid.uuid4().hex}", f"stale-{uuid.uuid4().hex}"
    good_ref, stale_ref, unset_ref = (f"secret://{NAMESPACE}/rpc-{tag}{suffix}/apiKey"
                                      for suffix in ("", "-stale", "-unset"))
    monkeypatch.setenv(secret_env_name(good_ref), key)
    monkeypatch.setenv(secret_env_name(stale_ref), stale_key)
    monkeypatch.delenv(secret_env_name(unset_ref), raising=False)

    anvil = ck.Anvil().start()
    proxy = await KeyedProxy(anvil.url, where, param, key).start()
    events = f"test.endpoint-auth.{tag}"
    run: pl.LaneRun | None = None
    try:
        await _bind_queue(events, anvil.caip2)
        erc721, start, last = await asyncio.to_thread(_build_chain, anvil)
        probe = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        async with aiohttp.ClientSession() as session, session.post(f"{proxy.url}/good", json=probe) as bare:
            assert bare.status == 401  # the provider really refuses a request without the key
        proxy.refused.clear()
        await _register(registry, anvil, erc721, start, [
            (f"{proxy.url}/stale", 0, stale_ref), (f"{proxy.url}/unset", 0, unset_ref),
            (f"{proxy.url}/good", 1, good_ref),
        ], auth_type, param)

        spec = LaneSpec(chain=anvil.caip2, scope=backfill_scope(anvil.caip2, start, last, []), confirmations=0,
                        first_block=start, target_block=last)
        run = await pl.LaneRun.open(spec, Tuning(initial_range=3, max_range=3, poll_interval=0.1), pg=pg,
                                    mongo=mongo, amqp_url=AMQP_URL, registry_target=registry, rpc_timeout=5.0,
                                    cooldown=0.2, max_cooldown=1.0)
        run.start()
        await asyncio.wait_for(run.lane_task, 60)  # a backfill lane returns once its range is done
        run.lane_task.result()

        # the backfill is complete and right
        logs = anvil.call("eth_getLogs", {"fromBlock": hex(start), "toBlock": hex(last), "address": erc721})
        expected = pl.oracle_rows(anvil.caip2, logs, {erc721: "ERC721"})
        snap = await pl.snapshot(pg, mongo, anvil.caip2, with_mongo=False)
        assert [r[:11] for r in snap["transfers"]] == expected and len(expected) == 12 * 10 + 1
        assert run.status.last_block == last
        assert run.publisher.published == len(expected)  # and every transfer was published, in messages
        assert 1 <= await pl.queue_depth(AMQP_URL, events) <= len(expected)

        # it was served through the right endpoint, with the key; the stale one was refused, the unset skipped
        assert proxy.forwarded["/good"] > 0 and set(proxy.forwarded) == {"/good"}
        assert proxy.refused["/stale"] >= 1 and proxy.refused["/good"] == 0 and proxy.refused["/unset"] == 0
        described = run.lane.endpoints()
        assert [e["url"] for e in described] == [f"{proxy.url}/stale", f"{proxy.url}/good"]
        assert described[0]["failures"] >= 1 and described[0]["last_error"] == "HTTP 401"

        # and no key shows: not in the endpoint descriptions, the status (as GetStatus sends it), or the logs
        status = status_message(run.status, 120.0)
        await run.close()
        run = None
        out, err = capfd.readouterr()
        assert secret_env_name(unset_ref) in out + err  # the skipped endpoint was logged, naming its variable
        for text in (repr(described), str(status), out, err):
            assert key not in text and stale_key not in text, text[:2000]
        assert status.endpoint_url == f"{proxy.url}/good"
    finally:
        if run is not None:
            await run.close()
        await proxy.stop()
        await pl.delete_queue_named(AMQP_URL, events)
        await pl.purge(pg, mongo, anvil.caip2)
        anvil.stop()
        ck.disable_chain(registry, anvil.chain_id)

"""RPC endpoints: failover by priority, rate limits, and recovery after every endpoint went down.

Two anvil nodes serve the same chain (the second loads the first's state dump: same blocks, same hashes),
registered through the chain registry as priority 0 and 1 with a rate limit. The follower runs in this
process, with the indexer gRPC API served beside it on an ephemeral port so GetStatus is checked for real.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
import chainkit as ck
import pipeline as pl

from mintplane.api.common.v1 import common_pb2
from mintplane.api.indexer.v1 import indexer_pb2, indexer_pb2_grpc
from mintplane.common.postgres import create_pool
from mintplane.common.service import Resources
from mintplane.common.settings import InfraSettings
from mintplane.indexer.lane import LaneSpec, Tuning
from mintplane.indexer.server import build_server
from mintplane.indexer.settings import IndexerSettings
from mintplane.indexer.status import State, StatusBoard

pytestmark = pytest.mark.integration

AMQP_URL = InfraSettings().amqp_url.get_secret_value()
RATE_LIMIT = 40  # requests per second, per endpoint


@pytest_asyncio.fixture
async def pg() -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(InfraSettings(pg_pool_max=6), application_name="mintplane-indexer-tests")
    yield pool
    await pool.close()


async def _wait(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


async def _grpc_state(port: int, caip2: str) -> indexer_pb2.ChainIndexStatus:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = await indexer_pb2_grpc.IndexerServiceStub(channel).GetStatus(
            indexer_pb2.GetStatusRequest(chain=common_pb2.ChainRef(caip2=caip2)), timeout=5
        )
    return response.status


async def test_failover_rate_limits_and_recovery_when_every_endpoint_was_down(pg: asyncpg.Pool[Any]) -> None:
    assert ck.registry_answers(), "the chain-registry service must answer on its port (dev stack)"
    registry = ck.registry_target()
    mongo = pl.mongo_client()
    dump = Path(tempfile.mkdtemp(prefix="mintplane-anvil-")) / "state.json"
    builder = ck.Anvil(dump_state=dump).start()
    chain_id = builder.chain_id
    caip2 = builder.caip2
    preferred = ck.Anvil(chain_id=chain_id, load_state=dump)
    standby = ck.Anvil(chain_id=chain_id, load_state=dump)
    run: pl.LaneRun | None = None
    consumer: pl.ConsumerRun | None = None
    server = None
    try:
        erc721 = ck.deploy(builder, "ERC721")
        start = builder.head()
        for block in range(80):
            ck.mine_block_with(builder, [ck.mint_721_tx(erc721, ck.ACCOUNTS[1 + block % 5], block * 20 + 1, 20)])
        last = builder.head()
        builder.stop()  # writes the dump
        preferred.start()
        standby.start()
        assert preferred.block_hash(last) == standby.block_hash(last)
        ck.seed_registry(registry, chain_id, [
            ck.EndpointSeed(preferred.url, priority=0, weight=1, rate_limit=RATE_LIMIT),
            ck.EndpointSeed(standby.url, priority=1, weight=1, rate_limit=RATE_LIMIT),
        ], [(erc721, "ERC721", start)])

        consumer = await pl.ConsumerRun.start(pg, caip2, AMQP_URL, queue=f"test.endpoints.{uuid.uuid4().hex[:10]}")
        spec = LaneSpec(chain=caip2, scope=caip2, confirmations=0)
        run = await pl.LaneRun.open(spec, Tuning(initial_range=1, max_range=1, poll_interval=0.1), pg=pg,
                                    mongo=mongo, amqp_url=AMQP_URL, registry_target=registry,
                                    rpc_timeout=2.0, cooldown=0.2, max_cooldown=1.0)
        board = StatusBoard()
        board.add(run.status)
        server = await build_server(IndexerSettings(grpc_port=0), Resources(pg=pg), board=board)
        await server.server.start()
        run.start()

        # the preferred endpoint serves until it dies mid-run; the standby takes over
        await _wait(lambda: run is not None and run.status.last_block >= start + 20, "progress on the preferred node")
        assert run.status.endpoint_url.endswith(f":{preferred.port}")
        assert preferred.process is not None
        preferred.process.kill()
        preferred.process.wait()
        served_at = run.status.last_block
        await _wait(lambda: run is not None and run.status.endpoint_url.endswith(f":{standby.port}"), "failover")
        began, requests_before = time.monotonic(), _requests(run, standby.port)
        await _wait(lambda: run is not None and run.status.last_block == last, "indexing on the standby")
        assert run.status.last_block > served_at
        elapsed = time.monotonic() - began
        rate = (_requests(run, standby.port) - requests_before) / elapsed
        assert rate <= RATE_LIMIT * 1.15 + RATE_LIMIT / elapsed, f"{rate:.1f} requests/s over the limit"

        # both down: the status says so (live, over gRPC), and the lane waits
        assert standby.process is not None
        standby.process.kill()
        standby.process.wait()
        await _wait(lambda: run is not None and run.status.state is State.ENDPOINTS_DOWN, "ENDPOINTS_DOWN")
        status = await _grpc_state(server.port, caip2)
        assert status.state == indexer_pb2.INDEXER_STATE_ENDPOINTS_DOWN
        assert "every RPC endpoint is failing" in status.last_error
        assert not run.lane_task.done()

        # one comes back (same port, same chain): it resumes by itself and indexes a new block
        standby.start()
        ck.mine_block_with(standby, [ck.transfer_721_tx(erc721, ck.ACCOUNTS[1], ck.ACCOUNTS[9], 1)])
        await _wait(lambda: run is not None and run.status.last_block == last + 1, "recovery", timeout=30)
        await _wait(lambda: run is not None and run.status.state is State.FOLLOWING, "FOLLOWING again")
        status = await _grpc_state(server.port, caip2)
        assert status.state == indexer_pb2.INDEXER_STATE_FOLLOWING and status.last_indexed_block == last + 1
        assert status.endpoint_url.endswith(f":{standby.port}")

        await run.publisher.drain()
        await consumer.idle(quiet=0.6)
        logs = standby.call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest", "address": erc721})
        expected = pl.oracle_rows(caip2, logs, {erc721: "ERC721"})
        snap = await pl.snapshot(pg, mongo, caip2, with_mongo=False)
        assert [r[:11] for r in snap["transfers"]] == expected
        assert len(snap["activities"]) == len(expected) == 80 * 20 + 1
    finally:
        if server is not None:
            await server.server.stop(None)
        if run is not None:
            await run.close()
        if consumer is not None:
            await consumer.stop()
        await pl.purge(pg, mongo, caip2)
        for node in (builder, preferred, standby):
            node.stop()
        ck.disable_chain(registry, chain_id)
        shutil.rmtree(dump.parent, ignore_errors=True)


def _requests(run: pl.LaneRun, port: int) -> int:
    return sum(e["requests"] for e in run.lane.endpoints() if e["url"].endswith(f":{port}"))

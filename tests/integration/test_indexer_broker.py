"""The broker goes away mid-run and comes back: no event is lost, the catalog ends consistent.

A private RabbitMQ node (own HOME, mnesia, config, node name and ports; the dev stack's broker is never
touched) carries the events. While it is stopped the follower keeps indexing into PostgreSQL and MongoDB,
its outbox fills, and publishing backs off; after the restart both sides reconnect on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
import chainkit as ck
import pipeline as pl

from mintplane.common.postgres import create_pool
from mintplane.common.settings import InfraSettings
from mintplane.indexer.lane import LaneSpec, Tuning

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def pg() -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(InfraSettings(pg_pool_max=6), application_name="mintplane-indexer-tests")
    yield pool
    await pool.close()


async def _mine_while(anvil: ck.Anvil, erc721: str, stop: asyncio.Event, first_token: int) -> int:
    """Keep minting blocks (25 tokens each) until told to stop; returns the next unused token id."""
    token = first_token
    while not stop.is_set():
        await asyncio.to_thread(ck.mine_block_with, anvil, [ck.mint_721_tx(erc721, ck.ACCOUNTS[2], token, 25)])
        token += 25
        await asyncio.sleep(0.05)
    return token


async def test_broker_stopped_and_restarted_mid_run_loses_nothing(pg: asyncpg.Pool[Any]) -> None:
    assert ck.registry_answers(), "the chain-registry service must answer on its port (dev stack)"
    registry = ck.registry_target()
    mongo = pl.mongo_client()
    broker = ck.RabbitNode()
    anvil = ck.Anvil().start()
    run: pl.LaneRun | None = None
    consumer: pl.ConsumerRun | None = None
    stop_mining = asyncio.Event()
    miner: asyncio.Task[int] | None = None
    try:
        await asyncio.to_thread(broker.start)
        erc721 = ck.deploy(anvil, "ERC721")
        start = anvil.head()
        for block in range(10):
            ck.mine_block_with(anvil, [ck.mint_721_tx(erc721, ck.ACCOUNTS[1], block * 200 + 1, 200)])
        ck.seed_registry(registry, anvil.chain_id, [ck.EndpointSeed(anvil.url)], [(erc721, "ERC721", start)])

        consumer = await pl.ConsumerRun.start(pg, anvil.caip2, broker.url, queue=f"catalog.test.{uuid.uuid4().hex[:8]}")
        spec = LaneSpec(chain=anvil.caip2, scope=anvil.caip2, confirmations=0)
        run = await pl.LaneRun.open(spec, Tuning(initial_range=2, max_range=4, poll_interval=0.1), pg=pg,
                                    mongo=mongo, amqp_url=broker.url, registry_target=registry, publish_batch=500)
        run.start()
        miner = asyncio.create_task(_mine_while(anvil, erc721, stop_mining, 10_001))
        deadline = time.monotonic() + 60
        while run.publisher.published < 1000:
            assert time.monotonic() < deadline, "nothing was published before the outage"
            await asyncio.sleep(0.05)

        await asyncio.to_thread(broker.stop)
        indexed_when_down = run.status.last_block
        await asyncio.sleep(3.0)  # the chain moves on; the indexer keeps indexing into its outbox
        assert run.status.last_block > indexed_when_down
        assert run.publisher.pending > 0 and "publish" in run.publisher.last_error

        await asyncio.to_thread(broker.start)
        await asyncio.sleep(1.0)
        stop_mining.set()
        await miner
        miner = None
        head = anvil.head()
        deadline = time.monotonic() + 90
        while run.status.last_block < head:
            assert time.monotonic() < deadline and not run.lane_task.done()
            await asyncio.sleep(0.1)
        await asyncio.wait_for(run.publisher.drain(), 90)
        await consumer.idle(quiet=1.0, timeout=120)

        logs = anvil.call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest", "address": erc721})
        expected = pl.oracle_rows(anvil.caip2, logs, {erc721: "ERC721"})
        expected_ids = sorted(f"{r[0]}:{r[7]}:{r[8]}:{r[9]}" for r in expected)
        snap = await pl.snapshot(pg, mongo, anvil.caip2, with_mongo=False)
        assert [r[:11] for r in snap["transfers"]] == expected
        assert [a[0] for a in snap["activities"]] == expected_ids
        assert snap["ledger"] == [(event, True) for event in expected_ids]
        items = sum(1 for t in snap["tokens"] if not t[3])
        assert snap["stats"] == [(erc721, items, len({t[2] for t in snap["tokens"]}), str(items))]
        assert consumer.consumer.stats.rejected == 0
    finally:
        stop_mining.set()
        if miner is not None:
            with contextlib.suppress(BaseException):
                await miner
        if run is not None:
            await run.close()
        if consumer is not None:
            await consumer.stop(delete_queue=False)
        await pl.purge(pg, mongo, anvil.caip2)
        anvil.stop()
        await asyncio.to_thread(broker.remove)
        ck.disable_chain(registry, anvil.chain_id)

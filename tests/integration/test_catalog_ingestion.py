"""Catalog ingestion against the real PostgreSQL (and, for the consumer, the dev stack's RabbitMQ).

Events are the indexer's JSON messages on made-up chains with unique CAIP-2 ids, so tests never share
rows. What is checked is what a user of the catalog sees: owners, burned flags, activity, stats, and that
duplicates, reordering and retractions all end in the same state.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
import events as ev
import pipeline as pl

from mintplane.catalog.ingest import parse_event
from mintplane.catalog.repository import CatalogRepository
from mintplane.common.postgres import create_pool
from mintplane.common.settings import InfraSettings

pytestmark = pytest.mark.integration

ZERO = ev.ZERO
AMQP_URL = InfraSettings().amqp_url.get_secret_value()


@pytest_asyncio.fixture
async def pg() -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(InfraSettings(pg_pool_max=4), application_name="mintplane-catalog-tests")
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def chain(pg: asyncpg.Pool[Any]) -> AsyncIterator[ev.Chain]:
    made = ev.Chain()
    yield made
    async with pg.acquire() as conn:
        await conn.execute("DELETE FROM catalog.collections WHERE chain_id = $1", made.caip2)
        await conn.execute("DELETE FROM catalog.processed_events WHERE event_id LIKE $1", made.caip2 + ":%")


async def _token(pg: asyncpg.Pool[Any], chain: ev.Chain, contract: str, number: int) -> asyncpg.Record | None:
    return await pg.fetchrow(
        """SELECT t.owner_address, t.burned, t.minted_at FROM catalog.tokens t
             JOIN catalog.collections c ON c.id = t.collection_id
            WHERE c.chain_id = $1 AND c.contract_address = $2 AND t.token_number = $3""",
        chain.caip2, contract, str(number))


async def _stats(pg: asyncpg.Pool[Any], chain: ev.Chain, contract: str) -> tuple[int, int, str]:
    row = await pg.fetchrow(
        """SELECT s.items_count, s.owners_count, c.total_supply FROM catalog.collections c
             JOIN catalog.collection_stats s ON s.collection_id = c.id
            WHERE c.chain_id = $1 AND c.contract_address = $2""", chain.caip2, contract)
    assert row is not None
    return row["items_count"], row["owners_count"], row["total_supply"]


async def _activity_types(pg: asyncpg.Pool[Any], chain: ev.Chain, contract: str, number: int) -> list[str]:
    rows = await pg.fetch(
        """SELECT a.type FROM catalog.activities a JOIN catalog.tokens t ON t.id = a.token_id
             JOIN catalog.collections c ON c.id = t.collection_id
            WHERE c.chain_id = $1 AND c.contract_address = $2 AND t.token_number = $3
            ORDER BY a.block_number, a.log_index""", chain.caip2, contract, str(number))
    return [r["type"] for r in rows]


async def test_mint_transfer_burn_and_stats(pg: asyncpg.Pool[Any], chain: ev.Chain) -> None:
    repo = CatalogRepository(pg)
    contract, alice, bob = ev.address(), ev.address(), ev.address()
    result = await repo.ingest([
        chain.event("transfer", contract, 1, ZERO, alice, block=10),
        chain.event("transfer", contract, 2, ZERO, alice, block=10, log=1),
        chain.event("transfer", contract, 1, alice, bob, block=11),
    ])
    assert (result.applied, result.undone, result.collections) == (3, 0, 1)
    token = await _token(pg, chain, contract, 1)
    assert token is not None and token["owner_address"] == bob and not token["burned"]
    assert token["minted_at"] == chain.epoch_start + timedelta(seconds=12 * 10)  # the mint block's time
    assert await _stats(pg, chain, contract) == (2, 2, "2")

    await repo.ingest([chain.event("transfer", contract, 1, bob, ZERO, block=12)])
    token = await _token(pg, chain, contract, 1)
    assert token is not None and token["burned"] and token["owner_address"] is None
    assert await _activity_types(pg, chain, contract, 1) == ["mint", "transfer", "burn"]
    assert await _stats(pg, chain, contract) == (1, 1, "1")
    collection = await pg.fetchrow("SELECT registration, status, slug, collection_type FROM catalog.collections "
                                   "WHERE chain_id = $1 AND contract_address = $2", chain.caip2, contract)
    assert collection is not None
    assert (collection["registration"], collection["status"], collection["collection_type"]) == (
        "discovered", "live", "ERC721")


async def test_duplicates_and_reordering_end_in_the_same_state(pg: asyncpg.Pool[Any], chain: ev.Chain) -> None:
    repo = CatalogRepository(pg)
    contract, alice, bob, carol = ev.address(), ev.address(), ev.address(), ev.address()
    mint = chain.event("transfer", contract, 7, ZERO, alice, block=20)
    move = chain.event("transfer", contract, 7, alice, bob, block=21)
    later = chain.event("transfer", contract, 7, bob, carol, block=22)
    # later positions first, duplicates inside and across batches
    await repo.ingest([later, later, move])
    await repo.ingest([mint, later])
    result = await repo.ingest([move, mint])
    assert result.applied == 0 and result.unchanged == 2
    token = await _token(pg, chain, contract, 7)
    assert token is not None and token["owner_address"] == carol  # by chain position, not arrival order
    assert await _activity_types(pg, chain, contract, 7) == ["mint", "transfer", "transfer"]
    assert await _stats(pg, chain, contract) == (1, 1, "1")


async def test_retractions_undo_exactly_their_event(pg: asyncpg.Pool[Any], chain: ev.Chain) -> None:
    repo = CatalogRepository(pg)
    contract, alice, bob, carol = ev.address(), ev.address(), ev.address(), ev.address()
    await repo.ingest([chain.event("transfer", contract, 1, ZERO, alice, block=30),
                       chain.event("transfer", contract, 2, ZERO, alice, block=30, log=1),
                       chain.event("transfer", contract, 1, alice, bob, block=31)])
    # the block holding the move to bob is orphaned; the replacement sends the token to carol
    result = await repo.ingest([chain.event("retraction", contract, 1, alice, bob, block=31, epoch=1)])
    assert result.undone == 1
    token = await _token(pg, chain, contract, 1)
    assert token is not None and token["owner_address"] == alice
    chain.hashes[31] = ev.block_hash()
    await repo.ingest([chain.event("transfer", contract, 1, alice, carol, block=31, epoch=1)])
    token = await _token(pg, chain, contract, 1)
    assert token is not None and token["owner_address"] == carol
    # a retracted mint: the token never existed on the canonical chain
    await repo.ingest([chain.event("retraction", contract, 2, ZERO, alice, block=30, log=1, epoch=1)])
    assert await _token(pg, chain, contract, 2) is None
    assert await _stats(pg, chain, contract) == (1, 1, "1")


async def test_a_retraction_that_arrives_first_wins_over_its_late_transfer(
    pg: asyncpg.Pool[Any], chain: ev.Chain,
) -> None:
    repo = CatalogRepository(pg)
    contract, alice = ev.address(), ev.address()
    late = chain.event("transfer", contract, 5, ZERO, alice, block=40, epoch=0)
    retraction = chain.event("retraction", contract, 5, ZERO, alice, block=40, epoch=1)
    await repo.ingest([retraction])
    result = await repo.ingest([late])
    assert result.applied == 0
    assert await _token(pg, chain, contract, 5) is None
    # the same log re-adopted after a reorg flip-flop carries the newer epoch and applies
    readopted = chain.event("transfer", contract, 5, ZERO, alice, block=40, epoch=1)
    assert (await repo.ingest([readopted])).applied == 1
    token = await _token(pg, chain, contract, 5)
    assert token is not None and token["owner_address"] == alice
    ledger = await pg.fetchrow("SELECT epoch, applied FROM catalog.processed_events WHERE event_id = $1",
                               readopted.event_id)
    assert ledger is not None and (ledger["epoch"], ledger["applied"]) == (1, True)


async def test_erc1155_supply_holders_and_burns(pg: asyncpg.Pool[Any], chain: ev.Chain) -> None:
    repo = CatalogRepository(pg)
    contract, alice, bob = ev.address(), ev.address(), ev.address()
    kw = {"standard": "ERC1155"}
    await repo.ingest([
        chain.event("transfer", contract, 1, ZERO, alice, block=50, batch=0, quantity=10, **kw),
        chain.event("transfer", contract, 2, ZERO, alice, block=50, batch=1, quantity=4, **kw),
        chain.event("transfer", contract, 1, alice, bob, block=51, quantity=3, **kw),
    ])
    assert await _stats(pg, chain, contract) == (2, 2, "2")
    await repo.ingest([chain.event("transfer", contract, 2, alice, ZERO, block=52, quantity=4, **kw),
                       chain.event("transfer", contract, 1, alice, ZERO, block=52, log=1, quantity=7, **kw)])
    token_one, token_two = await _token(pg, chain, contract, 1), await _token(pg, chain, contract, 2)
    assert token_one is not None and token_two is not None
    assert not token_one["burned"] and token_two["burned"]  # 3 units of #1 remain with bob; #2 is gone
    assert token_one["owner_address"] is None  # ERC-1155 owners live in the indexer's balances
    assert await _stats(pg, chain, contract) == (1, 1, "1")


async def test_consumer_rejects_garbage_and_applies_the_rest_once(pg: asyncpg.Pool[Any], chain: ev.Chain) -> None:
    contract, alice = ev.address(), ev.address()
    queue = f"test.catalog.consumer.{uuid.uuid4().hex[:10]}"
    consumer = await pl.ConsumerRun.start(pg, chain.caip2, AMQP_URL, queue=queue)
    try:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(pl.TEST_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            key = f"chain.{chain.caip2}.transfer"
            bodies = [chain.body("transfer", contract, n, ZERO, alice, block=60, log=n) for n in range(1, 51)]
            for body in [b"not json", b'{"type": "transfer"}', *bodies, *bodies[:10]]:  # garbage, then dupes
                await exchange.publish(aio_pika.Message(body=body), routing_key=key)
        await consumer.idle(quiet=0.5)
        assert consumer.consumer.stats.rejected == 2
        assert await pl.queue_depth(AMQP_URL, queue) == 0  # nothing requeued forever
        assert await _stats(pg, chain, contract) == (50, 1, "50")
        count = await pg.fetchval("SELECT count(*) FROM catalog.processed_events WHERE event_id LIKE $1",
                                  chain.caip2 + ":%")
        assert count == 50
        assert parse_event(bodies[0]).event_id.startswith(chain.caip2)
    finally:
        await consumer.stop()


async def test_concurrent_batches_of_the_same_events_apply_once(pg: asyncpg.Pool[Any], chain: ev.Chain) -> None:
    repo = CatalogRepository(pg)
    contract, alice = ev.address(), ev.address()
    events = [chain.event("transfer", contract, n, ZERO, alice, block=70, log=n) for n in range(1, 201)]
    outcomes = await asyncio.gather(*(repo.ingest(events) for _ in range(3)), return_exceptions=True)
    applied = [o.applied for o in outcomes if not isinstance(o, BaseException)]
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    for failure in failures:  # a loser of the race fails on the unique ledger/activity and is redelivered
        assert isinstance(failure, asyncpg.UniqueViolationError | asyncpg.DeadlockDetectedError), failure
    assert sum(applied) <= 200
    retry = await repo.ingest(events)
    assert sum(applied) + retry.applied == 200
    assert await _stats(pg, chain, contract) == (200, 1, "200")

"""Correct under reorgs: the follower and the catalog end exactly where a fresh index of the canonical chain
would, after ``anvil_reorg`` at depths 1, 3 and 12 (with replacement transfers of the same tokens to other
owners) and after ``anvil_rollback``.

The follower runs in this process (confirmations 0, so every reorg reaches indexed blocks) on an anvil of
its own; the catalog consumer too. The reference is an independent oracle over the canonical chain's logs.
"""

from __future__ import annotations

import asyncio
import sys
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
from mintplane.indexer.documents import raw_event_ids
from mintplane.indexer.lane import LaneSpec, Tuning
from mintplane.indexer.status import State

pytestmark = pytest.mark.integration

AMQP_URL = InfraSettings().amqp_url.get_secret_value()
A, B, C, D = ck.ACCOUNTS[1], ck.ACCOUNTS[2], ck.ACCOUNTS[3], ck.ACCOUNTS[4]


@pytest_asyncio.fixture
async def pg() -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(InfraSettings(pg_pool_max=6), application_name="mintplane-indexer-tests")
    yield pool
    await pool.close()


class World:
    def __init__(self, anvil: ck.Anvil, run: pl.LaneRun, consumer: pl.ConsumerRun, pg: asyncpg.Pool[Any],
                 erc721: str, erc1155: str) -> None:
        self.anvil, self.run, self.consumer, self.pg = anvil, run, consumer, pg
        self.erc721, self.erc1155 = erc721, erc1155

    async def caught_up(self, timeout: float = 60.0) -> None:
        """The follower's checkpoint is the canonical head, everything published and consumed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            assert not self.run.lane_task.done(), self.run.lane_task
            head = self.anvil.head()
            checkpoint = self.run.lane.opened
            if checkpoint is not None and checkpoint.last_block == head and (
                checkpoint.last_block_hash == self.anvil.block_hash(head)
            ):
                break
            await asyncio.sleep(0.1)
        else:
            raise TimeoutError(f"indexer at {self.run.status.last_block}, head {self.anvil.head()}")
        await asyncio.wait_for(self.run.publisher.drain(), 30)
        await self.consumer.idle(quiet=0.6)

    def canonical(self) -> list[tuple[Any, ...]]:
        logs = self.anvil.call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest",
                                               "address": [self.erc721, self.erc1155]})
        return pl.oracle_rows(self.anvil.caip2, logs, {self.erc721: "ERC721", self.erc1155: "ERC1155"})

    async def owner(self, token: int) -> str | None:
        row = await self.pg.fetchrow(
            """SELECT t.owner_address FROM catalog.tokens t JOIN catalog.collections c ON c.id = t.collection_id
                WHERE c.chain_id = $1 AND c.contract_address = $2 AND t.token_number = $3""",
            self.anvil.caip2, self.erc721, str(token))
        return None if row is None else row["owner_address"]

    async def assert_matches_canonical_chain(self) -> None:
        expected = self.canonical()
        snap = await pl.snapshot(self.pg, None, self.anvil.caip2, with_mongo=False)
        assert [r[:11] for r in snap["transfers"]] == expected
        assert snap["balances"] == pl.oracle_balances(expected)
        canonical_ids = sorted(f"{r[0]}:{r[7]}:{r[8]}:{r[9]}" for r in expected)
        assert [a[0] for a in snap["activities"]] == canonical_ids
        assert [event for event, applied in snap["ledger"] if applied] == canonical_ids
        owners = {(row[0], row[1]): row[2] for row in snap["tokens"] if row[5] == "ERC721"}
        assert owners == {key: owner for key, owner in pl.oracle_owners(expected).items() if key[0] == self.erc721}
        raw = await pl.mongo_client()["indexer"]["raw_events"].find({"chain_id": self.anvil.caip2}).to_list(None)
        assert sorted(raw_event_ids(raw)) == canonical_ids


@pytest_asyncio.fixture
async def world(pg: asyncpg.Pool[Any]) -> AsyncIterator[World]:
    assert ck.registry_answers(), "the chain-registry service must answer on its port (dev stack)"
    registry = ck.registry_target()
    mongo = pl.mongo_client()
    anvil = ck.Anvil().start()
    run: pl.LaneRun | None = None
    consumer: pl.ConsumerRun | None = None
    try:
        erc721, erc1155 = ck.deploy(anvil, "ERC721"), ck.deploy(anvil, "ERC1155")
        start = anvil.head()
        ck.mine_block_with(anvil, [ck.mint_721_tx(erc721, A, 1, 100)])
        ck.mine_block_with(anvil, [ck.mint_1155_tx(erc1155, A, [1, 2, 3], [10, 10, 10])])
        ck.seed_registry(registry, anvil.chain_id, [ck.EndpointSeed(anvil.url)],
                         [(erc721, "ERC721", start), (erc1155, "ERC1155", start)])
        consumer = await pl.ConsumerRun.start(pg, anvil.caip2, AMQP_URL, queue=f"test.reorg.{uuid.uuid4().hex[:10]}")
        spec = LaneSpec(chain=anvil.caip2, scope=anvil.caip2, confirmations=0)
        run = await pl.LaneRun.open(spec, Tuning(initial_range=4, max_range=8, poll_interval=0.1), pg=pg,
                                    mongo=mongo, amqp_url=AMQP_URL, registry_target=registry)
        run.start()
        world = World(anvil, run, consumer, pg, erc721, erc1155)
        await world.caught_up()
        yield world
    finally:
        if run is not None:
            await run.close()
        if consumer is not None:
            await consumer.stop()
        await pl.purge(pg, mongo, anvil.caip2)
        anvil.stop()
        ck.disable_chain(registry, anvil.chain_id)


async def test_reorgs_of_depth_1_3_12_and_a_rollback_end_on_the_canonical_chain(world: World) -> None:
    anvil = world.anvil
    token = 1
    for number, depth in enumerate((1, 3, 12), start=1):
        tokens = list(range(token, token + depth))
        token += depth
        for n in tokens:  # one block per transfer, so the reorg replaces stored blocks only
            ck.mine_block_with(anvil, [ck.transfer_721_tx(world.erc721, A, B, n)])
        if depth == 12:  # and an ERC-1155 transfer in the orphaned range too
            ck.mine_block_with(anvil, [ck.transfer_1155_tx(world.erc1155, A, D, 1, 1)])
        await world.caught_up()
        assert [await world.owner(n) for n in tokens] == [B] * depth
        orphaned_head = anvil.block_hash(anvil.head())

        # the same tokens go to C instead, in blocks of the new fork
        replacements = [[ck.transfer_721_tx(world.erc721, A, C, n), i] for i, n in enumerate(tokens)]
        anvil.call("anvil_reorg", depth + (1 if depth == 12 else 0), replacements)
        assert anvil.block_hash(anvil.head()) != orphaned_head
        await world.caught_up()
        assert [await world.owner(n) for n in tokens] == [C] * depth
        assert world.run.status.reorg_count == number
        assert world.run.status.last_reorg_depth >= depth
        await world.assert_matches_canonical_chain()

    # rollback: the last two blocks disappear, the chain then continues elsewhere
    rolled = [token, token + 1]
    for n in rolled:
        ck.mine_block_with(anvil, [ck.transfer_721_tx(world.erc721, A, B, n)])
    await world.caught_up()
    anvil.call("anvil_rollback", 2)
    await world.caught_up()
    assert [await world.owner(n) for n in rolled] == [A, A]
    assert world.run.status.reorg_count == 4
    ck.mine_block_with(anvil, [ck.transfer_721_tx(world.erc721, A, D, rolled[0])])
    await world.caught_up()
    assert await world.owner(rolled[0]) == D
    await world.assert_matches_canonical_chain()
    assert await pl.balances_match(world.pg, anvil.caip2)
    assert world.run.status.state is State.FOLLOWING
    retracted = await world.pg.fetchval(
        "SELECT count(*) FROM catalog.processed_events WHERE event_id LIKE $1 AND NOT applied", anvil.caip2 + ":%")
    assert retracted == 1 + 3 + 13 + 2  # every orphaned transfer was retracted in the catalog

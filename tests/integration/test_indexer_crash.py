"""Exactly-once under crashes: a backfill killed with SIGKILL at random moments, again and again, ends
with exactly what an uninterrupted run of the same range produces, in every sink.

Real everything: an anvil of our own (unique chain id) with >20,000 transfers (dense ERC-721 mint blocks,
ERC-721 transfers, ERC-1155 batches), the dev stack's PostgreSQL, FerretDB and RabbitMQ, the chain
registry over gRPC, the indexer as a subprocess (``python -m mintplane.indexer backfill``) and the catalog
consumer in this process on a queue of its own. A second, unconsumed queue records every message.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
import chainkit as ck
import pipeline as pl

from mintplane.common.postgres import create_pool
from mintplane.common.settings import InfraSettings
from mintplane.indexer.repository import backfill_scope

pytestmark = pytest.mark.integration

AMQP_URL = InfraSettings().amqp_url.get_secret_value()
KILLS = 12


@pytest_asyncio.fixture
async def pg() -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(InfraSettings(pg_pool_max=6), application_name="mintplane-indexer-tests")
    yield pool
    await pool.close()


def _build_chain(anvil: ck.Anvil) -> tuple[str, str, int]:
    erc721, erc1155 = ck.deploy(anvil, "ERC721"), ck.deploy(anvil, "ERC1155")
    start = anvil.head()
    token = 1
    for block in range(21):  # dense: 1,000 mints per block
        ck.mine_block_with(anvil, [ck.mint_721_tx(erc721, ck.ACCOUNTS[1 + block % 4], token, 1000)])
        token += 1000
    anvil.mine(30)  # an empty stretch
    holders = {n: ck.ACCOUNTS[1 + ((n - 1) // 1000) % 4] for n in range(1, token)}
    rng = random.Random(7)
    for _ in range(2):  # 400 plain transfers over two blocks, some tokens moving twice
        txs = []
        for n in rng.sample(range(1, token), 200):
            receiver = ck.ACCOUNTS[5 + rng.randrange(5)]
            txs.append(ck.transfer_721_tx(erc721, holders[n], receiver, n))
            holders[n] = receiver
        ck.mine_block_with(anvil, txs)
    for block in range(4):  # ERC-1155: TransferBatch mints and single transfers
        ids = list(range(block * 50 + 1, block * 50 + 51))
        ck.mine_block_with(anvil, [ck.mint_1155_tx(erc1155, ck.ACCOUNTS[2], ids, [5] * 50)])
    ck.mine_block_with(anvil, [ck.transfer_1155_tx(erc1155, ck.ACCOUNTS[2], ck.ACCOUNTS[6], n, 2)
                               for n in range(1, 41)])
    anvil.mine(3)
    return erc721, erc1155, start


async def _record_queue(name: str, caip2: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(pl.TEST_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(name, durable=True)
        await queue.bind(exchange, f"chain.{caip2}.#")
    finally:
        await connection.close()


async def _drain_recorded(name: str) -> list[tuple[str, bytes]]:
    connection = await aio_pika.connect(AMQP_URL)
    seen: list[tuple[str, bytes]] = []
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=5000)
        queue = await channel.declare_queue(name, durable=True)
        while (message := await queue.get(no_ack=True, fail=False, timeout=10)) is not None:
            seen.append((str(message.message_id), message.body))
        await channel.queue_delete(name)
    finally:
        await connection.close()
    return seen


async def _spawn(caip2: str, first: int, last: int, registry: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "MINTPLANE_INDEXER_CHAIN_REGISTRY_TARGET": registry,
        "MINTPLANE_INDEXER_CONFIRMATIONS": "0",
        "MINTPLANE_INDEXER_BATCH_SIZE": "1",
        "MINTPLANE_INDEXER_MAX_BATCH_SIZE": "3",
        "MINTPLANE_INDEXER_PUBLISH_BATCH": "2000",
        "MINTPLANE_INDEXER_EVENTS_EXCHANGE": pl.TEST_EXCHANGE,
        "MINTPLANE_LOG_LEVEL": "WARNING",
        "MINTPLANE_LOG_JSON": "true",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mintplane.indexer", "backfill", "--chain", caip2, "--from-block", str(first),
        "--to-block", str(last), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


async def _checkpoint(pg: asyncpg.Pool[Any], scope: str) -> int:
    value = await pg.fetchval("SELECT last_block FROM indexer.indexer_checkpoints WHERE chain_id = $1", scope)
    return int(value) if value is not None else -1


async def test_backfill_killed_repeatedly_equals_a_clean_run(pg: asyncpg.Pool[Any]) -> None:
    assert ck.registry_answers(), "the chain-registry service must answer on its port (dev stack)"
    registry = ck.registry_target()
    mongo = pl.mongo_client()
    anvil = ck.Anvil().start()
    recorder = f"test.indexer.recorder.{uuid.uuid4().hex[:10]}"
    consumer_queue = f"test.indexer.catalog.{uuid.uuid4().hex[:10]}"
    consumer: pl.ConsumerRun | None = None
    try:
        erc721, erc1155, start = await asyncio.to_thread(_build_chain, anvil)
        last = anvil.head()
        ck.seed_registry(registry, anvil.chain_id, [ck.EndpointSeed(anvil.url)],
                         [(erc721, "ERC721", start), (erc1155, "ERC1155", start)])
        logs = anvil.call("eth_getLogs", {"fromBlock": hex(start), "toBlock": hex(last), "address": [erc721, erc1155]})
        expected = pl.oracle_rows(anvil.caip2, logs, {erc721: "ERC721", erc1155: "ERC1155"})
        assert len(expected) >= 20_000
        expected_ids = {f"{r[0]}:{r[7]}:{r[8]}:{r[9]}" for r in expected}

        await _record_queue(recorder, anvil.caip2)
        consumer = await pl.ConsumerRun.start(pg, anvil.caip2, AMQP_URL, queue=consumer_queue)
        scope = backfill_scope(anvil.caip2, start, last, [])
        rng = random.Random()
        kills_mid_run = 0
        attempts = 0
        while True:
            attempts += 1
            assert attempts < 60, "the backfill made no progress across restarts"
            process = await _spawn(anvil.caip2, start, last, registry)
            if kills_mid_run < KILLS:
                try:
                    await asyncio.wait_for(process.wait(), rng.uniform(0.7, 2.2))
                except TimeoutError:
                    if await _checkpoint(pg, scope) < last:
                        kills_mid_run += 1
                    process.send_signal(signal.SIGKILL)
                    await process.wait()
                    continue
            try:
                _, stderr = await asyncio.wait_for(process.communicate(), 240)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]
            break
        assert kills_mid_run >= 10
        await consumer.idle(quiet=1.5)
        crashed = await pl.snapshot(pg, mongo, anvil.caip2)
        recorded = await _drain_recorded(recorder)

        # every sink holds each event exactly once, and exactly the chain's events
        assert [r[:11] for r in crashed["transfers"]] == expected
        assert crashed["raw_ids"] == sorted(expected_ids) and crashed["raw_duplicates"] == []
        assert [r[0] for r in crashed["activities"]] == sorted(expected_ids)
        assert crashed["ledger"] == [(event, True) for event in sorted(expected_ids)]
        assert [tuple(b) for b in crashed["balances"]] == pl.oracle_balances(expected)
        assert await pl.balances_match(pg, anvil.caip2)
        # on the wire: nothing missing, no retraction, and a re-sent message is a byte-identical copy
        by_message: dict[str, set[bytes]] = {}
        for message_id, body in recorded:
            by_message.setdefault(message_id, set()).add(body)
        assert all(len(bodies) == 1 for bodies in by_message.values())
        on_the_wire = [event for body in {b for bodies in by_message.values() for b in bodies}
                       for event in json.loads(body)["events"]]
        assert sorted(e["event_id"] for e in on_the_wire) == sorted(expected_ids)  # each in exactly one message
        assert {e["type"] for e in on_the_wire} == {"transfer"}
        resent = sum(n - 1 for n in Counter(m for m, _ in recorded).values())
        print(f"\n{kills_mid_run} kills mid-run over {attempts} starts; {len(expected)} transfers; "
              f"{resent} messages re-sent after a kill (absorbed by the consumer)")

        # a clean run of the same range, from nothing, writes exactly the same
        await consumer.stop()
        consumer = None
        await pl.purge(pg, mongo, anvil.caip2)
        consumer = await pl.ConsumerRun.start(pg, anvil.caip2, AMQP_URL, queue=consumer_queue + ".clean")
        process = await _spawn(anvil.caip2, start, last, registry)
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), 240)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]
        await consumer.idle(quiet=1.5)
        clean = await pl.snapshot(pg, mongo, anvil.caip2)
        for sink in ("transfers", "balances", "tokens", "activities", "stats", "ledger", "raw_ids"):
            assert crashed[sink] == clean[sink], f"{sink} differs from a clean run"
    finally:
        if consumer is not None:
            await consumer.stop()
        await pl.delete_queue_named(AMQP_URL, recorder)
        await pl.delete_queue_named(AMQP_URL, consumer_queue)
        await pl.purge(pg, mongo, anvil.caip2)
        anvil.stop()
        ck.disable_chain(registry, anvil.chain_id)

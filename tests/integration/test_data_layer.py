"""Each data-layer piece answers through the client the services use (real servers from `make up`)."""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika
import pytest
from pymongo.errors import DuplicateKeyError

from mintplane.common import mongo, postgres, redis_client
from mintplane.common.amqp import ConfirmingPublisher, OutgoingMessage, PublishFailed, connect, declare_queue
from mintplane.common.settings import InfraSettings

pytestmark = pytest.mark.integration


async def test_postgres_pool_copy_and_jsonb_codec(settings: InfraSettings) -> None:
    pool = await postgres.create_pool(settings, application_name="mintplane-test")
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("CREATE TEMP TABLE t (id int PRIMARY KEY, doc jsonb) ON COMMIT DROP")
            rows = [(i, {"n": i, "tags": ["a", str(i)]}) for i in range(1000)]
            await conn.copy_records_to_table("t", records=rows)
            total, doc = await conn.fetchrow("SELECT count(*), (SELECT doc FROM t WHERE id = 42) FROM t")
            app = await conn.fetchval("SELECT current_setting('application_name')")
        assert total == 1000
        assert doc == {"n": 42, "tags": ["a", "42"]}
        assert app == "mintplane-test"
    finally:
        await pool.close()


async def test_redis_pipeline_round_trip(settings: InfraSettings) -> None:
    client = redis_client.create_client(settings)
    prefix = f"test:{uuid.uuid4().hex}"
    try:
        async with client.pipeline(transaction=False) as pipe:
            for i in range(100):
                pipe.set(f"{prefix}:{i}", i, ex=60)
            assert all(await pipe.execute())
        values = await client.mget([f"{prefix}:{i}" for i in range(100)])
        assert [int(v) for v in values] == list(range(100))
        assert await client.ttl(f"{prefix}:7") > 0
    finally:
        await client.delete(*[f"{prefix}:{i}" for i in range(100)])
        await client.aclose()


async def test_rabbitmq_publish_with_confirms_and_consume(settings: InfraSettings) -> None:
    exchange = f"test.{uuid.uuid4().hex}"
    connection = await connect(settings, name="mintplane-test")
    try:
        channel, queue = await declare_queue(connection, f"{exchange}.q", ["token.#"], exchange_name=exchange)
        publisher = ConfirmingPublisher(connection, exchange_name=exchange)
        sent = [
            OutgoingMessage(routing_key="token.transfer", body=json.dumps({"i": i}).encode(), message_id=str(i))
            for i in range(200)
        ]
        await publisher.publish_batch(sent)

        received: list[int] = []
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                received.append(json.loads(message.body)["i"])
                assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
                if len(received) == len(sent):
                    done.set()

        tag = await queue.consume(on_message)
        await asyncio.wait_for(done.wait(), 20)
        await queue.cancel(tag)
        assert sorted(received) == list(range(200))

        # A message no queue is bound for comes back (mandatory): the batch must fail, not vanish.
        with pytest.raises(PublishFailed):
            await publisher.publish_batch([OutgoingMessage(routing_key="nobody.listens", body=b"{}")])
        await queue.delete(if_unused=False, if_empty=False)
        await channel.exchange_delete(exchange)
        await channel.close()
    finally:
        await connection.close()


async def test_ferretdb_insert_find_and_unique_index(settings: InfraSettings) -> None:
    client = mongo.create_client(settings, app_name="mintplane-test")
    db = client[f"test_{uuid.uuid4().hex[:12]}"]
    try:
        events = db.raw_events
        await events.create_index([("chain_id", 1), ("block_hash", 1), ("log_index", 1)], unique=True)
        docs = [
            {"chain_id": "eip155:31337", "block_hash": "0xabc", "log_index": i, "block_number": 7, "event": "T"}
            for i in range(500)
        ]
        result = await events.insert_many(docs, ordered=False)
        assert len(result.inserted_ids) == 500
        found = await events.find({"log_index": {"$gte": 490}}).sort("log_index", 1).to_list(None)
        assert [doc["log_index"] for doc in found] == list(range(490, 500))
        with pytest.raises(DuplicateKeyError):
            await events.insert_one({"chain_id": "eip155:31337", "block_hash": "0xabc", "log_index": 3})
        assert await events.count_documents({}) == 500
        names = [index["name"] async for index in events.list_indexes()]
        assert any("block_hash" in name for name in names)
    finally:
        await client.drop_database(db.name)
        client.close()

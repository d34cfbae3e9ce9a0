"""Listens to the catalog's change events and drops the cached results they make stale.

Every gateway process has its own exclusive, auto-deleted queue bound to `catalog.changed` on the events
exchange, so each process hears every event and clears its own LRU (and deletes the Redis entries by tag:
idempotent, and it closes the window in which one process could re-read an entry another just dropped).

While the consumer is not connected the cache is switched off (`ResultCache.active`): an entry nobody
would invalidate is never served. Each (re)connection flushes the cache, because events sent while no
queue existed are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import uuid
from collections.abc import Awaitable, Callable

import orjson
from aio_pika import ExchangeType
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from prometheus_client import Counter

from mintplane.common.amqp import EVENTS_EXCHANGE
from mintplane.common.log import get_logger
from mintplane.gateway.result_cache import ResultCache, change_tags

log = get_logger(__name__)

CHANGE_ROUTING_KEY = "catalog.changed"
EVENTS = Counter("gateway_catalog_change_events_total", "Catalog change events received, by outcome.", ["outcome"])


class Invalidator:
    def __init__(
        self, cache: ResultCache, connect: Callable[[], Awaitable[AbstractConnection]], *,
        exchange: str = EVENTS_EXCHANGE, routing_key: str = CHANGE_ROUTING_KEY,
    ) -> None:
        self._cache = cache
        self._connect = connect
        self._exchange = exchange
        self._routing_key = routing_key
        self.queue_name = f"gateway.invalidation.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.events_seen = 0  # events applied, for tests and the log
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Consume until cancelled, reconnecting with backoff; the cache is active only while connected."""
        delay = 0.5
        while True:
            connection: AbstractConnection | None = None
            try:
                connection = await self._connect()
                lost = asyncio.Event()
                connection.close_callbacks.add(lambda *_, lost=lost: lost.set())
                channel = await connection.channel()
                await channel.set_qos(prefetch_count=64)
                exchange = await channel.declare_exchange(self._exchange, ExchangeType.TOPIC, durable=True)
                queue = await channel.declare_queue(self.queue_name, durable=False, exclusive=True, auto_delete=True)
                await queue.bind(exchange, routing_key=self._routing_key)
                await queue.consume(self._on_message)
                await self._cache.flush()  # after the binding: nothing can fall between flush and listening
                self._cache.active = True
                self.connected.set()
                log.info("listening for catalog changes", queue=self.queue_name)
                delay = 0.5
                await lost.wait()
                log.warning("catalog change consumer lost its connection; cache off until reconnected")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down: serve uncached, retry
                log.warning("cannot listen for catalog changes; cache off", error=str(exc), retry_in=round(delay, 1))
            finally:
                self._cache.active = False
                self.connected.clear()
                if connection is not None:
                    with contextlib.suppress(Exception):  # TimeoutError included: never hang on a dying broker
                        await asyncio.wait_for(connection.close(), 5)
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter
            delay = min(30.0, delay * 2)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process(requeue=False):
            try:
                body = orjson.loads(message.body)
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError:
                EVENTS.labels("rejected").inc()
                log.warning("ignored a malformed catalog change event", message_id=message.message_id)
                return
            await self._cache.invalidate(change_tags(body))
            self.events_seen += 1
            EVENTS.labels("applied").inc()

"""Consumes the indexer's transfer events into the catalog, a batch of deliveries per transaction.

A durable queue is bound to ``chain.*.transfer`` and ``chain.*.transfer.retracted``; a message carries a
batch of events. Deliveries are gathered (up to `batch_size` events, or `batch_wait` seconds after the
first) and applied in one PostgreSQL transaction (:meth:`CatalogRepository.ingest`); only then are they
acked. A crash or a failed transaction means redelivery, which the processed-events ledger turns into a
no-op: exactly-once effects on top of at-least-once delivery. A message that is not an indexer event is
rejected without requeue (logged and counted), so it cannot block the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from prometheus_client import Counter, Histogram

from mintplane.catalog.changes import OnChange
from mintplane.catalog.ingest import BadMessage, Event, parse_events
from mintplane.catalog.repository import CatalogRepository
from mintplane.common.amqp import EVENTS_EXCHANGE, declare_queue
from mintplane.common.log import get_logger

log = get_logger(__name__)

EVENTS = Counter("mintplane_catalog_events_total", "Indexer events consumed, by outcome.", ["outcome"])
BATCH_SECONDS = Histogram(
    "mintplane_catalog_ingest_batch_seconds", "Time to apply one batch of events.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DEFAULT_QUEUE = "catalog.transfers"
Parsed = tuple[AbstractIncomingMessage, list[Event]]
DEFAULT_ROUTING_KEYS = ("chain.*.transfer", "chain.*.transfer.retracted")


@dataclass
class ConsumerStats:
    batches: int = 0
    applied: int = 0
    undone: int = 0
    unchanged: int = 0
    rejected: int = 0
    failures: int = 0


class TransferConsumer:
    def __init__(
        self, repository: CatalogRepository, connect: Callable[[], Awaitable[AbstractRobustConnection]], *,
        queue: str = DEFAULT_QUEUE, routing_keys: Sequence[str] = DEFAULT_ROUTING_KEYS, prefetch: int = 50,
        batch_size: int = 5000, batch_wait: float = 0.05, exchange: str = EVENTS_EXCHANGE,
        on_change: OnChange | None = None,
    ) -> None:
        self._exchange = exchange
        self._on_change = on_change  # hears what each committed batch changed (the change event)
        self._repo = repository
        self._connect = connect
        self.queue_name = queue
        self._routing_keys = tuple(routing_keys)
        self._prefetch = prefetch
        self._batch_size = batch_size
        self._batch_wait = batch_wait
        self.stats = ConsumerStats()
        self.ready = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None

    async def run(self) -> None:
        """Consume until cancelled; (re)connects on its own."""
        self._connection = await self._connect_with_retry()
        try:
            _, queue = await declare_queue(self._connection, self.queue_name, self._routing_keys,
                                           prefetch=self._prefetch, exchange_name=self._exchange)
            inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            await queue.consume(inbox.put)
            self.ready.set()
            log.info("consuming", queue=self.queue_name, routing_keys=list(self._routing_keys))
            while True:
                await self._process(await self._collect(inbox))
        finally:
            with contextlib.suppress(Exception):
                await self._connection.close()

    async def _connect_with_retry(self) -> AbstractRobustConnection:
        delay = 0.5
        while True:
            try:
                return await self._connect()
            except Exception as exc:  # broker not up yet: the service keeps serving and retries
                log.warning("cannot reach the broker; retrying", error=str(exc), retry_in=round(delay, 1))
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter
                delay = min(30.0, delay * 2)

    async def _collect(self, inbox: asyncio.Queue[AbstractIncomingMessage]) -> list[Parsed]:
        """Deliveries up to `batch_size` events (at least one message), parsed; bad ones are rejected here."""
        batch: list[Parsed] = []
        events = 0
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while events < self._batch_size:
            if not batch:
                message = await inbox.get()
                deadline = loop.time() + self._batch_wait
            elif not inbox.empty():
                message = inbox.get_nowait()
            else:
                assert deadline is not None
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    message = await asyncio.wait_for(inbox.get(), remaining)
                except TimeoutError:
                    break
            try:
                parsed = parse_events(message.body)
            except BadMessage as exc:
                await self._reject(message, exc)
                continue
            batch.append((message, parsed))
            events += len(parsed)
        return batch

    async def _reject(self, message: AbstractIncomingMessage, exc: BadMessage) -> None:
        self.stats.rejected += 1
        EVENTS.labels("rejected").inc()
        log.warning("rejected a message that is not an indexer event", message_id=message.message_id,
                    routing_key=message.routing_key, error=str(exc))
        await _settle(message.reject(requeue=False))

    async def _process(self, batch: Sequence[Parsed]) -> None:
        events = [event for _, parsed in batch for event in parsed]
        good = [message for message, _ in batch]
        if not events:
            return
        try:
            with BATCH_SECONDS.time():
                result = await self._repo.ingest(events)
        except Exception as exc:
            self.stats.failures += 1
            EVENTS.labels("retried").inc(len(good))
            log.warning("batch not applied; redelivering", size=len(good), error=f"{type(exc).__name__}: {exc}")
            for message in good:
                await _settle(message.nack(requeue=True))
            await asyncio.sleep(min(5.0, 0.2 * 2 ** min(self.stats.failures, 5)) * random.uniform(0.5, 1.5))  # noqa: S311
            return
        self.stats.failures = 0
        if self._on_change is not None and (result.collection_ids or result.token_ids):
            # Before the acks: a crash in between redelivers, and the duplicate event is harmless.
            await self._on_change(result.collection_ids, result.token_ids)
        for message in good:
            await _settle(message.ack())
        self.stats.batches += 1
        self.stats.applied += result.applied
        self.stats.undone += result.undone
        self.stats.unchanged += result.unchanged
        EVENTS.labels("applied").inc(result.applied)
        EVENTS.labels("retracted").inc(result.undone)
        EVENTS.labels("unchanged").inc(result.unchanged)


async def _settle(outcome: Awaitable[None]) -> None:
    # After a reconnect, deliveries of the old channel can no longer be settled; the broker redelivers them.
    with contextlib.suppress(Exception):
        await outcome

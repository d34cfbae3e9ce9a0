"""Sends the outbox to RabbitMQ: in seq order, in batches, deleted only once the broker confirmed them.

The worker hands entries over in memory right after the PostgreSQL commit that made their batch final,
so steady-state publishing never re-reads MongoDB; on start the queue is loaded once. A batch is
published with publisher confirms (``ConfirmingPublisher.publish_batch``); confirmed entries leave the
in-memory queue at once and are deleted from the outbox in bulk (everything up to the highest confirmed
seq, every `cleanup_interval` seconds and when drained): on FerretDB a delete costs a scan of the collection
whatever it removes, so one delete per many batches keeps publishing fast. A crash before the delete
re-sends those entries on the next start, which consumers absorb (at-least-once on the wire, idempotent
consumers). When a batch keeps failing, its entries are sent one
by one to tell a poison message (marked ``failed`` and retried with back-off) from a broker outage
(nothing marked: the whole batch waits for the broker).

The reorg handler takes :attr:`lock` so no batch is in flight while it decides what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from mintplane.common.amqp import OutgoingMessage
from mintplane.common.log import get_logger
from mintplane.indexer.documents import EventDocuments, OutboxEntry
from mintplane.indexer.metrics import OUTBOX_PENDING, PUBLISH_FAILURES, PUBLISHED

log = get_logger(__name__)
CLEANUP_CHUNK = 1_000  # entries per range delete: FerretDB refuses deletes of more than 32,766 documents


class BatchPublisher(Protocol):
    async def publish_batch(self, messages: Sequence[OutgoingMessage], *, timeout: float = 30.0) -> None: ...


def _message(entry: OutboxEntry) -> OutgoingMessage:
    return OutgoingMessage(routing_key=entry.routing_key, body=entry.body, message_id=entry.message_id,
                           headers={"x-event-count": entry.events, "x-first-block": entry.first_block,
                                    "x-last-block": entry.last_block})


class OutboxPublisher:
    def __init__(
        self, documents: EventDocuments, publisher: BatchPublisher, scope: str, *, batch_size: int = 20_000,
        failed_retry_seconds: float = 30.0, max_backoff: float = 30.0, cleanup_interval: float = 5.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._documents = documents
        self._publisher = publisher
        self.scope = scope
        self._batch_size = batch_size
        self._failed_retry_seconds = failed_retry_seconds
        self._max_backoff = max_backoff
        self._rng = rng
        self._queue: deque[OutboxEntry] = deque()
        self._queued_events = 0
        self._wakeup = asyncio.Event()
        self._shrunk = asyncio.Event()
        self.lock = asyncio.Lock()
        self.last_error = ""
        self.published = 0
        self._failures = 0
        self._cleanup_interval = cleanup_interval
        self._confirmed_seq = 0  # every entry of this scope up to here is confirmed (or set aside as failed)
        self._deleted_seq = 0
        self._marks: deque[tuple[int, int]] = deque()  # (highest seq, entries) of each confirmed chunk

    @property
    def pending(self) -> int:
        """Events not yet confirmed by the broker."""
        return self._queued_events

    async def load(self) -> None:
        """Take over what a previous process left in the outbox (sent or not: re-sending is safe)."""
        entries = await self._documents.queued(self.scope, status="pending")
        self._queue = deque(sorted(entries, key=lambda e: e.seq))
        self._recount()
        self._wakeup.set()

    def hand_over(self, entries: Sequence[OutboxEntry]) -> None:
        self._queue.extend(entries)
        self._queued_events += sum(e.events for e in entries)
        self._gauge()
        self._wakeup.set()

    def forget_transfers_above(self, block: int) -> None:
        """Drop unsent transfers of rolled-back blocks (call with :attr:`lock` held)."""
        self._queue = deque(e for e in self._queue if not (e.kind == "transfer" and e.first_block > block))
        self._recount()

    async def wait_below(self, limit: int) -> None:
        """Back-pressure: wait while more than `limit` events are unsent."""
        while self._queued_events > limit:
            self._shrunk.clear()
            await self._shrunk.wait()

    async def drain(self) -> None:
        """Wait until everything is confirmed and deleted from the outbox."""
        await self.wait_below(0)
        await self.cleanup()

    async def cleanup(self) -> None:
        """Delete confirmed entries from the outbox: one range delete per CLEANUP_CHUNK entries."""
        while self._marks:
            upto, count = self._marks.popleft()
            while self._marks and count + self._marks[0][1] <= CLEANUP_CHUNK:
                upto, more = self._marks.popleft()
                count += more
            while True:
                try:
                    await self._documents.delete_published(self.scope, self._deleted_seq, upto)
                    self._deleted_seq = upto
                    break
                except Exception as exc:  # MongoDB away: confirmed entries stay until this succeeds
                    self.last_error = f"outbox cleanup: {exc}"
                    log.warning("outbox cleanup failed; retrying", scope=self.scope, error=str(exc))
                    await asyncio.sleep(1.0 + self._rng())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_failed_scan = last_cleanup = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._cleanup_interval)
            self._wakeup.clear()
            if loop.time() - last_failed_scan >= self._failed_retry_seconds:
                last_failed_scan = loop.time()
                await self._retry_failed()
            while self._queue:
                delay = await self._publish_next()
                if delay:
                    await asyncio.sleep(delay)
                if loop.time() - last_cleanup >= self._cleanup_interval:
                    last_cleanup = loop.time()
                    await self.cleanup()
            if loop.time() - last_cleanup >= self._cleanup_interval:
                last_cleanup = loop.time()
                await self.cleanup()

    async def _publish_next(self) -> float:
        """Publish one batch; returns how long to back off (0 after success)."""
        async with self.lock:
            if not self._queue:
                return 0.0
            chunk = self._next_chunk()
            try:
                await self._publisher.publish_batch([_message(e) for e in chunk])
            except Exception as exc:
                self._failures += 1
                self.last_error = f"publish: {exc}"
                PUBLISH_FAILURES.labels(self.scope).inc()
                log.warning("outbox batch not confirmed", scope=self.scope, size=len(chunk), error=str(exc),
                            attempt=self._failures)
                if self._failures >= 3 and await self._isolate(chunk):
                    self._failures = 0
                    return 0.0
                return float(min(self._max_backoff, 0.5 * 2.0 ** min(self._failures, 8))) * (0.5 + self._rng())
            self._forget_sent(chunk)
        return 0.0

    def _next_chunk(self) -> list[OutboxEntry]:
        """The head of the queue, up to `batch_size` events (at least one message)."""
        chunk: list[OutboxEntry] = []
        events = 0
        for entry in self._queue:
            if chunk and events + entry.events > self._batch_size:
                break
            chunk.append(entry)
            events += entry.events
        return chunk

    def _forget_sent(self, chunk: Sequence[OutboxEntry]) -> None:
        sent = {e.id for e in chunk}
        while self._queue and self._queue[0].id in sent:
            self._queued_events -= self._queue.popleft().events
        self._confirm(chunk)
        self._failures = 0
        self.last_error = ""
        events = sum(e.events for e in chunk)
        self.published += events
        PUBLISHED.labels(self.scope).inc(events)
        self._gauge()

    async def _isolate(self, chunk: Sequence[OutboxEntry]) -> bool:
        """Send entries one by one. True when some went out (the others are marked failed and set aside)."""
        good: list[OutboxEntry] = []
        bad: list[tuple[OutboxEntry, str]] = []
        for entry in chunk:
            try:
                await self._publisher.publish_batch([_message(entry)])
                good.append(entry)
            except Exception as exc:
                bad.append((entry, str(exc)))
                if not good and len(bad) >= 3:
                    return False  # the broker, not the messages
        if not good:
            return False
        for entry, error in bad:  # marked before the range delete can reach them (it spares retry_count > 0)
            await self._documents.mark_failed(entry, error, self._next_attempt(entry.retry_count + 1))
        gone = {e.id for e in chunk}
        self._queue = deque(e for e in self._queue if e.id not in gone)
        self._recount()
        self._confirm(chunk)
        events = sum(e.events for e in good)
        self.published += events
        PUBLISHED.labels(self.scope).inc(events)
        log.warning("outbox entries set aside as failed", scope=self.scope, failed=len(bad), sent=len(good))
        self._gauge()
        return True

    def _confirm(self, chunk: Sequence[OutboxEntry]) -> None:
        top = max(e.seq for e in chunk)
        if top > self._confirmed_seq:
            self._confirmed_seq = top
            self._marks.append((top, len(chunk)))

    def _next_attempt(self, retry_count: int) -> datetime:
        seconds = min(3600.0, 5.0 * 2 ** min(retry_count, 12)) * (0.5 + self._rng())
        return datetime.now(UTC) + timedelta(seconds=seconds)

    async def _retry_failed(self) -> None:
        try:
            due = await self._documents.queued(self.scope, status="failed", due_before=datetime.now(UTC), limit=100)
        except Exception as exc:
            self.last_error = f"outbox: {exc}"
            return
        for entry in due:
            async with self.lock:
                try:
                    await self._publisher.publish_batch([_message(entry)])
                except Exception as exc:
                    await self._documents.mark_failed(entry, str(exc), self._next_attempt(entry.retry_count + 1))
                    continue
                await self._documents.delete_entry(entry.id)
                self.published += entry.events
                PUBLISHED.labels(self.scope).inc(entry.events)

    def _recount(self) -> None:
        self._queued_events = sum(e.events for e in self._queue)
        self._gauge()

    def _gauge(self) -> None:
        OUTBOX_PENDING.labels(self.scope).set(self._queued_events)
        self._shrunk.set()  # waiters re-check the length themselves

"""The catalog's change events: after every committed change (an ingested batch of transfers, a metadata
batch, a rarity recompute, a refresh), which collections and tokens changed.

Published on the events exchange under ``catalog.changed`` with publisher confirms (mintplane.common.amqp),
one message per committed transaction (split at ``MAX_TOKENS_PER_MESSAGE`` token ids):

    {"collection_ids": ["<uuid>", ...], "token_ids": ["<uuid>", ...], "reason": "ingest"}

The gateway drops the cached results built from those ids (and every cached list), so a change is visible
in the next query instead of after a TTL. The event follows the commit: a failure to publish cannot undo
the change, so it is retried a few times, then logged and counted, and the gateway's TTL is the safety net.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from uuid import UUID

import orjson
from aio_pika.abc import AbstractRobustConnection
from prometheus_client import Counter

from mintplane.common.amqp import EVENTS_EXCHANGE, ConfirmingPublisher, OutgoingMessage
from mintplane.common.log import get_logger

log = get_logger(__name__)

CHANGE_ROUTING_KEY = "catalog.changed"
MAX_TOKENS_PER_MESSAGE = 2000
CHANGES = Counter("mintplane_catalog_change_events_total", "Catalog change events, by reason and outcome.",
                  ["reason", "outcome"])

OnChange = Callable[[Iterable[UUID | str], Iterable[UUID | str]], Awaitable[None]]


def change_messages(reason: str, collection_ids: Iterable[UUID | str],
                    token_ids: Iterable[UUID | str]) -> list[OutgoingMessage]:
    """The messages of one committed change (none when nothing changed)."""
    collections = sorted({str(c) for c in collection_ids})
    tokens = sorted({str(t) for t in token_ids})
    if not collections and not tokens:
        return []
    chunks = [tokens[i:i + MAX_TOKENS_PER_MESSAGE] for i in range(0, len(tokens), MAX_TOKENS_PER_MESSAGE)] or [[]]
    return [
        OutgoingMessage(
            routing_key=CHANGE_ROUTING_KEY, message_id=uuid.uuid4().hex,
            body=orjson.dumps({"collection_ids": collections if index == 0 else [], "token_ids": chunk,
                               "reason": reason}),
        )
        for index, chunk in enumerate(chunks)
    ]


class ChangePublisher:
    """Publishes change events over its own confirming channel, connecting on first use."""

    def __init__(
        self, connect: Callable[[], Awaitable[AbstractRobustConnection]], *, exchange: str = EVENTS_EXCHANGE,
        attempts: int = 3, timeout: float = 10.0,
    ) -> None:
        self._connect = connect
        self._exchange = exchange
        self._attempts = attempts
        self._timeout = timeout
        self._connection: AbstractRobustConnection | None = None
        self._publisher: ConfirmingPublisher | None = None
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[bool]] = set()

    async def publish(self, reason: str, collection_ids: Iterable[UUID | str],
                      token_ids: Iterable[UUID | str]) -> bool:
        """Publish one committed change; True when the broker confirmed it. Never raises (see the module)."""
        messages = change_messages(reason, collection_ids, token_ids)
        if not messages:
            return True
        delay = 0.2
        for attempt in range(1, self._attempts + 1):
            try:
                publisher = await self._ensure()
                await publisher.publish_batch(messages, timeout=self._timeout)
            except Exception as exc:  # broker away or a nack: retry, then give up to the TTL
                log.warning("catalog change event not published", reason=reason, attempt=attempt,
                            error=f"{type(exc).__name__}: {exc}")
                await self._reset()
                if attempt < self._attempts:
                    await asyncio.sleep(delay)
                    delay *= 2
                continue
            CHANGES.labels(reason, "published").inc()
            return True
        CHANGES.labels(reason, "failed").inc()
        return False

    def listener(self, reason: str, *, background: bool = False) -> OnChange:
        """An ``on_change(collection_ids, token_ids)`` callback for one kind of change. `background`: return at
        once and publish in a task (an RPC answering a client must not wait out a broker outage)."""

        async def on_change(collection_ids: Iterable[UUID | str], token_ids: Iterable[UUID | str]) -> None:
            if not background:
                await self.publish(reason, collection_ids, token_ids)
                return
            task = asyncio.create_task(self.publish(reason, list(collection_ids), list(token_ids)))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        return on_change

    async def _ensure(self) -> ConfirmingPublisher:
        async with self._lock:
            if self._publisher is None:
                self._connection = await self._connect()
                self._publisher = ConfirmingPublisher(self._connection, self._exchange)
            return self._publisher

    async def _reset(self) -> None:
        async with self._lock:
            connection, self._connection, self._publisher = self._connection, None, None
        if connection is not None:
            try:
                await connection.close()
            except Exception as exc:  # already broken: nothing more to release
                log.debug("closing the change publisher's connection failed", error=str(exc))

    async def close(self) -> None:
        await self._reset()

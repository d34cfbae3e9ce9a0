"""Building outbox entries: deterministic ids (a rewritten batch collides with itself) and a seq order.

The entry id holds the event id and the reorg epoch, so the same transfer queued twice after a crash is
one entry, while its retraction, or its re-adoption after a reorg flip-flop, is a new one. ``seq`` orders
publishing: microseconds since the epoch, strictly increasing inside a process, so a retraction always
follows the transfer it undoes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from mintplane.indexer.documents import OutboxEntry
from mintplane.indexer.events import MessageType, Transfer, encode, message_body, message_id, routing_key

PRIORITY_TRANSFER = 0
PRIORITY_RETRACTION = 1  # informational: consumers that can, apply retractions first


class SeqClock:
    def __init__(self) -> None:
        self._last = 0

    def take(self, count: int) -> int:
        """Reserve `count` consecutive seq numbers; returns the first."""
        first = max(time.time_ns() // 1000, self._last + 1)
        self._last = first + count - 1
        return first


def entries_for(
    scope: str, transfers: Iterable[Transfer], kind: MessageType, epoch: int, clock: SeqClock,
) -> list[OutboxEntry]:
    items = list(transfers)
    first = clock.take(len(items)) if items else 0
    priority = PRIORITY_TRANSFER if kind == "transfer" else PRIORITY_RETRACTION
    return [
        OutboxEntry(
            id=f"{kind[0]}:{t.event_id}:{epoch}", scope=scope, event_id=t.event_id, kind=kind,
            routing_key=routing_key(t.chain_id, kind), message_id=message_id(t.event_id, kind),
            body=encode(message_body(t, kind, epoch)), block_number=t.block_number, seq=first + i,
            priority=priority,
        )
        for i, t in enumerate(items)
    ]

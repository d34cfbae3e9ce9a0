"""Building outbox entries: one entry is one broker message carrying a batch's events, in seq order.

An entry never spans two indexing batches (so "the entries of an uncommitted batch" are exactly those
whose ``first_block`` is above the checkpoint) and holds at most :data:`MESSAGE_EVENTS` events. Its id is
the message id, derived from the event ids and the reorg epoch: the same events queued twice are one
entry, while their retraction, or their re-adoption after a reorg flip-flop, is a new one. ``seq``
orders publishing: microseconds since the epoch, strictly increasing inside a process, so a retraction
always follows the transfer it undoes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from mintplane.indexer.documents import OutboxEntry
from mintplane.indexer.events import MessageType, Transfer, envelope, message_id, routing_key

MESSAGE_EVENTS = 1_000
"""Events per message: big enough that per-message costs vanish, small enough for one consumer transaction."""
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
    *, per_message: int = MESSAGE_EVENTS,
) -> list[OutboxEntry]:
    items = list(transfers)
    chunks = [items[i : i + per_message] for i in range(0, len(items), per_message)]
    first = clock.take(len(chunks)) if chunks else 0
    priority = PRIORITY_TRANSFER if kind == "transfer" else PRIORITY_RETRACTION
    entries = []
    for index, chunk in enumerate(chunks):
        identity = message_id([t.event_id for t in chunk], kind, epoch)
        entries.append(OutboxEntry(
            id=identity, scope=scope, kind=kind, routing_key=routing_key(chunk[0].chain_id, kind),
            message_id=identity, body=envelope(chunk, kind, epoch), events=len(chunk),
            first_block=min(t.block_number for t in chunk), last_block=max(t.block_number for t in chunk),
            seq=first + index, priority=priority,
        ))
    return entries

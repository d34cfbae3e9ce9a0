"""The outbox publisher: order, deletion only after confirms, poison messages versus broker outages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

from mintplane.common.amqp import OutgoingMessage, PublishFailed
from mintplane.indexer.documents import OutboxEntry
from mintplane.indexer.events import Transfer
from mintplane.indexer.outbox import SeqClock, entries_for
from mintplane.indexer.publisher import OutboxPublisher

pytestmark = pytest.mark.unit


class FakeOutbox:
    def __init__(self) -> None:
        self.deleted: list[tuple[int, int]] = []
        self.failed: list[str] = []
        self.stored: list[OutboxEntry] = []

    async def queued(self, scope: str, **_: Any) -> list[OutboxEntry]:
        return [e for e in self.stored if e.status == "pending"]

    async def delete_published(self, scope: str, after_seq: int, upto_seq: int) -> int:
        self.deleted.append((after_seq, upto_seq))
        return 0

    async def mark_failed(self, entry: OutboxEntry, error: str, next_attempt_at: datetime) -> None:
        self.failed.append(entry.id)

    async def delete_entry(self, entry_id: str) -> None:
        pass


class FakeBroker:
    def __init__(self, *, down: bool = False, poison: frozenset[str] = frozenset()) -> None:
        self.down = down
        self.poison = poison
        self.sent: list[str] = []

    async def publish_batch(self, messages: Sequence[OutgoingMessage], *, timeout: float = 30.0) -> None:
        if self.down or any(m.message_id in self.poison for m in messages):
            raise PublishFailed("not confirmed")
        self.sent += [str(m.message_id) for m in messages]


def _entries(count: int) -> list[OutboxEntry]:
    transfers = [Transfer("eip155:1", "0x" + "aa" * 20, "ERC721", n, "0x" + "00" * 20, "0x" + "11" * 20, 1, 5,
                          "0x" + "cd" * 32, n, 0, "0x" + "ef" * 32, None, "Transfer") for n in range(count)]
    return entries_for("eip155:1", transfers, "transfer", 0, SeqClock(), per_message=1)


async def _run_until_drained(publisher: OutboxPublisher) -> None:
    task = asyncio.create_task(publisher.run())
    try:
        await asyncio.wait_for(publisher.drain(), 5)
    finally:
        task.cancel()


async def test_publishes_in_seq_order_and_deletes_only_what_was_confirmed() -> None:
    outbox, broker = FakeOutbox(), FakeBroker()
    publisher = OutboxPublisher(outbox, broker, "eip155:1", batch_size=4)  # type: ignore[arg-type]
    entries = _entries(10)
    publisher.hand_over(entries)
    assert publisher.pending == 10
    await _run_until_drained(publisher)
    assert broker.sent == [e.message_id for e in entries]
    assert outbox.deleted and outbox.deleted[-1][1] == entries[-1].seq and publisher.published == 10


async def test_a_broker_outage_marks_nothing_and_keeps_everything_queued() -> None:
    outbox, broker = FakeOutbox(), FakeBroker(down=True)
    publisher = OutboxPublisher(outbox, broker, "eip155:1", batch_size=4, max_backoff=0.01,  # type: ignore[arg-type]
                                rng=lambda: 0.0)
    publisher.hand_over(_entries(6))
    task = asyncio.create_task(publisher.run())
    await asyncio.sleep(0.3)
    assert publisher.pending == 6 and outbox.failed == [] and outbox.deleted == []
    assert "publish" in publisher.last_error
    broker.down = False
    await asyncio.wait_for(publisher.drain(), 5)
    task.cancel()
    assert len(broker.sent) == 6


async def test_a_poison_message_is_set_aside_and_the_rest_flows() -> None:
    entries = _entries(5)
    outbox, broker = FakeOutbox(), FakeBroker(poison=frozenset({entries[2].message_id}))
    publisher = OutboxPublisher(outbox, broker, "eip155:1", batch_size=5, max_backoff=0.01,  # type: ignore[arg-type]
                                rng=lambda: 0.0)
    publisher.hand_over(entries)
    await _run_until_drained(publisher)
    assert outbox.failed == [entries[2].id]
    assert sorted(broker.sent) == sorted(e.message_id for i, e in enumerate(entries) if i != 2)


def test_entry_ids_are_deterministic_and_seq_increases() -> None:
    first, second = _entries(3), _entries(3)
    assert [e.id for e in first] == [e.id for e in second]
    assert [e.seq for e in first] == sorted(e.seq for e in first) and second[0].seq > first[-1].seq
    assert first[0].id.startswith("t:0:") and first[0].id == first[0].message_id


def test_a_batch_travels_in_messages_of_at_most_per_message_events() -> None:
    transfers = [Transfer("eip155:1", "0x" + "aa" * 20, "ERC721", n, "0x" + "00" * 20, "0x" + "11" * 20, 1,
                          5 + n // 1000, "0x" + "cd" * 32, n, 0, "0x" + "ef" * 32, None, "Transfer")
                 for n in range(2500)]
    entries = entries_for("eip155:1", transfers, "transfer", 2, SeqClock(), per_message=1000)
    assert [e.events for e in entries] == [1000, 1000, 500]
    assert [(e.first_block, e.last_block) for e in entries] == [(5, 5), (6, 6), (7, 7)]
    bodies = [json.loads(e.body) for e in entries]
    assert [b["event_id"] for body in bodies for b in body["events"]] == [t.event_id for t in transfers]
    assert {b["epoch"] for body in bodies for b in body["events"]} == {2}


async def test_pending_and_back_pressure_count_events_not_messages() -> None:
    outbox, broker = FakeOutbox(), FakeBroker(down=True)
    publisher = OutboxPublisher(outbox, broker, "eip155:1", batch_size=4)  # type: ignore[arg-type]
    transfers = [Transfer("eip155:1", "0x" + "aa" * 20, "ERC721", n, "0x" + "00" * 20, "0x" + "11" * 20, 1, 5,
                          "0x" + "cd" * 32, n, 0, "0x" + "ef" * 32, None, "Transfer") for n in range(30)]
    publisher.hand_over(entries_for("eip155:1", transfers, "transfer", 0, SeqClock(), per_message=10))
    assert publisher.pending == 30
    publisher.forget_transfers_above(4)  # every message starts at block 5: all of them go
    assert publisher.pending == 0
    await asyncio.wait_for(publisher.wait_below(0), 1)

"""The indexer's MongoDB: raw events and the outbox of messages to publish (database ``indexer``).

Both are written before the PostgreSQL transaction that makes a batch "done", with deterministic ids and
``insert_many(ordered=False)`` that ignores duplicate keys, so rewriting a batch after a crash is a no-op.

- ``raw_events``: one document per (chain, block hash, contract) holding that block's decoded events of
  the contract, each with its log index and batch index (idempotent on chain + block hash + log index:
  the document id is the first two and the contract, the events inside are unique by position). FerretDB
  1.24 spends ~50-80 µs of CPU per document whatever its size (measured: ~17,000-25,000 small documents/s
  on this machine, bench/indexer), so one document per event would cap indexing there; dense blocks hold
  hundreds of events. Documents of blocks a reorg orphaned are deleted by block hash.
- ``processing_queue`` (the outbox): one document per message (a batch of up to 1,000 events of one
  indexing batch, see :mod:`mintplane.indexer.outbox`), with its block range, event count, priority,
  retry_count, status and next_attempt_at. A message is *published* once the broker confirmed it;
  confirmed entries are then deleted in bulk by seq range, so the queue only holds what is still to send
  (or was sent a moment ago). FerretDB 1.24 (the local MongoDB) filters by scanning the collection, so an
  outbox of a few large documents (not one per event) keeps every scan, and the whole outbox, cheap.
  Entries the broker refuses individually are updated to status ``failed`` with back-off (rare).

Only features both MongoDB and FerretDB 1.24 implement are used (DESIGN section 5).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, OperationFailure

from mintplane.indexer.events import Transfer

DUPLICATE_KEY = 11000
LEGACY_RAW_INDEX = "ux_raw_events_log"
DELETE_CHUNK = 10_000
"""FerretDB (SQLite backend) deletes by listing every matching id as an SQL variable and fails above
32,766 ("too many SQL variables"); bulk deletes therefore go in chunks of ids."""


@dataclass
class OutboxEntry:
    id: str  # = message_id
    scope: str
    kind: str  # "transfer" | "retraction"
    routing_key: str
    message_id: str
    body: bytes
    events: int
    first_block: int
    last_block: int
    seq: int
    priority: int = 0
    retry_count: int = 0
    status: str = "pending"
    next_attempt_at: datetime | None = None

    def document(self) -> dict[str, Any]:
        return {
            "_id": self.id, "scope": self.scope, "kind": self.kind, "routing_key": self.routing_key,
            "message_id": self.message_id, "body": self.body.decode(), "events": self.events,
            "first_block": self.first_block, "last_block": self.last_block, "seq": self.seq,
            "priority": self.priority, "retry_count": self.retry_count, "status": self.status,
            "next_attempt_at": self.next_attempt_at or datetime.now(UTC), "created_at": datetime.now(UTC),
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> OutboxEntry:
        return cls(
            id=doc["_id"], scope=doc["scope"], kind=doc["kind"], routing_key=doc["routing_key"],
            message_id=doc["message_id"], body=str(doc["body"]).encode(), events=int(doc["events"]),
            first_block=int(doc["first_block"]), last_block=int(doc["last_block"]), seq=int(doc["seq"]),
            priority=int(doc.get("priority", 0)), retry_count=int(doc.get("retry_count", 0)),
            status=str(doc.get("status", "pending")), next_attempt_at=doc.get("next_attempt_at"),
        )


def raw_documents(transfers: Iterable[Transfer]) -> list[dict[str, Any]]:
    """The raw events of a batch, one document per (block, contract): ``_id`` ``<caip2>:<block_hash>:<contract>``.

    Each event in ``events`` keeps its own id and position (log index, batch index). A block is never
    split between batches and every lane reads all of a contract's logs in a block, so a rewrite produces
    the same document and is ignored as a duplicate key.
    """
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for t in transfers:
        doc = grouped.get((t.block_hash, t.contract))
        if doc is None:
            doc = grouped[(t.block_hash, t.contract)] = {
                "_id": f"{t.chain_id}:{t.block_hash}:{t.contract}",
                "chain_id": t.chain_id,
                "block_number": t.block_number,
                "block_hash": t.block_hash,
                "contract": t.contract,
                "standard": t.standard,
                "timestamp": datetime.fromtimestamp(t.timestamp, UTC) if t.timestamp is not None else None,
                "events": [],
            }
        doc["events"].append({
            "event_id": t.event_id, "log_index": t.log_index, "batch_index": t.batch_index, "tx_hash": t.tx_hash,
            "event_type": t.event_type, "from": t.from_addr, "to": t.to_addr, "token_id": str(t.token_id),
            "quantity": str(t.quantity),
        })
    return list(grouped.values())


def raw_event_ids(documents: Iterable[dict[str, Any]]) -> list[str]:
    return [event["event_id"] for doc in documents for event in doc["events"]]


async def delete_in_chunks(collection: Any, query: dict[str, Any]) -> int:
    """delete_many that also works where FerretDB refuses to delete more than 32,766 documents at once.

    The plain delete is one scan; only when FerretDB refuses it are ids fetched and deleted in chunks of
    DELETE_CHUNK (each chunk costs two more scans, so callers that can bound their ranges should).
    """
    try:
        result = await collection.delete_many(query)
        return int(result.deleted_count)
    except OperationFailure as exc:
        if "too many SQL variables" not in str(exc):
            raise
    deleted = 0
    while True:
        ids = [doc["_id"] async for doc in collection.find(query, {"_id": 1}).limit(DELETE_CHUNK)]
        if not ids:
            return deleted
        result = await collection.delete_many({"_id": {"$in": ids}})
        deleted += int(result.deleted_count)
        if len(ids) < DELETE_CHUNK:
            return deleted


async def _insert_ignoring_duplicates(collection: Any, docs: Sequence[dict[str, Any]]) -> int:
    """Insert all; documents already there are skipped. Returns how many were new."""
    if not docs:
        return 0
    try:
        result = await collection.insert_many(list(docs), ordered=False)
        return len(result.inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if other:
            raise
        return int(exc.details.get("nInserted", 0))


class EventDocuments:
    def __init__(self, client: Any, database: str = "indexer") -> None:
        db = client[database]
        self.raw = db["raw_events"]
        self.queue = db["processing_queue"]

    async def ensure_indexes(self) -> None:
        if LEGACY_RAW_INDEX in await self.raw.index_information():  # redundant with _id, costs every insert
            await self.raw.drop_index(LEGACY_RAW_INDEX)
        await self.raw.create_index([("chain_id", ASCENDING), ("block_number", ASCENDING)],
                                    name="ix_raw_events_block")
        await self.queue.create_index([("scope", ASCENDING), ("seq", ASCENDING)], name="ix_queue_scope_seq")

    async def insert_raw(self, transfers: Iterable[Transfer]) -> int:
        return await _insert_ignoring_duplicates(self.raw, raw_documents(transfers))

    async def enqueue(self, entries: Sequence[OutboxEntry]) -> int:
        return await _insert_ignoring_duplicates(self.queue, [e.document() for e in entries])

    async def queued(self, scope: str, *, due_before: datetime | None = None, status: str | None = None,
                     limit: int = 0) -> list[OutboxEntry]:
        query: dict[str, Any] = {"scope": scope}
        if status is not None:
            query["status"] = status
        if due_before is not None:
            query["next_attempt_at"] = {"$lte": due_before}
        cursor = self.queue.find(query).sort("seq", ASCENDING)
        if limit:
            cursor = cursor.limit(limit)
        return [OutboxEntry.from_document(doc) async for doc in cursor]

    async def delete_published(self, scope: str, after_seq: int, upto_seq: int) -> int:
        """Delete the scope's confirmed entries with after_seq < seq <= upto_seq (failed ones excepted)."""
        return await delete_in_chunks(
            self.queue, {"scope": scope, "seq": {"$gt": after_seq, "$lte": upto_seq}, "retry_count": 0}
        )

    async def delete_entry(self, entry_id: str) -> None:
        await self.queue.delete_one({"_id": entry_id})

    async def mark_failed(self, entry: OutboxEntry, error: str, next_attempt_at: datetime) -> None:
        await self.queue.update_one(
            {"_id": entry.id},
            {"$set": {"status": "failed", "retry_count": entry.retry_count + 1, "last_error": error[:500],
                      "next_attempt_at": next_attempt_at}},
        )

    async def discard_transfers_above(self, scope: str, block: int) -> int:
        """Drop transfer messages of batches above `block` (an uncommitted or rolled-back batch).

        A message never spans two batches, so those are exactly the messages starting above `block`.
        """
        return await delete_in_chunks(self.queue, {"scope": scope, "kind": "transfer", "first_block": {"$gt": block}})

    async def count_queued(self, scope: str) -> int:
        return int(await self.queue.count_documents({"scope": scope}))

    async def raw_blocks_above(self, chain_id: str, block: int) -> dict[int, set[str]]:
        """Block hashes of raw events above `block` (startup: what an interrupted batch may have left)."""
        found: dict[int, set[str]] = {}
        cursor = self.raw.find({"chain_id": chain_id, "block_number": {"$gt": block}},
                               {"block_number": 1, "block_hash": 1})
        async for doc in cursor:
            found.setdefault(int(doc["block_number"]), set()).add(str(doc["block_hash"]))
        return found

    async def delete_raw_blocks(self, chain_id: str, block_hashes: Iterable[str]) -> int:
        hashes = sorted(set(block_hashes))
        if not hashes:
            return 0
        deleted = 0
        for start in range(0, len(hashes), 1_000):
            chunk = hashes[start : start + 1_000]
            deleted += await delete_in_chunks(self.raw, {"chain_id": chain_id, "block_hash": {"$in": chunk}})
        return deleted

"""Decoded transfers and the JSON messages the indexer publishes about them.

One `Transfer` is one (token id, amount) pair moved by one log: an ERC-721 ``Transfer`` or ERC-1155
``TransferSingle`` log yields one, a ``TransferBatch`` log one per pair (``batch_index``). Its identity is
``<caip2>:<block_hash>:<log_index>:<batch_index>``: stable across replays of the same block, different as
soon as the block is replaced by a reorg, which is what makes every sink idempotent.

The message contract (routing keys ``chain.<caip2>.transfer`` / ``chain.<caip2>.transfer.retracted`` on the
``mintplane.events`` topic exchange) is documented on :func:`message_body` (one event) and :func:`envelope`
(the message: a batch of events).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

ZERO_ADDRESS = "0x" + "0" * 40

Standard = Literal["ERC721", "ERC1155"]
MessageType = Literal["transfer", "retraction"]


@dataclass(frozen=True, slots=True)
class Transfer:
    chain_id: str  # CAIP-2
    contract: str  # lowercase 0x address
    standard: Standard
    token_id: int
    from_addr: str
    to_addr: str
    quantity: int
    block_number: int
    block_hash: str
    log_index: int
    batch_index: int
    tx_hash: str
    timestamp: int | None  # unix seconds of the block, when known
    event_type: str  # "Transfer" | "TransferSingle" | "TransferBatch"

    @property
    def event_id(self) -> str:
        return event_id(self.chain_id, self.block_hash, self.log_index, self.batch_index)

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.block_number, self.log_index, self.batch_index)


def event_id(chain_id: str, block_hash: str, log_index: int, batch_index: int) -> str:
    return f"{chain_id}:{block_hash}:{log_index}:{batch_index}"


def routing_key(chain_id: str, kind: MessageType) -> str:
    return f"chain.{chain_id}.transfer" if kind == "transfer" else f"chain.{chain_id}.transfer.retracted"


def message_id(event_ids: Sequence[str], kind: MessageType, epoch: int) -> str:
    """Deterministic id of the message carrying `event_ids`: the same events re-sent after a crash keep it,
    while their retraction, or their re-adoption in a later reorg epoch, gets a new one."""
    digest = hashlib.sha256("\n".join(event_ids).encode()).hexdigest()[:32]
    return f"{kind[0]}:{epoch}:{digest}"


def iso_timestamp(unix: int | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def message_body(transfer: Transfer, kind: MessageType, epoch: int) -> dict[str, Any]:
    """The JSON document of one event.

    ``{"type": "transfer"|"retraction", "event_id", "chain_id", "contract" (lowercase), "standard":
    "ERC721"|"ERC1155", "token_id" (decimal string), "from", "to", "quantity" (decimal string),
    "block_number", "block_hash", "log_index", "batch_index", "tx_hash", "timestamp" (ISO-8601 or null),
    "epoch"}``. ``epoch`` is the chain's reorg epoch when the transfer was indexed (or retracted): a
    retraction undoes a transfer of a lower epoch, and a transfer re-adopted after a reorg flip-flop
    carries an epoch at least that of the retraction, so consumers order them whatever the arrival order.
    """
    return {
        "type": kind,
        "event_id": transfer.event_id,
        "chain_id": transfer.chain_id,
        "contract": transfer.contract,
        "standard": transfer.standard,
        "token_id": str(transfer.token_id),
        "from": transfer.from_addr,
        "to": transfer.to_addr,
        "quantity": str(transfer.quantity),
        "block_number": transfer.block_number,
        "block_hash": transfer.block_hash,
        "log_index": transfer.log_index,
        "batch_index": transfer.batch_index,
        "tx_hash": transfer.tx_hash,
        "timestamp": iso_timestamp(transfer.timestamp),
        "epoch": epoch,
    }


def envelope(transfers: Sequence[Transfer], kind: MessageType, epoch: int) -> bytes:
    """The body of one message: ``{"events": [<message_body of each event>, ...]}``.

    Events travel in batches (up to :data:`mintplane.indexer.outbox.MESSAGE_EVENTS` per message) because the
    broker's and the client's cost is per message: one event per message caps a Python publisher at a few
    thousand events per second. Each event is self-describing, so consumers handle them one by one.
    """
    return encode({"events": [message_body(t, kind, epoch) for t in transfers]})


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def transfer_from_row(row: dict[str, Any]) -> Transfer:
    """Rebuild a transfer from its stored form (an ownership_transfers row or a pending retraction)."""
    ts = row.get("timestamp")
    if isinstance(ts, datetime):
        unix: int | None = int(ts.timestamp())
    elif isinstance(ts, int | float):
        unix = int(ts)
    else:
        unix = None
    return Transfer(
        chain_id=str(row["chain_id"]),
        contract=str(row["contract"]),
        standard="ERC1155" if row.get("standard") == "ERC1155" else "ERC721",
        token_id=int(row["token_id"]),
        from_addr=str(row["from_addr"]),
        to_addr=str(row["to_addr"]),
        quantity=int(row["quantity"]),
        block_number=int(row["block_number"]),
        block_hash=str(row["block_hash"]),
        log_index=int(row["log_index"]),
        batch_index=int(row["batch_index"]),
        tx_hash=str(row["tx_hash"]),
        timestamp=unix,
        event_type=str(row.get("event_type") or "Transfer"),
    )


def transfer_to_json(transfer: Transfer) -> dict[str, Any]:
    """The stored form :func:`transfer_from_row` reads back (pending retractions are kept as JSON)."""
    return {
        "chain_id": transfer.chain_id,
        "contract": transfer.contract,
        "standard": transfer.standard,
        "token_id": str(transfer.token_id),
        "from_addr": transfer.from_addr,
        "to_addr": transfer.to_addr,
        "quantity": str(transfer.quantity),
        "block_number": transfer.block_number,
        "block_hash": transfer.block_hash,
        "log_index": transfer.log_index,
        "batch_index": transfer.batch_index,
        "tx_hash": transfer.tx_hash,
        "timestamp": transfer.timestamp,
        "event_type": transfer.event_type,
    }

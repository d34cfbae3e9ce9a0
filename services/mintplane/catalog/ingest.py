"""What the catalog does with indexer events, decided in plain code before any SQL runs.

Each event id has a state in ``catalog.processed_events``: the reorg epoch it was last applied or
retracted at, and whether it is applied. Messages fold into that state in arrival order:

- a transfer applies unless already applied, or unless a retraction of a *later* epoch came first (it is
  then a late copy of an orphaned transfer); a transfer of an epoch at least the retraction's is the
  same log re-adopted after a reorg flip-flop, and applies again;
- a retraction undoes an applied transfer of an earlier epoch; arriving first, it leaves a tombstone
  that makes the transfer it names a no-op when that shows up.

So redeliveries, duplicates and reordering (several consumers, requeues) all end in the same state. The
difference between the stored and the folded state is the work: insert an activity, or delete one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ZERO_ADDRESS = "0x" + "0" * 40
_HEX_ADDRESS = frozenset("0123456789abcdef")


class BadMessage(ValueError):
    """The message is not an indexer event this consumer understands (it is dropped, not retried)."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "transfer" | "retraction"
    event_id: str
    chain_id: str
    contract: str
    standard: str  # ERC721 | ERC1155
    token_id: str
    from_addr: str
    to_addr: str
    quantity: int
    block_number: int
    log_index: int
    batch_index: int
    tx_hash: str
    timestamp: datetime | None
    epoch: int

    @property
    def activity_type(self) -> str:
        if self.from_addr == ZERO_ADDRESS:
            return "mint"
        if self.to_addr == ZERO_ADDRESS:
            return "burn"
        return "transfer"


def _address(value: Any, field: str) -> str:
    text = str(value).lower()
    if len(text) != 42 or not text.startswith("0x") or not set(text[2:]) <= _HEX_ADDRESS:
        raise BadMessage(f"{field} is not an address")
    return text


def _uint(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise BadMessage(f"{field} is not an unsigned integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadMessage(f"{field} is not an unsigned integer") from None
    if number < 0:
        raise BadMessage(f"{field} is negative")
    return number


def parse_events(body: bytes) -> list[Event]:
    """The events of one message: the indexer's ``{"events": [...]}`` envelope, or one bare event object.

    The whole message is refused when any event in it is malformed: its events come from one indexing
    batch, and applying part of it would hide the problem.
    """
    try:
        data = json.loads(body)
    except ValueError:
        raise BadMessage("body is not JSON") from None
    if not isinstance(data, dict):
        raise BadMessage("body is not a JSON object")
    if "events" not in data:
        return [event_from_json(data)]
    events = data["events"]
    if not isinstance(events, list) or not events:
        raise BadMessage("events is not a non-empty list")
    return [event_from_json(item) for item in events]


def parse_event(body: bytes) -> Event:
    """One bare event object (what :func:`parse_events` accepts besides the envelope)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadMessage("body is not JSON") from None
    return event_from_json(data)


def event_from_json(data: Any) -> Event:
    if not isinstance(data, dict):
        raise BadMessage("event is not a JSON object")
    try:
        kind = data["type"]
        if kind not in ("transfer", "retraction"):
            raise BadMessage(f"unknown type {kind!r}")
        standard = data["standard"]
        if standard not in ("ERC721", "ERC1155"):
            raise BadMessage(f"unknown standard {standard!r}")
        stamp = data.get("timestamp")
        return Event(
            kind=kind, event_id=str(data["event_id"]), chain_id=str(data["chain_id"]),
            contract=_address(data["contract"], "contract"), standard=standard,
            token_id=str(_uint(data["token_id"], "token_id")), from_addr=_address(data["from"], "from"),
            to_addr=_address(data["to"], "to"), quantity=_uint(data["quantity"], "quantity"),
            block_number=_uint(data["block_number"], "block_number"), log_index=_uint(data["log_index"], "log_index"),
            batch_index=_uint(data["batch_index"], "batch_index"), tx_hash=str(data["tx_hash"]).lower(),
            timestamp=datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None,
            epoch=_uint(data.get("epoch", 0), "epoch"),
        )
    except KeyError as exc:
        raise BadMessage(f"missing field {exc.args[0]}") from None
    except (TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, BadMessage):
            raise
        raise BadMessage(f"malformed field: {exc}") from None


@dataclass(frozen=True, slots=True)
class EventState:
    epoch: int
    applied: bool


@dataclass(frozen=True)
class Decision:
    event_id: str
    state: EventState  # to store
    insert: Event | None  # the transfer whose activity to insert
    delete: bool  # delete the event's activity
    changed: bool  # the stored state differs (an upsert is needed)


def fold(stored: EventState | None, events: Iterable[Event]) -> tuple[EventState | None, Event | None]:
    """The state after `events` (arrival order) and the transfer that made it applied, if it is."""
    state = stored
    applying: Event | None = None
    for event in events:
        if event.kind == "transfer":
            if state is None or (not state.applied and event.epoch >= state.epoch):
                state, applying = EventState(event.epoch, True), event
            elif state.applied:
                state = EventState(max(state.epoch, event.epoch), True)
        elif state is None:
            state = EventState(event.epoch, False)
        elif state.applied:
            if event.epoch > state.epoch:
                state, applying = EventState(event.epoch, False), None
        else:
            state = EventState(max(state.epoch, event.epoch), False)
    return state, applying


def decide(stored: Mapping[str, EventState], grouped: Mapping[str, list[Event]]) -> list[Decision]:
    decisions = []
    for event_id, events in grouped.items():
        before = stored.get(event_id)
        after, applying = fold(before, events)
        assert after is not None
        was = before is not None and before.applied
        insert = applying if (after.applied and not was) else None
        decisions.append(Decision(event_id, after, insert, was and not after.applied, after != before))
    return decisions


def group(events: Iterable[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = {}
    for event in events:
        grouped.setdefault(event.event_id, []).append(event)
    return grouped

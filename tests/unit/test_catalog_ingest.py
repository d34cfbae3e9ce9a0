"""The catalog's per-event decisions: parsing, and folding duplicates, reorderings and retractions."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mintplane.catalog.collections import slugify
from mintplane.catalog.ingest import BadMessage, Event, EventState, decide, fold, group, parse_event
from mintplane.common.errors import InvalidArgument
from mintplane.common.pagination import decode_key_token, encode_key_token

pytestmark = pytest.mark.unit

ZERO = "0x" + "0" * 40
BODY = {
    "type": "transfer", "event_id": "eip155:1:0xab:3:0", "chain_id": "eip155:1", "contract": "0x" + "AA" * 20,
    "standard": "ERC721", "token_id": "42", "from": ZERO, "to": "0x" + "11" * 20, "quantity": "1",
    "block_number": 9, "block_hash": "0xab", "log_index": 3, "batch_index": 0, "tx_hash": "0xEF",
    "timestamp": "2026-01-01T00:00:00Z", "epoch": 0,
}


def _event(kind: str = "transfer", epoch: int = 0) -> Event:
    return replace(parse_event(json.dumps(BODY).encode()), kind=kind, epoch=epoch)


def test_parses_the_indexer_message_contract() -> None:
    event = parse_event(json.dumps(BODY).encode())
    assert event.contract == "0x" + "aa" * 20 and event.token_id == "42" and event.activity_type == "mint"
    assert event.timestamp is not None and event.timestamp.year == 2026 and event.tx_hash == "0xef"
    assert replace(event, to_addr=ZERO, from_addr="0x" + "11" * 20).activity_type == "burn"


@pytest.mark.parametrize("change", [
    {"type": "sale"}, {"standard": "ERC20"}, {"contract": "0x12"}, {"token_id": "-1"}, {"quantity": "lots"},
    {"token_id": True},
])
def test_refuses_what_is_not_an_indexer_event(change: dict) -> None:
    with pytest.raises(BadMessage):
        parse_event(json.dumps({**BODY, **change}).encode())
    with pytest.raises(BadMessage):
        parse_event(b"[1, 2]")
    with pytest.raises(BadMessage):
        parse_event(json.dumps({k: v for k, v in BODY.items() if k != "to"}).encode())


@pytest.mark.parametrize(("stored", "arrivals", "expected"), [
    (None, [("transfer", 0)], (0, True)),
    (None, [("transfer", 0), ("transfer", 0)], (0, True)),  # duplicate
    (EventState(0, True), [("transfer", 0)], (0, True)),  # redelivery
    (EventState(0, True), [("retraction", 1)], (1, False)),
    (None, [("retraction", 1), ("transfer", 0)], (1, False)),  # the retraction overtook its transfer
    (EventState(1, False), [("transfer", 0)], (1, False)),  # late copy of the orphaned transfer
    (EventState(1, False), [("transfer", 1)], (1, True)),  # re-adopted after a flip-flop
    (EventState(1, True), [("retraction", 1)], (1, True)),  # stale retraction of an older adoption
    (None, [("transfer", 0), ("retraction", 1), ("transfer", 2)], (2, True)),
])
def test_fold(stored: EventState | None, arrivals: list[tuple[str, int]], expected: tuple[int, bool]) -> None:
    state, applying = fold(stored, [_event(kind, epoch) for kind, epoch in arrivals])
    assert state == EventState(*expected)
    assert (applying is not None) == (state is not None and state.applied and not (stored and stored.applied))


def test_decide_turns_state_changes_into_work() -> None:
    transfer, retraction = _event("transfer", 0), _event("retraction", 1)
    other = replace(transfer, event_id="eip155:1:0xab:4:0")
    decisions = {d.event_id: d for d in decide({transfer.event_id: EventState(0, True)},
                                               group([retraction, other]))}
    assert decisions[transfer.event_id].delete and decisions[transfer.event_id].insert is None
    assert decisions[other.event_id].insert == other and not decisions[other.event_id].delete
    assert all(d.changed for d in decisions.values())


def test_slugs_and_page_tokens() -> None:
    assert slugify("  Mintplane Genesis: Über #1 ") == "mintplane-genesis-uber-1"
    token = encode_key_token(["a", 2, "10"], ["tokens", "x"])
    assert decode_key_token(token, ["tokens", "x"], 3) == ["a", 2, "10"]
    with pytest.raises(InvalidArgument):
        decode_key_token(token, ["tokens", "y"], 3)
    with pytest.raises(InvalidArgument):
        decode_key_token("%%%", ["tokens", "x"], 3)
    assert decode_key_token("", ["tokens", "x"], 3) is None

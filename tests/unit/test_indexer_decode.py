"""Decoding transfer logs straight from topics and data, and the message contract built from them."""

from __future__ import annotations

import json

import pytest
from eth_abi.abi import encode

from mintplane.indexer.decode import TRANSFER_BATCH_TOPIC, TRANSFER_SINGLE_TOPIC, TRANSFER_TOPIC, decode_logs
from mintplane.indexer.events import encode as encode_body
from mintplane.indexer.events import envelope, message_body, message_id, routing_key

pytestmark = pytest.mark.unit

CHAIN = "eip155:31337"
NFT = "0x" + "aa" * 20
MULTI = "0x" + "bb" * 20
ALICE, BOB, OPERATOR = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
BLOCK_HASH = "0x" + "cd" * 32


def _topic(address: str) -> str:
    return "0x" + "0" * 24 + address[2:]


def _log(address: str, topics: list[str], data: str = "0x", index: int = 0, block: int = 7, **extra: object) -> dict:
    return {"address": address.upper().replace("0X", "0x"), "topics": topics, "data": data,
            "blockNumber": hex(block), "blockHash": BLOCK_HASH.upper().replace("0X", "0x"), "logIndex": hex(index),
            "transactionHash": "0x" + "ef" * 32, "removed": False, **extra}


STANDARDS = {NFT: "ERC721", MULTI: "ERC1155"}


def test_erc721_transfer_is_read_from_topics() -> None:
    log = _log(NFT, [TRANSFER_TOPIC, _topic(ALICE), _topic(BOB), hex(2**255 + 5)], blockTimestamp="0x10")
    result = decode_logs(CHAIN, [log], STANDARDS, {})
    [transfer] = result.transfers
    assert (transfer.contract, transfer.from_addr, transfer.to_addr) == (NFT, ALICE, BOB)
    assert transfer.token_id == 2**255 + 5 and transfer.quantity == 1 and transfer.timestamp == 16
    assert transfer.block_hash == BLOCK_HASH and transfer.event_id == f"{CHAIN}:{BLOCK_HASH}:0:0"


def test_erc1155_single_and_batch_yield_one_transfer_per_pair() -> None:
    single = _log(MULTI, [TRANSFER_SINGLE_TOPIC, _topic(OPERATOR), _topic(ALICE), _topic(BOB)],
                  "0x" + encode(["uint256", "uint256"], [9, 40]).hex(), index=1)
    batch = _log(MULTI, [TRANSFER_BATCH_TOPIC, _topic(OPERATOR), "0x" + "0" * 64, _topic(BOB)],
                 "0x" + encode(["uint256[]", "uint256[]"], [[1, 2, 3], [10, 20, 30]]).hex(), index=2)
    result = decode_logs(CHAIN, [single, batch], STANDARDS, {}, timestamps={7: 99})
    assert [(t.token_id, t.quantity, t.batch_index, t.from_addr) for t in result.transfers] == [
        (9, 40, 0, ALICE), (1, 10, 0, "0x" + "0" * 40), (2, 20, 1, "0x" + "0" * 40), (3, 30, 2, "0x" + "0" * 40)]
    assert {t.timestamp for t in result.transfers} == {99}
    assert len({t.event_id for t in result.transfers}) == 4


def test_logs_that_do_not_fit_are_skipped_and_counted_never_raised() -> None:
    erc20_style = _log(NFT, [TRANSFER_TOPIC, _topic(ALICE), _topic(BOB)], "0x" + "00" * 32)
    truncated = _log(MULTI, [TRANSFER_BATCH_TOPIC, _topic(OPERATOR), _topic(ALICE), _topic(BOB)], "0x1234", index=3)
    untracked = _log("0x" + "99" * 20, [TRANSFER_TOPIC, _topic(ALICE), _topic(BOB), hex(1)])
    before_start = _log(NFT, [TRANSFER_TOPIC, _topic(ALICE), _topic(BOB), hex(1)], block=3)
    removed = _log(NFT, [TRANSFER_TOPIC, _topic(ALICE), _topic(BOB), hex(1)], removed=True)
    other_event = _log(NFT, ["0x" + "12" * 32, _topic(ALICE)])
    result = decode_logs(CHAIN, [erc20_style, truncated, untracked, before_start, removed, other_event],
                         STANDARDS, {NFT: 5})
    assert result.transfers == [] and result.skipped == 2


def test_message_contract() -> None:
    [transfer] = decode_logs(CHAIN, [_log(NFT, [TRANSFER_TOPIC, _topic(ALICE), _topic(BOB), hex(12)],
                                         blockTimestamp=hex(1_767_225_600))], STANDARDS, {}).transfers
    body = json.loads(encode_body(message_body(transfer, "transfer", 3)))
    assert body == {
        "type": "transfer", "event_id": transfer.event_id, "chain_id": CHAIN, "contract": NFT, "standard": "ERC721",
        "token_id": "12", "from": ALICE, "to": BOB, "quantity": "1", "block_number": 7, "block_hash": BLOCK_HASH,
        "log_index": 0, "batch_index": 0, "tx_hash": "0x" + "ef" * 32, "timestamp": "2026-01-01T00:00:00Z",
        "epoch": 3,
    }
    assert routing_key(CHAIN, "transfer") == "chain.eip155:31337.transfer"
    assert routing_key(CHAIN, "retraction") == "chain.eip155:31337.transfer.retracted"
    ids = [transfer.event_id]
    assert message_id(ids, "transfer", 3) == message_id(list(ids), "transfer", 3)  # deterministic
    assert len({message_id(ids, "transfer", 3), message_id(ids, "retraction", 3), message_id(ids, "transfer", 4),
                message_id([*ids, "x"], "transfer", 3)}) == 4
    assert json.loads(envelope([transfer, transfer], "retraction", 4)) == {
        "events": [message_body(transfer, "retraction", 4)] * 2}

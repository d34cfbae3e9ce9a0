"""Decode ERC-721 / ERC-1155 transfer logs straight from their topics and data.

No web3 contract objects: a log is a dict from ``eth_getLogs`` and decoding is a few slices and integer
conversions (ERC-721 keeps every field in topics) plus ``eth_abi`` for the ERC-1155 data words. Logs that
do not fit their contract's standard (an ERC-20 style ``Transfer`` with three topics, truncated data) are
skipped and counted, never raised: one odd contract must not stop a chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from mintplane.indexer.events import Standard, Transfer

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
TRANSFER_SINGLE_TOPIC = "0x" + keccak(text="TransferSingle(address,address,address,uint256,uint256)").hex()
TRANSFER_BATCH_TOPIC = "0x" + keccak(text="TransferBatch(address,address,address,uint256[],uint256[])").hex()
TOPICS: tuple[str, ...] = (TRANSFER_TOPIC, TRANSFER_SINGLE_TOPIC, TRANSFER_BATCH_TOPIC)


@dataclass
class DecodeResult:
    transfers: list[Transfer] = field(default_factory=list)
    skipped: int = 0  # logs of tracked contracts that are not a well-formed transfer of their standard


def _address(topic: str) -> str:
    return "0x" + topic[-40:].lower()


def _int(value: Any) -> int:
    return value if isinstance(value, int) else int(value, 16)


def decode_logs(
    chain_id: str,
    logs: Iterable[Mapping[str, Any]],
    standards: Mapping[str, Standard],
    start_blocks: Mapping[str, int],
    timestamps: Mapping[int, int] | None = None,
) -> DecodeResult:
    """Turn raw logs into transfers, in chain order as given.

    `standards` maps each tracked contract (lowercase) to its standard; logs of other addresses and logs
    before a contract's start block are ignored. Block timestamps come from the log's ``blockTimestamp``
    (returned by recent nodes) or from `timestamps` (block number -> unix seconds).
    """
    result = DecodeResult()
    for log in logs:
        if log.get("removed"):
            continue
        contract = str(log["address"]).lower()
        standard = standards.get(contract)
        if standard is None:
            continue
        block_number = _int(log["blockNumber"])
        if block_number < start_blocks.get(contract, 0):
            continue
        topics = log["topics"]
        if not topics:
            result.skipped += 1
            continue
        stamp = log.get("blockTimestamp")
        timestamp = _int(stamp) if stamp is not None else (timestamps or {}).get(block_number)
        base = {
            "chain_id": chain_id,
            "contract": contract,
            "block_number": block_number,
            "block_hash": str(log["blockHash"]).lower(),
            "log_index": _int(log["logIndex"]),
            "tx_hash": str(log["transactionHash"]).lower(),
            "timestamp": timestamp,
        }
        topic0 = str(topics[0]).lower()
        try:
            if standard == "ERC721":
                _decode_721(topic0, topics, base, result)
            else:
                _decode_1155(topic0, topics, str(log.get("data") or "0x"), base, result)
        except (DecodingError, ValueError, IndexError):
            result.skipped += 1
    return result


def _decode_721(topic0: str, topics: list[str], base: dict[str, Any], result: DecodeResult) -> None:
    if topic0 != TRANSFER_TOPIC:
        return
    if len(topics) != 4:  # an ERC-20 Transfer (value in data) has three topics
        result.skipped += 1
        return
    result.transfers.append(
        Transfer(
            standard="ERC721", token_id=int(topics[3], 16), from_addr=_address(topics[1]),
            to_addr=_address(topics[2]), quantity=1, batch_index=0, event_type="Transfer", **base,
        )
    )


def _decode_1155(topic0: str, topics: list[str], data: str, base: dict[str, Any], result: DecodeResult) -> None:
    if topic0 not in (TRANSFER_SINGLE_TOPIC, TRANSFER_BATCH_TOPIC):
        return
    if len(topics) != 4:
        result.skipped += 1
        return
    sender, recipient = _address(topics[2]), _address(topics[3])
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data)
    if topic0 == TRANSFER_SINGLE_TOPIC:
        token_id, amount = abi_decode(["uint256", "uint256"], raw)
        pairs: list[tuple[int, int]] = [(token_id, amount)]
        kind = "TransferSingle"
    else:
        ids, amounts = abi_decode(["uint256[]", "uint256[]"], raw)
        if len(ids) != len(amounts):
            result.skipped += 1
            return
        pairs = list(zip(ids, amounts, strict=True))
        kind = "TransferBatch"
    for index, (token_id, amount) in enumerate(pairs):
        result.transfers.append(
            Transfer(
                standard="ERC1155", token_id=int(token_id), from_addr=sender, to_addr=recipient,
                quantity=int(amount), batch_index=index, event_type=kind, **base,
            )
        )

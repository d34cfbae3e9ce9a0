"""Reading one consistent batch of a chain: headers, logs, and the checks that tie them together.

A batch [a, b] is read on one endpoint as: the headers of a and b (one JSON-RPC batch), then
``eth_getLogs`` for the tracked contracts and transfer topics, then (near the head, where reorgs happen,
or when the node does not return ``blockTimestamp``) the headers of every block holding a log plus b
again, in one JSON-RPC batch. The checks:

- a's parent hash must be the hash we checkpointed for a-1, else :class:`ReorgDetected`;
- every log's block hash must be the hash of the header at its height, and b's hash must not change
  while we read, else :class:`ChainMoved` (the node switched forks under us: read the batch again).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from mintplane.common.jsonrpc import EndpointFailure, RangeTooLarge
from mintplane.indexer.decode import TOPICS

HEADER_CHUNK = 500


class Client(Protocol):
    async def call(self, method: str, params: Sequence[Any]) -> Any: ...

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]: ...


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


class ReorgDetected(Exception):
    def __init__(self, block: int, expected_parent: str, actual_parent: str) -> None:
        super().__init__(f"block {block}: parent {actual_parent} != checkpointed {expected_parent}")
        self.block = block


class ChainMoved(Exception):
    """The node's view changed while a batch was read; the batch must be read again."""


@dataclass
class Batch:
    first: int
    last: int
    first_header: Header
    last_header: Header
    logs: list[dict[str, Any]]
    timestamps: dict[int, int] = field(default_factory=dict)

    @property
    def blocks(self) -> int:
        return self.last - self.first + 1


def parse_header(raw: Any, number: int) -> Header:
    if not isinstance(raw, dict) or not raw.get("hash"):
        # A node that does not have the block yet (behind the head we were told) is an endpoint problem.
        raise EndpointFailure(f"block {number} not available on this endpoint")
    return Header(
        number=int(raw["number"], 16), hash=str(raw["hash"]).lower(),
        parent_hash=str(raw["parentHash"]).lower(), timestamp=int(raw["timestamp"], 16),
    )


async def block_number(client: Client) -> int:
    return int(await client.call("eth_blockNumber", []), 16)


async def chain_id(client: Client) -> int:
    return int(await client.call("eth_chainId", []), 16)


async def headers(client: Client, numbers: Iterable[int], *, missing_ok: bool = False) -> dict[int, Header]:
    """Headers by number, in JSON-RPC batches of HEADER_CHUNK.

    With `missing_ok`, blocks the node does not have (a chain that got shorter) are left out instead of
    counting as an endpoint failure.
    """
    wanted = sorted(set(numbers))
    found: dict[int, Header] = {}
    for start in range(0, len(wanted), HEADER_CHUNK):
        chunk = wanted[start : start + HEADER_CHUNK]
        raws = await client.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
        for number, raw in zip(chunk, raws, strict=True):
            if raw is None and missing_ok:
                continue
            found[number] = parse_header(raw, number)
    return found


async def read_batch(
    client: Client,
    first: int,
    last: int,
    addresses: Sequence[str],
    *,
    expected_parent: str | None,
    verify_logs: bool,
) -> Batch:
    ends = await headers(client, {first, last})
    first_header, last_header = ends[first], ends[last]
    if expected_parent is not None and first_header.parent_hash != expected_parent:
        raise ReorgDetected(first, expected_parent, first_header.parent_hash)
    logs: list[dict[str, Any]] = []
    if addresses:
        try:
            logs = await client.call(
                "eth_getLogs",
                [{"fromBlock": hex(first), "toBlock": hex(last), "address": list(addresses), "topics": [list(TOPICS)]}],
            )
        except EndpointFailure as exc:
            if exc.timed_out and last > first:  # too much work for one request: a smaller range, same endpoint
                raise RangeTooLarge(0, f"eth_getLogs over {last - first + 1} blocks {exc}") from None
            raise
        if not isinstance(logs, list):
            raise EndpointFailure("eth_getLogs did not return a list")
    batch = Batch(first, last, first_header, last_header, logs, {first: first_header.timestamp,
                                                                 last: last_header.timestamp})
    missing_time = any(log.get("blockTimestamp") is None for log in logs)
    if verify_logs or missing_time:
        log_blocks = {int(log["blockNumber"], 16) for log in logs}
        check = await headers(client, log_blocks | {last})
        if check[last].hash != last_header.hash:
            raise ChainMoved(f"block {last} changed while reading the batch")
        batch.timestamps.update({n: h.timestamp for n, h in check.items()})
        _check_log_hashes(logs, check)
    else:
        _check_log_hashes(logs, ends)
    for log in logs:
        number = int(log["blockNumber"], 16)
        if not first <= number <= last:
            raise EndpointFailure(f"eth_getLogs returned a log of block {number} outside [{first}, {last}]")
    return batch


def _check_log_hashes(logs: Iterable[dict[str, Any]], known: dict[int, Header]) -> None:
    for log in logs:
        header = known.get(int(log["blockNumber"], 16))
        if header is not None and str(log["blockHash"]).lower() != header.hash:
            raise ChainMoved(f"log of block {header.number} has hash {log['blockHash']}, header {header.hash}")


def split_batch(batch: Batch, target_logs: int) -> list[Batch]:
    """Cut a batch that returned far more logs than wanted into parts of about `target_logs` logs.

    Cuts fall on block boundaries after a block with logs, so each part's last block is known from its
    logs (hash and timestamp; the parent hash is not needed there, it is only the commit point). One
    eth_getLogs over a dense range is cheaper than many, but a commit of 200,000 events would hold the
    whole pipeline up: parts let MongoDB, PostgreSQL and the broker work on different parts at once.
    """
    if len(batch.logs) <= target_logs * 2:
        return [batch]
    parts: list[Batch] = []
    first, start = batch.first, 0
    logs = batch.logs
    while start < len(logs):
        cut = min(len(logs), start + target_logs)
        number = int(logs[cut - 1]["blockNumber"], 16)
        while cut < len(logs) and int(logs[cut]["blockNumber"], 16) == number:
            cut += 1  # never split a block
        if cut >= len(logs) or number >= batch.last:
            break
        tail = logs[cut - 1]
        stamp = tail.get("blockTimestamp")
        header = Header(number, str(tail["blockHash"]).lower(), "",
                        int(stamp, 16) if stamp is not None else batch.timestamps.get(number, 0))
        parts.append(replace(batch, first=first, last=number, last_header=header, logs=logs[start:cut]))
        first, start = number + 1, cut
    parts.append(replace(batch, first=first, logs=logs[start:]))
    return parts

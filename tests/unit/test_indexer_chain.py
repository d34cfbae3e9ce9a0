"""Reading a batch consistently: parent check, log/header agreement, timeouts that mean "smaller range"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from mintplane.common.jsonrpc import EndpointFailure, RangeTooLarge
from mintplane.indexer.chain import ChainMoved, ReorgDetected, read_batch

pytestmark = pytest.mark.unit


def _hash(n: int, fork: str = "a") -> str:
    return "0x" + (fork * 2 + f"{n:062x}")[-64:]


class FakeNode:
    """Blocks 0..head on fork `a`; `switch_after_logs` swaps blocks >= 5 to fork `b` once logs were served."""

    def __init__(self, head: int = 20, *, log_blocks: Sequence[int] = (5, 7), timeout: bool = False,
                 switch_after_logs: bool = False) -> None:
        self.head, self.fork_from, self.fork = head, 5, "a"
        self.log_blocks, self.timeout, self.switch = log_blocks, timeout, switch_after_logs

    def _block(self, n: int) -> dict[str, Any] | None:
        if n > self.head:
            return None
        fork = self.fork if n >= self.fork_from else "a"
        parent_fork = self.fork if n - 1 >= self.fork_from else "a"
        return {"number": hex(n), "hash": _hash(n, fork), "parentHash": _hash(n - 1, parent_fork),
                "timestamp": hex(1000 + n)}

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        return [self._block(int(params[0], 16)) for _, params in calls]

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        assert method == "eth_getLogs"
        if self.timeout:
            raise EndpointFailure("timed out after 1s", timed_out=True)
        first, last = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        logs = [{"blockNumber": hex(n), "blockHash": _hash(n, self.fork if n >= self.fork_from else "a")}
                for n in self.log_blocks if first <= n <= last]
        if self.switch:
            self.fork = "b"
        return logs


async def test_a_consistent_batch_carries_timestamps_of_its_log_blocks() -> None:
    batch = await read_batch(FakeNode(), 3, 10, ["0x" + "aa" * 20], expected_parent=_hash(2), verify_logs=True)
    assert (batch.first, batch.last, batch.blocks, len(batch.logs)) == (3, 10, 8, 2)
    assert batch.last_header.hash == _hash(10) and batch.timestamps[7] == 1007


async def test_a_parent_that_differs_from_the_checkpoint_is_a_reorg() -> None:
    with pytest.raises(ReorgDetected) as error:
        await read_batch(FakeNode(), 3, 10, ["0x" + "aa" * 20], expected_parent=_hash(2, "x"), verify_logs=False)
    assert error.value.block == 3


async def test_a_fork_switch_while_reading_means_read_again() -> None:
    with pytest.raises(ChainMoved):
        await read_batch(FakeNode(switch_after_logs=True), 3, 10, ["0x" + "aa" * 20], expected_parent=_hash(2),
                         verify_logs=True)


async def test_timeouts_split_the_range_but_not_a_single_block() -> None:
    with pytest.raises(RangeTooLarge):
        await read_batch(FakeNode(timeout=True), 3, 10, ["0x" + "aa" * 20], expected_parent=None, verify_logs=False)
    with pytest.raises(EndpointFailure):
        await read_batch(FakeNode(timeout=True), 3, 3, ["0x" + "aa" * 20], expected_parent=None, verify_logs=False)


async def test_a_node_behind_the_requested_range_is_an_endpoint_failure() -> None:
    with pytest.raises(EndpointFailure, match="not available"):
        await read_batch(FakeNode(head=8), 3, 10, ["0x" + "aa" * 20], expected_parent=None, verify_logs=False)

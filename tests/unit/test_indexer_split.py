"""Raw-event documents per (block, contract) and the cutting of an oversized read into parts."""

from __future__ import annotations

import itertools

import pytest

from mintplane.indexer.chain import Batch, Header, split_batch
from mintplane.indexer.documents import raw_documents, raw_event_ids
from mintplane.indexer.events import Transfer

pytestmark = pytest.mark.unit

A, B = "0x" + "aa" * 20, "0x" + "bb" * 20


def _transfer(block: int, log: int, contract: str = A, batch_index: int = 0) -> Transfer:
    return Transfer("eip155:1", contract, "ERC721", log, "0x" + "00" * 20, "0x" + "11" * 20, 1, block,
                    f"0x{block:064x}", log, batch_index, "0x" + "ef" * 32, 1_700_000_000, "Transfer")


def test_raw_documents_group_by_block_and_contract_and_keep_every_event() -> None:
    transfers = [_transfer(5, 0), _transfer(5, 1, B), _transfer(5, 2), _transfer(6, 0), _transfer(6, 0, batch_index=1)]
    docs = raw_documents(transfers)
    assert [d["_id"] for d in docs] == [f"eip155:1:0x{5:064x}:{A}", f"eip155:1:0x{5:064x}:{B}",
                                        f"eip155:1:0x{6:064x}:{A}"]
    assert raw_event_ids(docs) == [t.event_id for t in sorted(transfers, key=lambda t: (t.block_number, t.contract))]
    assert raw_documents(transfers) == raw_documents(list(transfers))  # a rewrite is the same documents


def _log(block: int, index: int) -> dict[str, str]:
    return {"blockNumber": hex(block), "blockHash": f"0x{block:064x}", "logIndex": hex(index),
            "blockTimestamp": hex(1_700_000_000 + block)}


def _batch(first: int, last: int, per_block: dict[int, int]) -> Batch:
    logs = [_log(b, i) for b in range(first, last + 1) for i in range(per_block.get(b, 0))]
    return Batch(first, last, Header(first, "0xfirst", "0xparent", 0), Header(last, "0xlast", "0xp", 0), logs)


def test_a_small_read_stays_one_batch() -> None:
    batch = _batch(10, 20, {12: 3})
    assert split_batch(batch, 5) == [batch]


def test_a_dense_read_is_cut_at_block_boundaries_and_ends_on_the_read_s_last_block() -> None:
    batch = _batch(10, 30, {10: 4, 11: 4, 12: 4, 15: 4, 16: 4, 20: 4})
    parts = split_batch(batch, 5)
    assert [(p.first, p.last) for p in parts] == [(10, 11), (12, 15), (16, 30)]
    assert [log for p in parts for log in p.logs] == batch.logs  # nothing lost, nothing twice, in order
    for previous, part in itertools.pairwise(parts):
        assert part.first == previous.last + 1
    assert parts[-1].last_header == batch.last_header
    assert all(p.last_header.hash == f"0x{p.last:064x}" for p in parts[:-1])
    assert all({int(log["blockNumber"], 16) for log in p.logs} <= set(range(p.first, p.last + 1)) for p in parts)

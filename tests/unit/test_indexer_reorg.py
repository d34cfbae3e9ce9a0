"""Finding the common ancestor from stored hashes and the canonical chain."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mintplane.indexer.reorg import find_common_ancestor

pytestmark = pytest.mark.unit


def _chains(stored: dict[int, str], canonical: dict[int, str]):  # type: ignore[no-untyped-def]
    calls: list[list[int]] = []

    async def stored_fn(at_or_below: int, above: int, limit: int) -> list[tuple[int, str]]:
        rows = sorted(((n, h) for n, h in stored.items() if above < n <= at_or_below), reverse=True)
        return rows[:limit]

    async def canonical_fn(numbers: Sequence[int]) -> dict[int, str]:
        calls.append(list(numbers))
        return {n: canonical[n] for n in numbers if n in canonical}

    return stored_fn, canonical_fn, calls


async def test_walks_back_to_the_newest_stored_block_still_canonical() -> None:
    stored = {90: "a90", 95: "a95", 98: "x98", 99: "x99"}
    canonical = {n: f"a{n}" for n in range(0, 100)} | {98: "b98", 99: "b99", 100: "b100"}
    stored_fn, canonical_fn, _ = _chains(stored, canonical)
    assert await find_common_ancestor(last=100, last_hash="x100", lower_bound=0, max_depth=1000,
                                      stored=stored_fn, canonical=canonical_fn) == (95, "a95")


async def test_a_shorter_chain_is_handled_like_a_reorg() -> None:
    stored = {10: "a10", 12: "a12"}
    canonical = {n: f"a{n}" for n in range(0, 11)}  # blocks 11+ are gone (rollback)
    stored_fn, canonical_fn, _ = _chains(stored, canonical)
    assert await find_common_ancestor(last=13, last_hash="a13", lower_bound=0, max_depth=1000,
                                      stored=stored_fn, canonical=canonical_fn) == (10, "a10")


async def test_pages_through_many_orphans_and_stops_at_the_depth_limit() -> None:
    stored = {n: f"x{n}" for n in range(1, 200)}
    canonical = {n: f"a{n}" for n in range(0, 300)}
    stored_fn, canonical_fn, calls = _chains(stored, canonical)
    block, block_hash = await find_common_ancestor(last=199, last_hash="x199", lower_bound=0, max_depth=150,
                                                   stored=stored_fn, canonical=canonical_fn, page=64)
    assert (block, block_hash) == (49, "a49")  # nothing stored is canonical: roll back to the depth limit
    assert len(calls) == 4 and all(len(c) <= 65 for c in calls)


async def test_never_goes_below_the_scopes_first_block() -> None:
    stored_fn, canonical_fn, _ = _chains({}, {n: f"a{n}" for n in range(0, 50)})
    assert await find_common_ancestor(last=20, last_hash="x20", lower_bound=15, max_depth=1000,
                                      stored=stored_fn, canonical=canonical_fn) == (15, "a15")

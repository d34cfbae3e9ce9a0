"""Finding where our stored chain and the canonical chain agree again after a reorg.

The hashes we know are the checkpoint's and those of blocks holding stored transfers (their rows carry
the block hash). Walking them newest first, the first one that still is canonical is a common block;
every stored block above it was orphaned, and blocks in between hold nothing of ours, so rolling back to
it undoes exactly the orphaned rows (re-reading the empty blocks above it is harmless). If nothing we
stored within `max_depth` blocks is canonical, we roll back to that depth limit (or the scope's first
block): deeper reorgs than that are treated as impossible, like every indexer must.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

StoredHashes = Callable[[int, int, int], Awaitable[list[tuple[int, str]]]]
"""(at_or_below, above, limit) -> [(block, hash)] of stored blocks, newest first."""
CanonicalHashes = Callable[[Sequence[int]], Awaitable[dict[int, str]]]


async def find_common_ancestor(
    *, last: int, last_hash: str | None, lower_bound: int, max_depth: int,
    stored: StoredHashes, canonical: CanonicalHashes, page: int = 64,
) -> tuple[int, str | None]:
    """Returns (block, canonical hash) to roll back to; the hash is None only for block 0's parent."""
    floor = max(lower_bound, last - max_depth, 0)
    top = last
    include_checkpoint = last_hash is not None
    while top > floor:
        rows = await stored(top, floor, page)
        if include_checkpoint:
            rows = [(last, str(last_hash))] + [row for row in rows if row[0] != last]
            include_checkpoint = False
        if not rows:
            break
        found = await canonical([number for number, _ in rows])
        for number, stored_hash in rows:
            if found.get(number) == stored_hash:
                return number, stored_hash
        top = rows[-1][0] - 1
        if len(rows) < page:
            break
    found = await canonical([floor])
    return floor, found.get(floor)

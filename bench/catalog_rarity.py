"""The full rarity recompute of a 100,000-token collection with 1,000,000 trait links: timed and explained.

    .venv/bin/python bench/catalog_rarity.py                   # seeds, measures, deletes the seeded collection
    .venv/bin/python bench/catalog_rarity.py --tokens 20000 --keep
    .venv/bin/python bench/catalog_rarity.py --collection <id printed by a --keep run>

Seeds a collection with :func:`mintplane.catalog.synthetic.seed_collection` (COPY; 9 string traits and a
numeric "Level" per token), then times, with the seconds of each statement:

1. the first recompute (it also creates the trait-count trait and its 100,000 links),
2. a recompute with nothing changed,
3. a recompute after one token's traits changed through ``replace_token_traits`` (the incremental case:
   every score depends on collection-wide counts, so it is the same set-based pass),
4. ``explain()`` of a page of 50 tokens,

and prints EXPLAIN (ANALYZE, BUFFERS) of the scoring statement, the slowest, after one more token changed,
in a rolled-back transaction. Numbers, not asserts: the goal is the full recompute under 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from uuid import UUID

from mintplane.catalog import rarity_sql
from mintplane.catalog.rarity import RarityResult, explain, recompute
from mintplane.catalog.synthetic import seed_collection
from mintplane.catalog.trait_store import NO_JIT, Connection, lock_collection, replace_token_traits
from mintplane.catalog.traits import normalize_attributes
from mintplane.common.postgres import create_pool
from mintplane.common.settings import InfraSettings


def report(title: str, result: RarityResult | None) -> None:
    assert result is not None
    steps = ", ".join(f"{name} {seconds:.3f}" for name, seconds in result.steps)
    print(f"{title:<34} {result.seconds:7.3f} s  ({steps}); {result.tokens} tokens ranked, "
          f"{len(result.changed_tokens)} changed, entropy {float(result.entropy or 0):.6f}")


async def explain_score(conn: Connection, collection_id: UUID, token: UUID) -> str:
    """The scoring statement's plan after one token changed (every score and many ranks move), rolled back."""
    tx = conn.transaction()
    await tx.start()
    try:
        await lock_collection(conn, collection_id)
        await conn.execute(NO_JIT)
        await conn.execute(rarity_sql.WORK_MEM)
        changed, _ = normalize_attributes({"Trait B": f"another value nobody has {time.time_ns()}"})
        await replace_token_traits(conn, collection_id, {token: changed})
        meta = await conn.fetchval(rarity_sql.ENSURE_META_TRAIT, collection_id)
        await conn.execute(rarity_sql.SET_TRAIT_COUNTS, collection_id, meta)
        await conn.execute(rarity_sql.TIDY_AFTER_TRAIT_COUNTS, collection_id, meta)
        rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + rarity_sql.SCORE, collection_id)
    finally:
        await tx.rollback()
    return "\n".join(r[0] for r in rows)


async def main(args: argparse.Namespace) -> None:
    pool = await create_pool(InfraSettings(), application_name="mintplane-bench-rarity")
    if args.collection:
        collection_id = UUID(args.collection)
        print(f"reusing collection {collection_id}")
    else:
        started = time.perf_counter()
        seeded = await seed_collection(pool, tokens=args.tokens, unranked_share=0.0)
        collection_id = seeded.collection_id
        print(f"seeded {seeded.tokens} tokens, {seeded.links} trait links in {time.perf_counter() - started:.1f} s "
              f"(collection {collection_id})")
    try:
        async with pool.acquire() as conn:
            report("first full recompute", await recompute(conn, collection_id))
            await conn.execute("VACUUM ANALYZE catalog.token_trait_links")
            report("recompute, nothing changed", await recompute(conn, collection_id))
            token = await conn.fetchval(
                "SELECT id FROM catalog.tokens WHERE collection_id = $1 ORDER BY random() LIMIT 1", collection_id)
            # a random token (a --collection rerun must change something) gets values no other token has
            changed, _ = normalize_attributes({"Trait A": f"unique {time.time_ns()}", "Aura": "Glowing"})
            write = time.perf_counter()
            async with conn.transaction():
                await replace_token_traits(conn, collection_id, {token: changed})
            print(f"{'replace one token traits':<34} {time.perf_counter() - write:7.3f} s")
            report("recompute after one token changed", await recompute(conn, collection_id))
            page = [r["id"] for r in await conn.fetch(
                "SELECT id FROM catalog.tokens WHERE collection_id = $1 ORDER BY rarity_rank LIMIT 50",
                collection_id)]
            timings = []
            for _ in range(args.runs):
                at = time.perf_counter()
                explained = await explain(conn, page)
                timings.append(time.perf_counter() - at)
            timings.sort()
            print(f"{'explain() of 50 tokens':<34} p50 {timings[len(timings) // 2] * 1000:.1f} ms, "
                  f"p99 {timings[int(len(timings) * 0.99) - 1] * 1000:.1f} ms over {args.runs} runs "
                  f"({sum(map(len, explained.values()))} lines)")
            print("\nEXPLAIN (ANALYZE, BUFFERS) of the scoring statement:\n")
            print(await explain_score(conn, collection_id, page[-1]))
    finally:
        if not args.keep and not args.collection:
            await pool.execute("DELETE FROM catalog.collections WHERE id = $1", collection_id)
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50, help="explain() repetitions")
    parser.add_argument("--keep", action="store_true", help="leave the seeded collection in place")
    parser.add_argument("--collection", help="measure a collection kept by an earlier --keep run instead of seeding")
    asyncio.run(main(parser.parse_args()))

"""The catalog bench/gateway/run.py reads: 100,000 tokens, 1,000,000 trait links, an activity feed, real ranks.

    .venv/bin/python bench/gateway/seed.py                   # (re)seeds bench-gateway-100000
    .venv/bin/python bench/gateway/seed.py --drop            # deletes it

A thin layer over :func:`mintplane.catalog.synthetic.seed_collection` (the COPY-based generator the catalog
benches share: 9 string traits with Zipf-like value frequencies + a numeric "Level" per token, owners, mint
and transfer times) on a chain id of its own, so nothing another helper or test reads is touched. It adds
what the gateway's queries need beyond that: a stable slug (``bench-gateway-<tokens>``) to find the catalog
again with ``run.py --reuse``, and the collection's activity (a mint per token, a transfer for every token
that moved), also by COPY. Ranks come from the project's real recompute (:func:`mintplane.catalog.rarity.
recompute`), never from the generator's placeholders: :func:`full_recompute` clears every score first and
times the recompute of the whole collection.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from mintplane.catalog.rarity import RarityResult, recompute
from mintplane.catalog.synthetic import seed_collection
from mintplane.common.postgres import create_pool
from mintplane.common.settings import InfraSettings


@dataclass(frozen=True)
class BenchCatalog:
    collection_id: UUID
    slug: str
    chain_id: str
    contract: str
    tokens: int
    links: int
    activities: int


def slug_for(tokens: int) -> str:
    return f"bench-gateway-{tokens}"


async def drop(pool: asyncpg.Pool[Any], tokens: int) -> None:
    """Deletes the bench collection (tokens, traits, links, activities and stats cascade)."""
    await pool.execute("DELETE FROM catalog.collections WHERE slug = $1", slug_for(tokens))


async def find(pool: asyncpg.Pool[Any], tokens: int) -> BenchCatalog | None:
    """The bench collection of that size if a previous run left it complete, else None."""
    row = await pool.fetchrow(
        """SELECT c.id, c.slug, c.chain_id, c.contract_address,
                  (SELECT count(*) FROM catalog.tokens t WHERE t.collection_id = c.id) AS tokens,
                  (SELECT count(*) FROM catalog.activities a WHERE a.collection_id = c.id) AS activities
             FROM catalog.collections c WHERE c.slug = $1""", slug_for(tokens))
    if row is None or row["tokens"] != tokens or row["activities"] == 0:
        return None
    links = await pool.fetchval(
        """SELECT count(*) FROM catalog.token_trait_links l JOIN catalog.traits tr ON tr.id = l.trait_id
            WHERE tr.collection_id = $1""", row["id"])
    return BenchCatalog(row["id"], row["slug"], row["chain_id"], row["contract_address"], row["tokens"], links,
                        row["activities"])


async def _write_activities(conn: Any, collection_id: UUID) -> int:
    """A mint per token (to its first holder) and, for tokens that moved since, a transfer to the owner."""
    tokens = await conn.fetch(
        """SELECT id, token_number::bigint AS n, owner_address, minted_at, last_transfer_at
             FROM catalog.tokens WHERE collection_id = $1 ORDER BY token_number::bigint""", collection_id)
    owners = sorted({t["owner_address"] for t in tokens})
    rows = []
    for t in tokens:
        n = t["n"]
        moved = t["last_transfer_at"] > t["minted_at"]
        first_holder = owners[(n * 7919) % len(owners)] if moved else t["owner_address"]
        rows.append((t["id"], collection_id, "mint", None, first_holder, f"0x{n:064x}", t["minted_at"], n, 0))
        if moved:
            rows.append((t["id"], collection_id, "transfer", first_holder, t["owner_address"],
                         f"0x{n + 10**12:064x}", t["last_transfer_at"], n + 10**6, 0))
    await conn.copy_records_to_table(
        "activities", schema_name="catalog", records=rows,
        columns=["token_id", "collection_id", "type", "from_address", "to_address", "tx_hash", "timestamp",
                 "block_number", "log_index"])
    await conn.execute("ANALYZE catalog.activities")
    return len(rows)


async def seed(pool: asyncpg.Pool[Any], tokens: int) -> BenchCatalog:
    """Drops any earlier bench collection of that size and seeds a fresh one (ranks: see full_recompute)."""
    await drop(pool, tokens)
    seeded = await seed_collection(pool, tokens=tokens)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE catalog.collections SET slug = $2, name = $3 WHERE id = $1",
                           seeded.collection_id, slug_for(tokens), f"Gateway bench {tokens:,}")
        activities = await _write_activities(conn, seeded.collection_id)
    return BenchCatalog(seeded.collection_id, slug_for(tokens), seeded.chain_id, seeded.contract, seeded.tokens,
                        seeded.links, activities)


async def full_recompute(pool: asyncpg.Pool[Any], collection_id: UUID) -> tuple[RarityResult, RarityResult]:
    """Clears every score (and the trait-count trait), then times the real recompute twice.

    The first is the full recompute (every token's score, rank and trait-count link written); the second,
    with nothing changed, is what a debounced round costs when a collection was marked dirty for nothing.
    """
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("DELETE FROM catalog.traits WHERE collection_id = $1 AND is_meta", collection_id)
            await conn.execute("UPDATE catalog.tokens SET rarity_score = NULL, rarity_rank = NULL "
                               "WHERE collection_id = $1", collection_id)
            await conn.execute(
                """UPDATE catalog.trait_values v SET rarity_score = NULL FROM catalog.traits tr
                    WHERE tr.id = v.trait_id AND tr.collection_id = $1""", collection_id)
            await conn.execute("UPDATE catalog.traits SET null_rarity_score = NULL, null_occurrences = 0 "
                               "WHERE collection_id = $1", collection_id)
        await conn.execute("VACUUM ANALYZE catalog.tokens")
        first = await recompute(conn, collection_id)
        second = await recompute(conn, collection_id)
        for table in ("tokens", "token_trait_links", "trait_values", "traits"):
            await conn.execute(f"ANALYZE catalog.{table}")
    assert first is not None and second is not None
    return first, second


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--drop", action="store_true", help="delete the bench collection and stop")
    args = parser.parse_args()
    pool = await create_pool(InfraSettings(pg_pool_max=2), application_name="mintplane-bench-gateway-seed")
    try:
        if args.drop:
            await drop(pool, args.tokens)
            return
        started = time.perf_counter()
        catalog = await seed(pool, args.tokens)
        print(f"seeded {catalog.tokens:,} tokens, {catalog.links:,} trait links, {catalog.activities:,} activities "
              f"in {time.perf_counter() - started:.1f} s (chain {catalog.chain_id}, slug {catalog.slug})")
        first, second = await full_recompute(pool, catalog.collection_id)
        print(f"rarity recompute: full {first.seconds:.2f} s ({first.tokens:,} ranked), "
              f"unchanged {second.seconds:.2f} s")
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())

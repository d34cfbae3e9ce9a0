"""Synthetic catalog data for benchmarks and tests: collections, tokens, traits and ranks, written in bulk.

The read path's speed goals are stated at 100,000 tokens and 1,000,000 trait links; building that through
transfers and metadata fetches would take minutes, so :func:`seed_collection` writes the rows straight into
the catalog's tables with COPY, shaped like ingestion and the rarity recompute leave them (normalised names
and values, ``occurrences``, ranks with ties, some tokens unranked, owners, mint and transfer times).
:func:`write_traits` and :func:`set_ranks` give tokens that came in through real ingestion their traits and
ranks, so a test can state the exact data it then queries. Never used by the services themselves.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from mintplane.catalog.traits import normalize_text

TraitValue = str | Decimal
if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    Connection = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]
else:
    Connection = Any


@dataclass(frozen=True)
class SeededCollection:
    collection_id: UUID
    chain_id: str
    contract: str
    tokens: int
    links: int
    owners: list[str]


async def write_traits(conn: Connection, collection_id: UUID,
                       traits: Mapping[UUID, Mapping[str, TraitValue]]) -> int:
    """Gives tokens exactly these traits (name -> value; a Decimal makes a number trait). Returns links written.

    Trait rows, values with their ``occurrences`` and the links are written set-based (COPY for the links);
    the collection must not have traits yet.
    """
    names: dict[str, tuple[str, str]] = {}  # normalized -> (display name, value_type)
    counts: Counter[tuple[str, str]] = Counter()
    shown: dict[tuple[str, str], tuple[str, Decimal | None]] = {}
    for assigned in traits.values():
        for name, value in assigned.items():
            key = normalize_text(name)
            names.setdefault(key, (name, "number" if isinstance(value, Decimal) else "string"))
            text = format(value, "f") if isinstance(value, Decimal) else value
            vkey = (key, normalize_text(text))
            counts[vkey] += 1
            shown.setdefault(vkey, (text, value if isinstance(value, Decimal) else None))
    ordered = sorted(names)
    trait_rows = await conn.fetch(
        """INSERT INTO catalog.traits (collection_id, name, normalized_name, value_type, display_type, sort_order)
           SELECT $1, n.name, n.normalized_name, n.value_type,
                  CASE WHEN n.value_type = 'number' THEN 'number' END, n.ord::int
             FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY
                  AS n(name, normalized_name, value_type, ord)
           RETURNING id, normalized_name""",
        collection_id, [names[k][0] for k in ordered], ordered, [names[k][1] for k in ordered])
    trait_ids = {r["normalized_name"]: r["id"] for r in trait_rows}
    carriers = Counter(normalize_text(name) for assigned in traits.values() for name in assigned)
    await conn.execute(  # tokens lacking a trait carry its "null" value, as the rarity recompute counts it
        """UPDATE catalog.traits t SET null_occurrences = n.missing
             FROM unnest($1::uuid[], $2::int[]) AS n(id, missing) WHERE t.id = n.id""",
        [trait_ids[k] for k in ordered], [len(traits) - carriers[k] for k in ordered])
    value_keys = sorted(counts)
    value_rows = await conn.fetch(
        """INSERT INTO catalog.trait_values (trait_id, value_string, value_number, normalized_value, occurrences)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::text[], $5::int[])
           RETURNING id, trait_id, normalized_value""",
        [trait_ids[k[0]] for k in value_keys], [shown[k][0] for k in value_keys], [shown[k][1] for k in value_keys],
        [k[1] for k in value_keys], [counts[k] for k in value_keys])
    value_ids = {(r["trait_id"], r["normalized_value"]): r["id"] for r in value_rows}
    links = []
    for token_id, assigned in traits.items():
        for name, value in assigned.items():
            trait_id = trait_ids[normalize_text(name)]
            text = format(value, "f") if isinstance(value, Decimal) else value
            links.append((token_id, trait_id, value_ids[(trait_id, normalize_text(text))]))
    await conn.copy_records_to_table("token_trait_links", schema_name="catalog", records=links,
                                     columns=["token_id", "trait_id", "trait_value_id"])
    return len(links)


async def set_ranks(conn: Connection, ranks: Mapping[UUID, tuple[Decimal, int] | None]) -> None:
    """Sets tokens' rarity_score and rarity_rank as the recompute would (None: unranked)."""
    ids = list(ranks)
    await conn.execute(
        """UPDATE catalog.tokens t SET rarity_score = r.score, rarity_rank = r.rank
             FROM unnest($1::uuid[], $2::numeric[], $3::int[]) AS r(id, score, rank) WHERE t.id = r.id""",
        ids, [None if ranks[i] is None else ranks[i][0] for i in ids],  # type: ignore[index]
        [None if ranks[i] is None else ranks[i][1] for i in ids])  # type: ignore[index]


def _weights(count: int, rng: random.Random) -> list[float]:
    """Zipf-like value frequencies: a few common values, a long tail of rare ones."""
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(count)]
    rng.shuffle(weights)
    return weights


def ranks_with_ties(scores: Sequence[Decimal]) -> list[int]:
    """Competition ranks of scores, highest first (1, 2, 2, 4), as the recompute writes them."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranks = [0] * len(scores)
    for position, index in enumerate(order):
        previous = order[position - 1] if position else None
        ranks[index] = (ranks[previous] if previous is not None and scores[previous] == scores[index]
                        else position + 1)
    return ranks


async def seed_collection(pool: asyncpg.Pool[Any], *, tokens: int = 100_000, string_traits: int = 9,
                          seed: int = 7, owners: int = 2_000, unranked_share: float = 0.01) -> SeededCollection:
    """A fresh collection on a unique made-up chain with `tokens` tokens and string_traits + 1 links each.

    The extra trait is a numeric "Level" (1-100). A tenth of the tokens belong to ten whales, the rest spread
    over `owners` wallets. Scores are rounded so ties happen; ``unranked_share`` of
    the tokens have no rank (metadata not fetched). Delete with ``DELETE FROM catalog.collections WHERE
    chain_id = ...`` (rows cascade).
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible data, nothing secret
    chain_id = f"eip155:{3_000_000 + rng.randrange(90_000_000)}{uuid.uuid4().int % 1000}"
    contract = "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    wallets = ["0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8] for _ in range(owners)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with pool.acquire() as conn, conn.transaction():
        collection_id = await conn.fetchval(
            """INSERT INTO catalog.collections (slug, name, chain_id, contract_address, collection_type, status,
                                                registration, live_at)
               VALUES ($1, $2, $3, $4, 'ERC721', 'live', 'registered', now()) RETURNING id""",
            f"bench-{uuid.uuid4().hex[:12]}", f"Bench {tokens}", chain_id, contract)
        token_ids = [uuid.uuid4() for _ in range(tokens)]
        rows = []
        for n, token_id in enumerate(token_ids, start=1):
            minted = start + timedelta(seconds=12 * n)
            moved = minted + timedelta(seconds=rng.randrange(0, 86_400 * 30)) if rng.random() < 0.6 else minted
            holder = wallets[rng.randrange(10) if rng.random() < 0.1 else rng.randrange(owners)]
            rows.append((token_id, collection_id, chain_id, contract, str(n), "ERC721", f"Bench #{n}", holder, False,
                         minted, moved, "ok"))
        await conn.copy_records_to_table(
            "tokens", schema_name="catalog", records=rows,
            columns=["id", "collection_id", "chain_id", "contract_address", "token_number", "token_standard", "name",
                     "owner_address", "burned", "minted_at", "last_transfer_at", "metadata_status"])
        specs = [(f"Trait {chr(65 + i)}", [f"value {chr(65 + i)}{j}" for j in range(5 + 6 * i)])
                 for i in range(string_traits)]
        weights = [_weights(len(values), rng) for _, values in specs]
        assigned: dict[UUID, dict[str, TraitValue]] = {}
        for token_id in token_ids:
            traits: dict[str, TraitValue] = {name: rng.choices(values, w)[0]
                                             for (name, values), w in zip(specs, weights, strict=True)}
            traits["Level"] = Decimal(rng.randint(1, 100))
            assigned[token_id] = traits
        links = await write_traits(conn, collection_id, assigned)
        scores = [Decimal(rng.randint(1000, 60_000)) / 1000 for _ in token_ids]
        ranks = ranks_with_ties(scores)
        await set_ranks(conn, {token_id: (None if rng.random() < unranked_share else (scores[i], ranks[i]))
                               for i, token_id in enumerate(token_ids)})
        await conn.execute(
            """INSERT INTO catalog.collection_stats (collection_id, items_count, owners_count, metadata_ok)
               SELECT $1, count(*), count(DISTINCT owner_address), count(*) FROM catalog.tokens WHERE collection_id = $1
               ON CONFLICT (collection_id) DO UPDATE SET items_count = excluded.items_count,
                   owners_count = excluded.owners_count, metadata_ok = excluded.metadata_ok""", collection_id)
    async with pool.acquire() as conn:
        # what autovacuum does soon after a bulk load: statistics, and the visibility map index-only scans need
        for table in ("tokens", "token_trait_links", "trait_values", "traits", "collection_stats"):
            await conn.execute(f"VACUUM ANALYZE catalog.{table}")
    return SeededCollection(collection_id, chain_id, contract, tokens, links, wallets)

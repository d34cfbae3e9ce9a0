"""Storing the normalised traits of many tokens of one collection at once: five set-based statements.

``replace_token_traits`` runs inside the caller's transaction (the metadata worker's batch). Whatever the
number of tokens it takes: one lock, one upsert of the collection's trait names, one of their values, one
statement that diffs the tokens' links against what they should be (deleting and inserting only what
changed), and one that recounts ``occurrences`` of exactly the values whose links changed (dropping values no
token carries any more) and marks the collection's rarity dirty for the :class:`~mintplane.catalog.rarity.
RarityWorker`.

Locking: the statements hold the collection's rarity lock (``pg_advisory_xact_lock``, the same one the
rarity recompute takes) until the caller commits, so recounts are exact under concurrent workers and a
recompute never reads half a batch, nor clears a dirty flag a concurrent batch just set. Callers should
call this before they update the same tokens' rows in their transaction (a recompute holding the lock writes
those rows too), and, for several collections in one transaction, in collection-id order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from mintplane.catalog.traits import NormalizedTrait

if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    Connection = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]
else:
    Connection = Any

# The per-collection lock shared by trait writers and the rarity recompute; $1 is the collection id.
LOCK_COLLECTION = "SELECT pg_advisory_xact_lock(hashtextextended('mintplane.catalog.rarity:' || $1::uuid::text, 0))"
# unnest() row estimates make these statements look costly enough for JIT, whose compile time (~0.7 s a
# statement) dwarfs the work; the setting lasts until the end of the transaction.
NO_JIT = "SET LOCAL jit = off"

# New names only; sort_order continues after the collection's last one, in first-seen order.
UPSERT_TRAITS = """
INSERT INTO catalog.traits (collection_id, name, normalized_name, value_type, display_type, sort_order)
SELECT $1, n.name, n.normalized_name, n.value_type, n.display_type,
       coalesce((SELECT max(sort_order) FROM catalog.traits WHERE collection_id = $1), -1) + n.ord
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY
       AS n(name, normalized_name, value_type, display_type, ord)
 WHERE NOT EXISTS (SELECT 1 FROM catalog.traits t WHERE t.collection_id = $1 AND t.normalized_name = n.normalized_name)
 ORDER BY n.ord
ON CONFLICT (collection_id, normalized_name) DO NOTHING
"""

UPSERT_VALUES = """
INSERT INTO catalog.trait_values (trait_id, value_string, value_number, normalized_value)
SELECT t.id, v.value_string, v.value_number, v.normalized_value
  FROM unnest($2::text[], $3::text[], $4::text[], $5::numeric[])
       AS v(normalized_name, value_string, normalized_value, value_number)
  JOIN catalog.traits t ON t.collection_id = $1 AND t.normalized_name = v.normalized_name
 WHERE NOT EXISTS (SELECT 1 FROM catalog.trait_values x WHERE x.trait_id = t.id
                                                         AND x.normalized_value = v.normalized_value)
ON CONFLICT (trait_id, normalized_value) DO NOTHING
"""

# The tokens' non-meta links become exactly the given ones; returns the values whose links changed. (The
# trait-count trait's links belong to the rarity recompute.)
REPLACE_LINKS = """
WITH wanted AS (
    SELECT n.token_id, t.id AS trait_id, tv.id AS trait_value_id
      FROM unnest($2::uuid[], $3::text[], $4::text[]) AS n(token_id, normalized_name, normalized_value)
      JOIN catalog.tokens tk ON tk.id = n.token_id AND tk.collection_id = $1
      JOIN catalog.traits t ON t.collection_id = $1 AND t.normalized_name = n.normalized_name
      JOIN catalog.trait_values tv ON tv.trait_id = t.id AND tv.normalized_value = n.normalized_value
),
gone AS (
    DELETE FROM catalog.token_trait_links l
     USING catalog.traits t
     WHERE l.token_id = ANY($5::uuid[]) AND t.id = l.trait_id AND NOT t.is_meta
       AND (l.token_id, l.trait_id, l.trait_value_id) NOT IN (SELECT token_id, trait_id, trait_value_id FROM wanted)
    RETURNING l.trait_value_id
),
added AS (
    INSERT INTO catalog.token_trait_links (token_id, trait_id, trait_value_id)
    SELECT token_id, trait_id, trait_value_id FROM wanted
    ON CONFLICT DO NOTHING
    RETURNING trait_value_id
)
SELECT array_agg(DISTINCT trait_value_id) AS touched
  FROM (SELECT trait_value_id FROM gone UNION ALL SELECT trait_value_id FROM added) AS changed
"""

# Exact occurrences of the touched values (values no token carries any more go), and the collection is dirty.
RECOUNT_AND_MARK = """
WITH counts AS (
    SELECT v.id, (SELECT count(*) FROM catalog.token_trait_links l WHERE l.trait_value_id = v.id) AS n
      FROM unnest($2::uuid[]) AS v(id)
),
dropped AS (
    DELETE FROM catalog.trait_values tv USING counts c WHERE tv.id = c.id AND c.n = 0
),
recounted AS (
    UPDATE catalog.trait_values tv SET occurrences = c.n
      FROM counts c
     WHERE tv.id = c.id AND c.n > 0 AND tv.occurrences IS DISTINCT FROM c.n
)
INSERT INTO catalog.collection_stats (collection_id, rarity_dirty) VALUES ($1, true)
ON CONFLICT (collection_id) DO UPDATE SET rarity_dirty = true
"""


async def lock_collection(conn: Connection, collection_id: UUID) -> None:
    """Take the collection's trait/rarity lock until the end of the current transaction."""
    await conn.execute(LOCK_COLLECTION, collection_id)


async def replace_token_traits(conn: Connection, collection_id: UUID,
                               traits_by_token: Mapping[UUID, Sequence[NormalizedTrait]]) -> None:
    """Make the given tokens' traits exactly these (a token mapped to nothing loses all its traits).

    Must run inside a transaction. Names and values new to the collection are added, in first-seen order;
    a name or value already known keeps its first display text and type. Tokens not in ``collection_id``
    are ignored.
    """
    if not traits_by_token:
        return
    await lock_collection(conn, collection_id)
    await conn.execute(NO_JIT)
    names: dict[str, NormalizedTrait] = {}
    values: dict[tuple[str, str], NormalizedTrait] = {}
    link_tokens: list[UUID] = []
    link_names: list[str] = []
    link_values: list[str] = []
    for token_id, traits in traits_by_token.items():
        for trait in traits:
            names.setdefault(trait.normalized_name, trait)
            values.setdefault((trait.normalized_name, trait.normalized_value), trait)
            link_tokens.append(token_id)
            link_names.append(trait.normalized_name)
            link_values.append(trait.normalized_value)
    if names:
        firsts = list(names.values())
        await conn.execute(UPSERT_TRAITS, collection_id, [t.name for t in firsts],
                           [t.normalized_name for t in firsts], [t.value_type for t in firsts],
                           [t.display_type for t in firsts])
        distinct: list[NormalizedTrait] = list(values.values())
        numbers: list[Decimal | None] = [t.value_number for t in distinct]
        await conn.execute(UPSERT_VALUES, collection_id, [t.normalized_name for t in distinct],
                           [t.value_string for t in distinct], [t.normalized_value for t in distinct], numbers)
    touched = await conn.fetchval(REPLACE_LINKS, collection_id, link_tokens, link_names, link_values,
                                  list(traits_by_token))
    await conn.execute(RECOUNT_AND_MARK, collection_id, touched or [])

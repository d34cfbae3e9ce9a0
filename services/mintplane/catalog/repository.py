"""The catalog's PostgreSQL (schema ``catalog``): ingestion of indexer events, collections, tokens, stats.

Ingestion is one transaction per batch of messages: lock the events' ledger rows, decide in Python
(:mod:`mintplane.catalog.ingest`), then a fixed number of set-based statements whatever the batch size:
discover unknown collections, ensure token rows, insert and delete activities, store the ledger, and
recompute the touched tokens (owner by chain position) and the touched collections' stats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from mintplane.catalog import ingestion_sql as sql
from mintplane.catalog import rarity
from mintplane.catalog.ingest import Event, EventState, decide, group
from mintplane.catalog.metadata import store as metadata_store

_COLLECTION_COLUMNS = """id, slug, name, description, chain_id, contract_address, creator, owner, collection_type,
    max_supply, total_supply, royalty_percentage, mint_price, floor_price, volume_traded, is_verified, created_at,
    status, updated_at, registration, deploy_block, live_at"""


@dataclass(frozen=True)
class IngestResult:
    applied: int  # activities inserted
    undone: int  # activities deleted by retractions
    unchanged: int  # duplicates and stale messages
    collections: int  # collections whose stats were recomputed
    # What the transaction changed, for the change event (catalog/changes.py).
    collection_ids: tuple[UUID, ...] = ()
    token_ids: tuple[UUID, ...] = ()


@dataclass(frozen=True)
class NewCollection:
    chain_id: str
    contract: str
    standard: str
    name: str
    slug: str
    description: str | None
    deploy_block: int | None
    creator: str | None
    owner: str | None


class SlugTaken(Exception):
    pass


class CatalogRepository:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    # ------------------------------------------------------------------------------------------ ingestion

    async def ingest(self, events: Sequence[Event]) -> IngestResult:
        grouped = group(events)
        ids = sorted(grouped)  # a stable lock order: concurrent consumers cannot deadlock on the ledger
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(sql.LOCK_STATES, ids)
            stored = {r["event_id"]: EventState(r["epoch"], r["applied"]) for r in rows}
            decisions = decide(stored, grouped)
            inserts = [d.insert for d in decisions if d.insert is not None]
            deletes = [d.event_id for d in decisions if d.delete]
            touched_tokens: set[UUID] = set()
            touched_collections: set[UUID] = set()
            if inserts:
                tokens = await self._ensure_tokens(conn, inserts, touched_collections)
                await conn.execute(sql.INSERT_ACTIVITIES, *_activity_columns(inserts, tokens))
                touched_tokens.update(token for token, _ in tokens.values())
            if deletes:
                for row in await conn.fetch(sql.DELETE_ACTIVITIES, deletes):
                    touched_tokens.add(row["token_id"])
                    if row["collection_id"] is not None:
                        touched_collections.add(row["collection_id"])
            changed = [d for d in decisions if d.changed]
            if changed:
                await conn.execute(sql.SAVE_STATES, [d.event_id for d in changed], [d.state.epoch for d in changed],
                                   [d.state.applied for d in changed])
            if touched_tokens:
                token_ids = sorted(touched_tokens)
                await conn.execute(sql.RECOMPUTE_TOKENS, token_ids)
                await conn.execute(sql.DROP_EMPTY_TOKENS, token_ids)
            if touched_collections:
                await conn.execute(sql.RECOMPUTE_STATS, sorted(touched_collections))
                # new tokens are metadata-pending, dropped ones leave their counts: recount under the stats
                # rows RECOMPUTE_STATS just locked (exact against a concurrent metadata worker's batch)
                await metadata_store.recount(conn, sorted(touched_collections), locked=True)
        return IngestResult(len(inserts), len(deletes), len(decisions) - len(inserts) - len(deletes),
                            len(touched_collections), tuple(sorted(touched_collections)),
                            tuple(sorted(touched_tokens)))

    async def _ensure_tokens(
        self, conn: Any, inserts: Sequence[Event], touched_collections: set[UUID],
    ) -> dict[tuple[str, str, str], tuple[UUID, UUID]]:
        """Collection and token rows for the transfers to apply: (chain, contract, token) -> (token, collection)."""
        contracts = sorted({(e.chain_id, e.contract, e.standard) for e in inserts})
        chains, addresses, standards = (list(column) for column in zip(*contracts, strict=True))
        await conn.execute(sql.DISCOVER_COLLECTIONS, chains, addresses, standards)
        collections = {(r["chain_id"], r["contract_address"]): r["id"]
                       for r in await conn.fetch(sql.COLLECTION_IDS, chains, addresses)}
        await conn.execute(sql.MARK_LIVE, list(collections.values()))
        touched_collections.update(collections.values())
        keys = sorted({(collections[(e.chain_id, e.contract)], e.chain_id, e.contract, e.token_id, e.standard)
                       for e in inserts})
        await conn.execute(sql.ENSURE_TOKENS, *(list(column) for column in zip(*keys, strict=True)))
        rows = await conn.fetch(sql.NFT_IDS, [k[0] for k in keys], [k[3] for k in keys])
        by_collection = {(r["collection_id"], r["token_number"]): r["id"] for r in rows}
        return {(k[1], k[2], k[3]): (by_collection[(k[0], k[3])], k[0]) for k in keys}

    # -------------------------------------------------------------------------------------- collections

    async def collection(self, collection_id: UUID) -> asyncpg.Record | None:
        return await self._pool.fetchrow(f"SELECT {_COLLECTION_COLUMNS} FROM catalog.collections WHERE id = $1",  # noqa: S608
                                         collection_id)

    async def collection_by_contract(self, chain_id: str, contract: str) -> asyncpg.Record | None:
        return await self._pool.fetchrow(
            f"SELECT {_COLLECTION_COLUMNS} FROM catalog.collections "  # noqa: S608
            "WHERE chain_id = $1 AND contract_address = $2", chain_id, contract,
        )

    async def slug_owner(self, slug: str) -> UUID | None:
        value: UUID | None = await self._pool.fetchval("SELECT id FROM catalog.collections WHERE slug = $1", slug)
        return value

    async def slugs_like(self, base: str) -> set[str]:
        rows = await self._pool.fetch(
            "SELECT slug FROM catalog.collections WHERE slug = $1 OR slug LIKE $2", base, base + "-%"
        )
        return {r["slug"] for r in rows}

    async def register(self, new: NewCollection) -> tuple[asyncpg.Record, bool]:
        """Insert a registered collection, or adopt/refresh the existing row of that contract.

        Returns (row, created): created is true when the contract was not registered before (a discovered
        collection being adopted counts as a first registration).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            existing = await conn.fetchrow(
                f"SELECT {_COLLECTION_COLUMNS} FROM catalog.collections "  # noqa: S608
                "WHERE chain_id = $1 AND contract_address = $2 FOR UPDATE", new.chain_id, new.contract,
            )
            try:
                if existing is None:
                    row = await conn.fetchrow(
                        f"""INSERT INTO catalog.collections (slug, name, description, chain_id, contract_address,
                                   creator, owner, collection_type, status, registration, deploy_block, live_at)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'live', 'registered', $9, now())
                            RETURNING {_COLLECTION_COLUMNS}""",  # noqa: S608
                        new.slug, new.name, new.description, new.chain_id, new.contract, new.creator, new.owner,
                        new.standard, new.deploy_block,
                    )
                    created = True
                else:
                    row = await conn.fetchrow(
                        f"""UPDATE catalog.collections
                               SET slug = $2, name = $3, description = coalesce($4, description),
                                   collection_type = $5, deploy_block = coalesce($6, deploy_block),
                                   creator = coalesce($7, creator), owner = coalesce($8, owner),
                                   registration = CASE WHEN registration = 'discovered' THEN 'registered'
                                                       ELSE registration END,
                                   status = CASE WHEN status = 'pending' THEN 'live' ELSE status END,
                                   live_at = coalesce(live_at, now()), updated_at = now()
                             WHERE id = $1 RETURNING {_COLLECTION_COLUMNS}""",  # noqa: S608
                        existing["id"], new.slug, new.name, new.description, new.standard, new.deploy_block,
                        new.creator, new.owner,
                    )
                    created = existing["registration"] == "discovered"
            except asyncpg.UniqueViolationError:
                raise SlugTaken(new.slug) from None
            assert row is not None
            await conn.execute(
                "INSERT INTO catalog.collection_stats (collection_id) VALUES ($1) ON CONFLICT DO NOTHING", row["id"]
            )
        return row, created

    async def stats(self, collection_id: UUID) -> asyncpg.Record | None:
        rows = await self.stats_many([collection_id])
        return rows[0] if rows else None

    async def stats_many(self, collection_ids: Sequence[UUID]) -> list[asyncpg.Record]:
        """Stats of many collections in one statement (unknown ids have no row)."""
        return await self._pool.fetch(
            """SELECT c.id AS collection_id, c.volume_traded, coalesce(s.items_count, 0) AS items_count,
                      coalesce(s.owners_count, 0) AS owners_count, s.floor_price_native,
                      coalesce(s.updated_at, c.updated_at) AS updated_at,
                      coalesce(s.metadata_pending, 0) AS metadata_pending, coalesce(s.metadata_ok, 0) AS metadata_ok,
                      coalesce(s.metadata_failed, 0) AS metadata_failed, s.rarity_computed_at,
                      (SELECT count(DISTINCT l.token_id) FROM catalog.listings l
                         JOIN catalog.tokens t ON t.id = l.token_id
                        WHERE t.collection_id = c.id AND l.is_active) AS listed_count,
                      (SELECT count(*) FROM catalog.sales sa JOIN catalog.tokens t ON t.id = sa.token_id
                        WHERE t.collection_id = c.id) AS sales_count
                 FROM catalog.collections c LEFT JOIN catalog.collection_stats s ON s.collection_id = c.id
                WHERE c.id = ANY($1::uuid[])""",
            list(collection_ids),
        )

    # -------------------------------------------------------------------------------------------- tokens

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Run a read built by :mod:`mintplane.catalog.queries` (parameters always bound, never inlined)."""
        return await self._pool.fetch(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._pool.fetchval(query, *args)

    async def rarity_explanation(self, token_ids: Sequence[UUID]) -> dict[UUID, list[rarity.ExplainedTrait]]:
        """Why each token scores what it does (one statement, :func:`mintplane.catalog.rarity.explain`)."""
        return await rarity.explain(self._pool, token_ids)


def _activity_columns(
    inserts: Sequence[Event], tokens: dict[tuple[str, str, str], tuple[UUID, UUID]]
) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(12)]
    for e in inserts:
        kind = e.activity_type
        token_id, collection_id = tokens[(e.chain_id, e.contract, e.token_id)]
        row = (
            token_id, collection_id, kind,
            None if kind == "mint" else e.from_addr, None if kind == "burn" else e.to_addr, e.tx_hash,
            e.timestamp, e.event_id, e.block_number, e.log_index, e.batch_index, Decimal(e.quantity),
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns

"""PostgreSQL side of metadata ingestion (the only module of the package that runs SQL).

A batch is claimed in one statement and written back in one transaction: the trait writes of its
collections (H2's :func:`~mintplane.catalog.trait_store.replace_token_traits`, which takes each collection's
lock first, as it must come before token rows are locked), one UPDATE over arrays for every outcome, and
an exact recount of the touched collections' metadata progress under their stats-row locks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from mintplane.catalog.metadata import sql
from mintplane.catalog.metadata.document import Metadata
from mintplane.catalog.trait_store import lock_collection, replace_token_traits
from mintplane.catalog.traits import NormalizedTrait


@dataclass(frozen=True)
class Claimed:
    id: UUID
    collection_id: UUID
    chain_id: str
    contract: str
    token_number: str
    standard: str
    attempts: int  # attempts before this one
    lease: datetime


@dataclass(frozen=True)
class Outcome:
    token: Claimed
    status: str  # ok | pending (transient failure, retried at next_attempt_at) | failed
    url: str | None = None  # the raw token URI, when it was read
    metadata: Metadata | None = None
    error: str | None = None
    attempts: int = 0
    retry_in: float | None = None  # seconds until the retry (the database's clock decides when that is)


@dataclass(frozen=True)
class Saved:
    tokens: set[UUID]
    collections: set[UUID]


def _text(value: str | None) -> str | None:
    """Text as PostgreSQL stores it: a contract's URI or a node's revert message may carry NUL characters."""
    return value.replace("\x00", "") if value is not None and "\x00" in value else value


async def recount(conn: Any, collection_ids: Sequence[UUID], *, locked: bool = False) -> None:
    """Exact metadata_pending/ok/failed of the collections; takes their stats-row locks unless ``locked``."""
    if not collection_ids:
        return
    ids = sorted(set(collection_ids))
    if not locked:
        await conn.execute(sql.LOCK_STATS, ids)
    await conn.execute(sql.RECOUNT, ids)


class MetadataStore:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def claim(self, limit: int, chains: Sequence[str] | None, lease_seconds: float) -> list[Claimed]:
        rows = await self._pool.fetch(sql.CLAIM, limit, list(chains) if chains else None, lease_seconds)
        return [Claimed(r["id"], r["collection_id"], r["chain_id"] or "", r["contract_address"] or "",
                        r["token_number"], r["token_standard"] or "ERC721", r["metadata_attempts"], r["lease"])
                for r in rows]

    async def save(self, outcomes: Sequence[Outcome],
                   traits: Mapping[UUID, Sequence[NormalizedTrait]] | None = None) -> Saved:
        """Write a batch's outcomes (and the new traits of its ok tokens) in one transaction.

        Outcomes of tokens no longer claimed by this batch (refreshed meanwhile) are dropped.
        """
        if not outcomes:
            return Saved(set(), set())
        columns: list[list[Any]] = [[] for _ in range(13)]
        for o in outcomes:
            m = o.metadata
            row = (o.token.id, o.token.lease, o.status, _text(o.url), m and m.name, m and m.description,
                   m and m.image_url, m and m.animation_url, m and m.external_url,
                   orjson.dumps(m.document).decode() if m is not None else None, _text(o.error), o.attempts,
                   o.retry_in)
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        async with self._pool.acquire() as pooled, pooled.transaction():
            conn: Any = pooled  # trait_store takes a plain Connection; the pool's proxy behaves as one
            if traits:
                ours = {r["id"] for r in await conn.fetch(sql.STILL_CLAIMED, columns[0], columns[1])}
                by_collection: dict[UUID, dict[UUID, Sequence[NormalizedTrait]]] = {}
                for o in outcomes:
                    if o.token.id in ours and o.token.id in traits:
                        by_collection.setdefault(o.token.collection_id, {})[o.token.id] = traits[o.token.id]
                for collection_id in sorted(by_collection):
                    await replace_token_traits(conn, collection_id, by_collection[collection_id])
            rows = await conn.fetch(sql.SAVE, *columns)
            collections = {r["collection_id"] for r in rows}
            await recount(conn, sorted(collections))
        return Saved({r["id"] for r in rows}, collections)

    # ------------------------------------------------------------------------------------------ refresh

    async def token(self, token_id: UUID) -> asyncpg.Record | None:
        return await self._pool.fetchrow(sql.ROW_BY_ID, token_id)

    async def token_by_key(self, chain: str, contract: str, number: str) -> asyncpg.Record | None:
        return await self._pool.fetchrow(sql.ROW_BY_KEY, chain, contract, number)

    async def requeue_token(self, token_id: UUID, collection_id: UUID) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(sql.REQUEUE_ONE, token_id)
            await recount(conn, [collection_id])

    async def requeue_collection(self, collection_id: UUID,
                                 cooldown_seconds: float) -> tuple[int, datetime | None, datetime]:
        """(tokens queued, None, now), or (0, when the next refresh is allowed, now) within the cool-down;
        times are the database's clock."""
        async with self._pool.acquire() as pooled, pooled.transaction():
            conn: Any = pooled
            # Lock order as in a worker's batch: the collection's lock, token rows, then the stats row. The
            # collection lock also makes two refreshes take turns, so only one passes the cool-down check.
            await lock_collection(conn, collection_id)
            clock = await conn.fetchrow(sql.COLLECTION_REFRESH_CLOCK, collection_id)
            last, now = clock["last"], clock["now"]
            if last is not None and (now - last).total_seconds() < cooldown_seconds:
                return 0, last + timedelta(seconds=cooldown_seconds), now
            status = await conn.execute(sql.REQUEUE_COLLECTION, collection_id)
            await recount(conn, [collection_id])
            await conn.execute(sql.STAMP_COLLECTION_REFRESH, collection_id)
        return int(status.split()[-1]), None, now

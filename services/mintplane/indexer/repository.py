"""The indexer's PostgreSQL: checkpoints, ownership transfers and token balances (schema ``indexer``).

A batch is one transaction: the transfers are COPYed into a temporary table, inserted with ON CONFLICT DO
NOTHING (a replayed batch inserts nothing), the balances move by the net deltas of exactly the rows that
were inserted, and the checkpoint advances only if it still is where the caller read it. So whatever
crashed before, the tables hold every transfer once and the balances equal the sum of the stored
transfers. A rollback deletes the orphaned rows, subtracts their deltas (the exact inverse of what
inserting them added), moves the checkpoint down, bumps the reorg epoch and keeps the orphans in
``pending_retractions`` until their retractions are queued: all in one transaction.

Checkpoint rows are keyed by *scope*: the follower of a chain uses the CAIP-2 id itself, a backfill
``<caip2>@backfill:<digest>`` (see :func:`backfill_scope`), so both resume independently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from pymongo.errors import PyMongoError

from mintplane.indexer.events import ZERO_ADDRESS, Transfer, transfer_from_row, transfer_to_json

_COLUMNS = (
    "chain_id", "contract", "token_id", "from_addr", "to_addr", "tx_hash", "block_number", "block_hash",
    "log_index", "batch_index", "quantity", "timestamp",
)
_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS tmp_transfers (
    chain_id text, contract text, token_id text, from_addr text, to_addr text, tx_hash text,
    block_number bigint, block_hash text, log_index integer, batch_index integer, quantity numeric,
    "timestamp" timestamptz
) ON COMMIT DELETE ROWS
"""
# Balances move by net deltas. Credits are upserts; debits are plain UPDATEs, because PostgreSQL checks
# the CHECK (quantity >= 0) on an upsert's *proposed* row before resolving the conflict, so a negative
# delta can never go through ON CONFLICT. A debit whose row does not exist, or that would go below zero,
# means the token's earlier history is not indexed: the caller compares the counts and raises.
_INSERT_AND_MOVE_BALANCES = """
WITH inserted AS (
    INSERT INTO indexer.ownership_transfers
        (chain_id, contract, token_id, from_addr, to_addr, tx_hash, block_number, block_hash, log_index,
         batch_index, quantity, "timestamp")
    SELECT chain_id, contract, token_id, from_addr, to_addr, tx_hash, block_number, block_hash, log_index,
           batch_index, quantity, "timestamp"
      FROM tmp_transfers
    ON CONFLICT DO NOTHING
    RETURNING chain_id, contract, token_id, from_addr, to_addr, quantity
), deltas AS (
    SELECT chain_id, contract, token_id, owner, sum(delta) AS delta
      FROM (SELECT chain_id, contract, token_id, to_addr AS owner, quantity AS delta
              FROM inserted WHERE to_addr <> $1
            UNION ALL
            SELECT chain_id, contract, token_id, from_addr, -quantity
              FROM inserted WHERE from_addr <> $1) AS moves
     GROUP BY chain_id, contract, token_id, owner
),
credit AS (
    INSERT INTO indexer.token_balances AS b (chain_id, contract, token_id, owner, quantity)
    SELECT chain_id, contract, token_id, owner, delta FROM deltas WHERE delta > 0
    ON CONFLICT (chain_id, contract, token_id, owner) DO UPDATE SET quantity = b.quantity + excluded.quantity
    RETURNING 1
), debit AS (
    UPDATE indexer.token_balances b SET quantity = b.quantity + d.delta
      FROM deltas d
     WHERE d.delta < 0 AND b.chain_id = d.chain_id AND b.contract = d.contract AND b.token_id = d.token_id
       AND b.owner = d.owner
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS inserted,
       (SELECT count(*) FROM deltas WHERE delta < 0) AS debits, (SELECT count(*) FROM debit) AS debited
"""
# The exact inverse of inserting the rows in tmp_transfers (a rollback's orphans).
_UNDO_BALANCES = """
WITH deltas AS (
    SELECT chain_id, contract, token_id, owner, sum(delta) AS delta
      FROM (SELECT chain_id, contract, token_id, to_addr AS owner, -quantity AS delta
              FROM tmp_transfers WHERE to_addr <> $1
            UNION ALL
            SELECT chain_id, contract, token_id, from_addr, quantity
              FROM tmp_transfers WHERE from_addr <> $1) AS moves
     GROUP BY chain_id, contract, token_id, owner
),
credit AS (
    INSERT INTO indexer.token_balances AS b (chain_id, contract, token_id, owner, quantity)
    SELECT chain_id, contract, token_id, owner, delta FROM deltas WHERE delta > 0
    ON CONFLICT (chain_id, contract, token_id, owner) DO UPDATE SET quantity = b.quantity + excluded.quantity
    RETURNING 1
), debit AS (
    UPDATE indexer.token_balances b SET quantity = b.quantity + d.delta
      FROM deltas d
     WHERE d.delta < 0 AND b.chain_id = d.chain_id AND b.contract = d.contract AND b.token_id = d.token_id
       AND b.owner = d.owner
    RETURNING 1
)
SELECT (SELECT count(*) FROM deltas WHERE delta < 0) AS debits, (SELECT count(*) FROM debit) AS debited
"""
_DROP_EMPTY_BALANCES = """
DELETE FROM indexer.token_balances b
 USING (SELECT DISTINCT chain_id, contract, token_id, from_addr FROM tmp_transfers) t
 WHERE b.chain_id = t.chain_id AND b.contract = t.contract AND b.token_id = t.token_id
   AND b.owner = t.from_addr AND b.quantity = 0
"""


TRANSIENT_STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    PyMongoError,
)
"""Errors after which the same write may simply be tried again (the database was away for a moment)."""


class CheckpointConflict(Exception):
    """The checkpoint moved under us: another process writes the same scope."""


class HistoryMissing(Exception):
    """A transfer would take a balance below zero: an earlier transfer of the token is not indexed yet."""


@dataclass(frozen=True)
class Checkpoint:
    scope: str
    last_block: int
    last_block_hash: str | None
    reorg_epoch: int
    pending_retractions: list[Transfer]
    first_block: int | None
    target_block: int | None
    contracts: tuple[str, ...] | None
    updated_at: datetime

    @property
    def chain_id(self) -> str:
        return self.scope.split("@", 1)[0]


def backfill_scope(caip2: str, first: int, last: int, contracts: Sequence[str]) -> str:
    digest = hashlib.sha256(f"{first}:{last}:{','.join(sorted(c.lower() for c in contracts))}".encode())
    return f"{caip2}@backfill:{digest.hexdigest()[:16]}"


def _checkpoint(row: asyncpg.Record) -> Checkpoint:
    pending = row["pending_retractions"] or []
    contracts = row["contracts"]
    return Checkpoint(
        scope=row["chain_id"], last_block=row["last_block"], last_block_hash=row["last_block_hash"],
        reorg_epoch=row["reorg_epoch"], pending_retractions=[transfer_from_row(p) for p in pending],
        first_block=row["first_block"], target_block=row["target_block"],
        contracts=tuple(contracts) if contracts is not None else None, updated_at=row["updated_at"],
    )


def _record(t: Transfer) -> tuple[Any, ...]:
    stamp = datetime.fromtimestamp(t.timestamp, UTC) if t.timestamp is not None else None
    return (t.chain_id, t.contract, str(t.token_id), t.from_addr, t.to_addr, t.tx_hash, t.block_number,
            t.block_hash, t.log_index, t.batch_index, Decimal(t.quantity), stamp)


_SELECT_CHECKPOINT = """
SELECT chain_id, last_block, last_block_hash, reorg_epoch, pending_retractions, first_block, target_block,
       contracts, updated_at
  FROM indexer.indexer_checkpoints WHERE chain_id = $1
"""


class IndexerRepository:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def load_checkpoint(self, scope: str) -> Checkpoint | None:
        row = await self._pool.fetchrow(_SELECT_CHECKPOINT, scope)
        return _checkpoint(row) if row is not None else None

    async def ensure_checkpoint(
        self, scope: str, *, last_block: int, last_block_hash: str | None, first_block: int | None,
        target_block: int | None, contracts: Sequence[str] | None,
    ) -> Checkpoint:
        """The scope's checkpoint, created at `last_block` (the block before the first to index) if new."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO indexer.indexer_checkpoints
                       (chain_id, last_block, last_block_hash, first_block, target_block, contracts)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chain_id) DO NOTHING""",
                scope, last_block, last_block_hash, first_block, target_block,
                list(contracts) if contracts is not None else None,
            )
            row = await conn.fetchrow(_SELECT_CHECKPOINT, scope)
        assert row is not None
        return _checkpoint(row)

    async def apply_batch(
        self, scope: str, *, expected_last: int, transfers: Sequence[Transfer], last_block: int, last_hash: str,
    ) -> int:
        """Store a batch and advance the checkpoint, atomically. Returns the number of new transfer rows."""
        async with self._pool.acquire() as conn, conn.transaction():
            current = await conn.fetchval(
                "SELECT last_block FROM indexer.indexer_checkpoints WHERE chain_id = $1 FOR UPDATE", scope
            )
            if current != expected_last:
                raise CheckpointConflict(f"{scope}: checkpoint is {current}, expected {expected_last}")
            inserted = 0
            if transfers:
                await conn.execute(_TEMP)
                await conn.copy_records_to_table("tmp_transfers", records=map(_record, transfers), columns=_COLUMNS)
                missing = HistoryMissing(
                    f"{scope}: a transfer in blocks {expected_last + 1}-{last_block} moves a token its sender "
                    "has no indexed balance of; the contract's earlier history is not indexed yet "
                    "(a backfill from its start block fills it)"
                )
                try:
                    row = await conn.fetchrow(_INSERT_AND_MOVE_BALANCES, ZERO_ADDRESS)
                except asyncpg.CheckViolationError:
                    raise missing from None
                assert row is not None
                if row["debited"] != row["debits"]:
                    raise missing
                inserted = int(row["inserted"])
                await conn.execute(_DROP_EMPTY_BALANCES)
            await conn.execute(
                """UPDATE indexer.indexer_checkpoints SET last_block = $2, last_block_hash = $3, updated_at = now()
                    WHERE chain_id = $1""",
                scope, last_block, last_hash,
            )
        return inserted

    async def rollback(
        self, scope: str, *, expected_last: int, ancestor: int, ancestor_hash: str | None,
        contracts: Sequence[str] | None,
    ) -> tuple[list[Transfer], int]:
        """Undo every transfer of the scope above `ancestor`; returns the orphans and the new reorg epoch."""
        chain_id = scope.split("@", 1)[0]
        async with self._pool.acquire() as conn, conn.transaction():
            current = await conn.fetchrow(
                "SELECT last_block, reorg_epoch, pending_retractions FROM indexer.indexer_checkpoints "
                "WHERE chain_id = $1 FOR UPDATE", scope,
            )
            if current is None or current["last_block"] != expected_last:
                raise CheckpointConflict(f"{scope}: checkpoint moved during the rollback")
            rows = await conn.fetch(
                """DELETE FROM indexer.ownership_transfers
                    WHERE chain_id = $1 AND block_number > $2 AND block_number <= $3
                      AND ($4::text[] IS NULL OR contract = ANY($4::text[]))
                RETURNING chain_id, contract, token_id, from_addr, to_addr, tx_hash, block_number, block_hash,
                          log_index, batch_index, quantity, "timestamp" """,
                chain_id, ancestor, expected_last, list(contracts) if contracts is not None else None,
            )
            orphans = sorted((transfer_from_row(dict(r)) for r in rows), key=lambda t: t.position)
            if orphans:
                await self._subtract(conn, orphans)
            epoch = int(current["reorg_epoch"]) + 1
            pending = [transfer_to_json(t) for t in orphans]
            previous = current["pending_retractions"] or []
            await conn.execute(
                """UPDATE indexer.indexer_checkpoints
                      SET last_block = $2, last_block_hash = $3, reorg_epoch = $4, pending_retractions = $5,
                          updated_at = now()
                    WHERE chain_id = $1""",
                scope, ancestor, ancestor_hash, epoch, [*previous, *pending] if (previous or pending) else None,
            )
        return orphans, epoch

    @staticmethod
    async def _subtract(conn: Any, orphans: Sequence[Transfer]) -> None:
        await conn.execute(_TEMP)
        await conn.copy_records_to_table("tmp_transfers", records=map(_record, orphans), columns=_COLUMNS)
        row = await conn.fetchrow(_UNDO_BALANCES, ZERO_ADDRESS)
        if row["debited"] != row["debits"]:  # cannot happen while balances equal the sum of stored transfers
            raise CheckpointConflict("token balances do not match the stored transfers; refusing to roll back")
        await conn.execute(
            """DELETE FROM indexer.token_balances b
                USING (SELECT DISTINCT chain_id, contract, token_id, to_addr AS owner FROM tmp_transfers) t
                WHERE b.chain_id = t.chain_id AND b.contract = t.contract AND b.token_id = t.token_id
                  AND b.owner = t.owner AND b.quantity = 0"""
        )

    async def clear_pending_retractions(self, scope: str, epoch: int) -> None:
        await self._pool.execute(
            "UPDATE indexer.indexer_checkpoints SET pending_retractions = NULL "
            "WHERE chain_id = $1 AND reorg_epoch = $2",
            scope, epoch,
        )

    async def stored_hashes(
        self, chain_id: str, *, at_or_below: int, above: int, limit: int, contracts: Sequence[str] | None,
    ) -> list[tuple[int, str]]:
        """(block, hash) of blocks holding stored transfers, newest first: the hashes reorg checks compare."""
        rows = await self._pool.fetch(
            """SELECT DISTINCT ON (block_number) block_number, block_hash FROM indexer.ownership_transfers
                WHERE chain_id = $1 AND block_number <= $2 AND block_number > $3
                  AND ($5::text[] IS NULL OR contract = ANY($5::text[]))
                ORDER BY block_number DESC LIMIT $4""",
            chain_id, at_or_below, above, limit, list(contracts) if contracts is not None else None,
        )
        return [(int(r["block_number"]), str(r["block_hash"])) for r in rows]

    # ------------------------------------------------------------------------------------- reads (gRPC)

    async def list_checkpoints(self, after: str, limit: int) -> list[Checkpoint]:
        rows = await self._pool.fetch(
            _SELECT_CHECKPOINT.replace("WHERE chain_id = $1", "WHERE chain_id > $1 AND position('@' IN chain_id) = 0")
            + " ORDER BY chain_id LIMIT $2",
            after, limit,
        )
        return [_checkpoint(r) for r in rows]

    async def list_balances(
        self, chain_id: str, *, contract: str | None, token_id: str | None, owner: str | None,
        after: tuple[str, int, str, str] | None, limit: int,
    ) -> list[asyncpg.Record]:
        """Positive balances ordered by (contract, token id numerically, owner); `after` is a keyset cursor."""
        return await self._pool.fetch(
            """SELECT contract, token_id, owner, quantity FROM indexer.token_balances
                WHERE chain_id = $1 AND quantity > 0
                  AND ($2::text IS NULL OR contract = $2) AND ($3::text IS NULL OR token_id = $3)
                  AND ($4::text IS NULL OR owner = $4)
                  AND ($5::text IS NULL OR (contract, length(token_id), token_id, owner) > ($5, $6, $7, $8))
                ORDER BY contract, length(token_id), token_id, owner LIMIT $9""",
            chain_id, contract, token_id, owner,
            *(after if after is not None else (None, None, None, None)), limit,
        )

    async def list_transfers(
        self, chain_id: str, *, contract: str, token_id: str | None, address: str | None, from_block: int,
        to_block: int | None, before: tuple[int, int, int] | None, limit: int,
    ) -> list[asyncpg.Record]:
        """Transfers newest first; `before` is a (block, log index, batch index) keyset cursor."""
        return await self._pool.fetch(
            """SELECT contract, token_id, from_addr, to_addr, quantity, tx_hash, block_number, block_hash,
                      log_index, batch_index, "timestamp"
                 FROM indexer.ownership_transfers
                WHERE chain_id = $1 AND contract = $2 AND ($3::text IS NULL OR token_id = $3)
                  AND ($4::text IS NULL OR from_addr = $4 OR to_addr = $4)
                  AND block_number >= $5 AND ($6::bigint IS NULL OR block_number <= $6)
                  AND ($7::bigint IS NULL OR (block_number, log_index, batch_index) < ($7, $8, $9))
                ORDER BY block_number DESC, log_index DESC, batch_index DESC LIMIT $10""",
            chain_id, contract, token_id, address, from_block, to_block,
            *(before if before is not None else (None, None, None)), limit,
        )

"""PostgreSQL (schema `wallet`) of the wallet service: the only module with SQL (signature checks that need
the chain are mintplane.common.signatures').

Invariants and how they hold under concurrency:
- one primary wallet per user: every mutation of a user's wallets first takes a transaction-scoped
  advisory lock on the user, so "is there a primary / how many wallets" is read and acted on
  atomically; the partial unique index ux_wallet_links_primary_per_user is the backstop;
- an address belongs to at most one user, on every chain: linking also locks the address (always after
  the user, so two locks never cross), then checks who holds it;
- a nonce is single-use per address: checked under the address lock, and backed by the partial unique
  index ux_wallet_verifications_address_nonce (status 'verified').
Every attempt leaves a wallet_verifications row, including refused ones (written in the same transaction
as the decision, then the error is raised after commit).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from mintplane.common.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied, Unauthenticated
from mintplane.common.log import get_logger
from mintplane.common.pagination import Cursor

if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    Pool = asyncpg.Pool[Any]
    Connection = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]
else:
    Pool = Connection = Any

log = get_logger(__name__)
Record = asyncpg.Record

# Advisory lock namespaces (first key of pg_advisory_xact_lock(int, int)).
_LOCK_USER = 0x57414C31  # "WAL1"
_LOCK_ADDRESS = 0x57414C32  # "WAL2"
_NONCE_INDEX = "ux_wallet_verifications_address_nonce"
_ADDRESS_CHAIN_KEY = "wallet_links_address_chain_id_key"
_WALLET_COLUMNS = "wallet_id, user_id, account_id, address, chain_id, is_primary, type, connector, label, " \
                  "verified_at, created_at, updated_at"

# wallet_activity.action values
LINKED, UNLINKED, VERIFIED = "linked", "unlinked", "verified"
SET_PRIMARY, LABEL_CHANGED = "set_primary", "label_changed"


@dataclass(frozen=True)
class Audit:
    """Who did it from where (wallet_activity.ip_address / user_agent)."""

    ip_address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One proof of control being verified (a wallet_verifications row)."""

    user_id: uuid.UUID
    address: str | None
    nonce: str | None
    expires_at: datetime | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewLink:
    user_id: uuid.UUID
    address: str
    chain: str
    account_id: str
    wallet_type: str
    connector: str | None
    label: str | None
    make_primary: bool
    bound: bool  # the proof named this user (unbound proofs may only create a first wallet)


class LinkRefused(Exception):
    """The attempt was recorded as failed and committed; raise `error` to the caller."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def _lock_user(conn: Connection, user_id: uuid.UUID) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_USER, str(user_id))


async def _activity(
    conn: Connection, rows: Sequence[tuple[uuid.UUID, uuid.UUID, str, dict[str, Any]]], audit: Audit
) -> None:
    """Insert activity rows in one statement; clock_timestamp() keeps their order within a transaction.

    The wallet id is also kept in metadata: the column is nulled when the wallet is unlinked."""
    if not rows:
        return
    await conn.execute(
        """INSERT INTO wallet.wallet_activity (wallet_id, user_id, action, metadata, ip_address, user_agent, created_at)
           SELECT w, u, a, m, $5, $6, clock_timestamp()
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS x(w, u, a, m, n)
            ORDER BY n""",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        [{**r[3], "wallet_id": str(r[0])} for r in rows],
        audit.ip_address, audit.user_agent,
    )


async def _attempt(conn: Connection, attempt: Attempt, status: str, wallet_id: uuid.UUID | None) -> None:
    await conn.execute(
        """INSERT INTO wallet.wallet_verifications
               (wallet_id, verification_type, verification_data, status, verified_at, expires_at,
                user_id, address, nonce)
           VALUES ($1, 'eip4361', $2, $3::varchar, CASE WHEN $3::varchar = 'verified' THEN now() END,
                   $4, $5, $6, $7)""",
        wallet_id, attempt.data, status, attempt.expires_at, attempt.user_id, attempt.address, attempt.nonce,
    )


class WalletRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record_failure(self, attempt: Attempt) -> None:
        async with self._pool.acquire() as conn:
            await _attempt(conn, attempt, "failed", None)

    async def link(self, new: NewLink, attempt: Attempt, audit: Audit) -> tuple[Record, bool]:
        """Link (or re-verify) an address for a user. Raises LinkRefused after recording a refusal."""
        try:
            async with self._pool.acquire() as conn:
                async with conn.transaction():
                    refusal, wallet, created = await self._link(conn, new, attempt, audit)
                if refusal is not None:
                    raise LinkRefused(refusal)
                assert wallet is not None
                return wallet, created
        except asyncpg.UniqueViolationError as exc:  # a concurrent attempt won a race the locks did not cover
            if exc.constraint_name == _NONCE_INDEX:
                error: Exception = Unauthenticated("this signed message was already used: request a new one")
                reason = "nonce_reused"
            elif exc.constraint_name == _ADDRESS_CHAIN_KEY:
                error, reason = AlreadyExists("this address is already linked to an account"), "address_taken"
            else:
                raise
            await self.record_failure(replace(attempt, data={**attempt.data, "reason": reason}))
            raise LinkRefused(error) from None

    async def _link(
        self, conn: Connection, new: NewLink, attempt: Attempt, audit: Audit
    ) -> tuple[Exception | None, Record | None, bool]:
        await _lock_user(conn, new.user_id)
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_ADDRESS, new.address)
        state = await conn.fetchrow(
            """SELECT EXISTS (SELECT 1 FROM wallet.wallet_verifications
                               WHERE address = $2 AND nonce = $3 AND status = 'verified') AS nonce_used,
                      (SELECT user_id FROM wallet.wallet_links WHERE address = $2 AND user_id <> $1 LIMIT 1) AS other,
                      (SELECT wallet_id FROM wallet.wallet_links WHERE address = $2 AND user_id = $1
                        ORDER BY created_at LIMIT 1) AS existing,
                      (SELECT count(*) FROM wallet.wallet_links WHERE user_id = $1) AS wallets,
                      (SELECT wallet_id FROM wallet.wallet_links WHERE user_id = $1 AND is_primary) AS primary_id""",
            new.user_id, new.address, attempt.nonce,
        )
        assert state is not None
        refusal: tuple[str, Exception] | None = None
        if state["nonce_used"]:
            refusal = "nonce_reused", Unauthenticated("this signed message was already used: request a new one")
        elif state["other"] is not None:
            # Never say which account holds it.
            refusal = "address_taken", AlreadyExists("this address is already linked to another account")
        elif not new.bound and state["wallets"] > 0:
            refusal = "binding_required", Unauthenticated(
                "the signed message must name this user (a urn:mintplane:user:<id> resource): "
                "get one from CreateLinkChallenge"
            )
        if refusal is not None:
            failed = replace(attempt, data={**attempt.data, "reason": refusal[0]})
            await _attempt(conn, failed, "failed", state["existing"])
            return refusal[1], None, False

        events: list[tuple[uuid.UUID, uuid.UUID, str, dict[str, Any]]] = []
        primary_id: uuid.UUID | None = state["primary_id"]
        make_primary = primary_id is None or new.make_primary
        if state["existing"] is not None:
            wallet_id: uuid.UUID = state["existing"]
            await conn.execute(
                """UPDATE wallet.wallet_links SET verified_at = now(), updated_at = now(),
                          connector = COALESCE($2, connector), type = $3 WHERE wallet_id = $1""",
                wallet_id, new.connector, new.wallet_type,
            )
            events.append((wallet_id, new.user_id, VERIFIED, {"address": new.address, "chain_id": new.chain}))
            created = False
        else:
            wallet_id = await conn.fetchval(
                """INSERT INTO wallet.wallet_links (user_id, account_id, address, chain_id, is_primary, type,
                                                  connector, label, verified_at)
                   VALUES ($1, $2, $3, $4, false, $5, $6, $7, now()) RETURNING wallet_id""",
                new.user_id, new.account_id, new.address, new.chain, new.wallet_type, new.connector, new.label,
            )
            events.append((wallet_id, new.user_id, LINKED,
                           {"address": new.address, "chain_id": new.chain, "connector": new.connector}))
            created = True
        if make_primary and primary_id != wallet_id:
            await self._swap_primary(conn, new.user_id, primary_id, wallet_id)
            events.append((wallet_id, new.user_id, SET_PRIMARY,
                           {"previous_primary": str(primary_id) if primary_id else None}))
        await _attempt(conn, attempt, "verified", wallet_id)
        await _activity(conn, events, audit)
        return None, await self._wallet(conn, wallet_id), created

    async def _swap_primary(
        self, conn: Connection, user_id: uuid.UUID, old: uuid.UUID | None, new: uuid.UUID
    ) -> None:
        if old is not None:  # demote first: the partial unique index allows one primary at any instant
            await conn.execute(
                "UPDATE wallet.wallet_links SET is_primary = false, updated_at = now() WHERE wallet_id = $1", old
            )
        await conn.execute(
            "UPDATE wallet.wallet_links SET is_primary = true, updated_at = now() "
            "WHERE wallet_id = $1 AND user_id = $2",
            new, user_id,
        )

    async def _wallet(self, conn: Connection, wallet_id: uuid.UUID) -> Record:
        row = await conn.fetchrow(
            f"SELECT {_WALLET_COLUMNS} FROM wallet.wallet_links WHERE wallet_id = $1", wallet_id  # noqa: S608
        )
        if row is None:
            raise NotFound(f"wallet {wallet_id} not found")
        result: Record = row
        return result

    async def _owned(self, conn: Connection, user_id: uuid.UUID, wallet_id: uuid.UUID) -> Record:
        row = await self._wallet(conn, wallet_id)
        if row["user_id"] != user_id:
            raise PermissionDenied("you may only change your own wallets")
        return row

    async def unlink(self, user_id: uuid.UUID, wallet_id: uuid.UUID, audit: Audit) -> Record | None:
        """Remove a wallet; if it was primary, the oldest remaining one is promoted and returned."""
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock_user(conn, user_id)
            target = await self._owned(conn, user_id, wallet_id)
            remaining = await conn.fetch(
                "SELECT wallet_id FROM wallet.wallet_links WHERE user_id = $1 AND wallet_id <> $2 "
                "ORDER BY created_at, wallet_id",
                user_id, wallet_id,
            )
            if not remaining:
                raise FailedPrecondition("cannot unlink your only wallet: link another one first")
            events: list[tuple[uuid.UUID, uuid.UUID, str, dict[str, Any]]] = [
                (wallet_id, user_id, UNLINKED,
                 {"address": target["address"], "chain_id": target["chain_id"], "was_primary": target["is_primary"]}),
            ]
            promoted: uuid.UUID | None = remaining[0]["wallet_id"] if target["is_primary"] else None
            if promoted is not None:
                events.append((promoted, user_id, SET_PRIMARY,
                               {"previous_primary": str(wallet_id), "reason": "previous primary unlinked"}))
            await _activity(conn, events, audit)  # before the delete, which nulls their wallet_id
            await conn.execute("DELETE FROM wallet.wallet_links WHERE wallet_id = $1", wallet_id)
            if promoted is None:
                return None
            await self._swap_primary(conn, user_id, None, promoted)
            return await self._wallet(conn, promoted)

    async def set_primary(self, user_id: uuid.UUID, wallet_id: uuid.UUID, audit: Audit) -> Record:
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock_user(conn, user_id)
            target = await self._owned(conn, user_id, wallet_id)
            if target["is_primary"]:
                return target
            old = await conn.fetchval(
                "SELECT wallet_id FROM wallet.wallet_links WHERE user_id = $1 AND is_primary", user_id
            )
            await self._swap_primary(conn, user_id, old, wallet_id)
            await _activity(conn, [(wallet_id, user_id, SET_PRIMARY,
                                    {"previous_primary": str(old) if old else None})], audit)
            return await self._wallet(conn, wallet_id)

    async def update_label(self, user_id: uuid.UUID, wallet_id: uuid.UUID, label: str | None, audit: Audit) -> Record:
        async with self._pool.acquire() as conn, conn.transaction():
            # row lock: concurrent relabels log each other's value as "old", in order
            await conn.execute("SELECT 1 FROM wallet.wallet_links WHERE wallet_id = $1 FOR UPDATE", wallet_id)
            target = await self._owned(conn, user_id, wallet_id)
            if target["label"] == label:
                return target
            await conn.execute(
                "UPDATE wallet.wallet_links SET label = $2, updated_at = now() WHERE wallet_id = $1", wallet_id, label
            )
            await _activity(conn, [(wallet_id, user_id, LABEL_CHANGED, {"old": target["label"], "new": label})], audit)
            return await self._wallet(conn, wallet_id)

    # ----------------------------------------------------------------------------------------- reads

    async def get(self, wallet_id: uuid.UUID) -> Record:
        async with self._pool.acquire() as conn:
            return await self._wallet(conn, wallet_id)

    async def by_address(self, address: str) -> Record | None:
        return await self._pool.fetchrow(
            f"SELECT {_WALLET_COLUMNS} FROM wallet.wallet_links WHERE address = $1 "  # noqa: S608
            "ORDER BY created_at LIMIT 1",
            address,
        )

    async def by_addresses(self, addresses: Sequence[str]) -> list[Record]:
        """The oldest link of each address that is linked (one statement for the whole batch)."""
        if not addresses:
            return []
        return list(
            await self._pool.fetch(
                f"SELECT DISTINCT ON (address) {_WALLET_COLUMNS} FROM wallet.wallet_links "  # noqa: S608
                "WHERE address = ANY($1::text[]) ORDER BY address, created_at",
                list(addresses),
            )
        )

    async def by_users(self, user_ids: Sequence[uuid.UUID]) -> list[Record]:
        """Wallets of the users, each user's primary first, then by link time."""
        if not user_ids:
            return []
        return list(
            await self._pool.fetch(
                f"SELECT {_WALLET_COLUMNS} FROM wallet.wallet_links WHERE user_id = ANY($1::uuid[]) "  # noqa: S608
                "ORDER BY user_id, is_primary DESC, created_at, wallet_id",
                list(user_ids),
            )
        )

    async def activity(
        self, user_id: uuid.UUID, wallet_id: uuid.UUID | None, after: Cursor | None, limit: int
    ) -> list[Record]:
        """A page of the user's activity, newest first, keyset on (created_at, id)."""
        clauses, params = ["user_id = $1"], [user_id, limit]
        if wallet_id is not None:
            params.append(str(wallet_id))
            clauses.append(f"metadata->>'wallet_id' = ${len(params)}")
        if after is not None:
            params += [after.created_at, after.key]
            clauses.append(f"(created_at, id) < (${len(params) - 1}, ${len(params)})")
        return list(
            await self._pool.fetch(
                f"""SELECT id, COALESCE(wallet_id, (metadata->>'wallet_id')::uuid) AS wallet_id, user_id, action,
                           metadata, ip_address, user_agent, created_at
                      FROM wallet.wallet_activity WHERE {" AND ".join(clauses)}
                     ORDER BY created_at DESC, id DESC LIMIT $2""",  # noqa: S608
                *params,
            )
        )

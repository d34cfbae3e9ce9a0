"""Every SQL statement of the auth service (schema ``auth``), on the asyncpg pool.

Each operation that must be atomic is one statement (data-modifying CTEs) or one transaction, so
concurrent replicas cannot interleave: consuming a nonce is a single conditional UPDATE (a replay finds
nothing), opening a session writes the session and its login event together, rotating a refresh token
is a compare-and-swap on the current hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mintplane.common.pagination import Cursor

SESSION_COLUMNS = """session_id::text, user_id::text, device_id::text, host(ip_address) AS ip_address, user_agent,
    address, chain_id, created_at, expires_at, revoked_at, last_used_at, revoked_reason"""


@dataclass(frozen=True, slots=True)
class NonceRecord:
    nonce: str
    account_id: str
    domain: str
    chain_id: str
    expires_at: datetime
    used: bool
    expired: bool  # by the database clock


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: str
    user_id: str
    device_id: str | None
    ip_address: str | None
    user_agent: str | None
    address: str | None
    chain_id: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    revoked_reason: str | None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True, slots=True)
class LoginEventRecord:
    """One sign-in attempt. ``id``/``timestamp`` are set by the database on insert."""

    result: str
    account_id: str | None = None
    user_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    error_message: str | None = None
    chain_id: str | None = None
    domain: str | None = None
    session_id: str | None = None
    nonce: str | None = None
    id: str = ""
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewSession:
    session_id: str
    user_id: str
    device_id: str | None
    refresh_hash: str
    ip_address: str | None
    user_agent: str | None
    address: str
    chain_id: str
    ttl_seconds: int


def _session(row: asyncpg.Record) -> SessionRecord:
    return SessionRecord(**{k: row[k] for k in SessionRecord.__slots__})


_EVENT_INSERT = """INSERT INTO auth.login_events
    (user_id, account_id, ip_address, user_agent, result, error_message, chain_id, domain, session_id, nonce)
    VALUES ($1::uuid, $2, $3::inet, $4, $5, $6, $7, $8, $9::uuid, $10)"""


def _event_args(e: LoginEventRecord) -> tuple[Any, ...]:
    return (e.user_id, e.account_id, e.ip_address, e.user_agent, e.result, e.error_message, e.chain_id, e.domain,
            e.session_id, e.nonce)


class AuthRepository:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    # -------------------------------------------------------------------------------------- nonces

    async def insert_nonce(
        self, nonce: str, account_id: str, domain: str, chain_id: str, issued_at: datetime, expires_at: datetime
    ) -> None:
        await self._pool.execute(
            """INSERT INTO auth.auth_nonces (nonce, account_id, domain, chain_id, issued_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            nonce, account_id, domain, chain_id, issued_at, expires_at,
        )

    async def get_nonce(self, nonce: str) -> NonceRecord | None:
        row = await self._pool.fetchrow(
            """SELECT nonce, account_id, domain, chain_id, expires_at, used, expires_at <= now() AS expired
                 FROM auth.auth_nonces WHERE nonce = $1""",
            nonce,
        )
        return NonceRecord(**dict(row)) if row is not None else None

    async def consume_nonce(self, nonce: str, account_id: str, domain: str, chain_id: str) -> bool:
        """Mark the nonce used if, at this instant, it is unused, unexpired and bound to these values."""
        consumed = await self._pool.fetchval(
            """UPDATE auth.auth_nonces SET used = true, used_at = now()
                WHERE nonce = $1 AND used = false AND expires_at > now()
                  AND account_id = $2 AND domain = $3 AND chain_id = $4
            RETURNING nonce""",
            nonce, account_id, domain, chain_id,
        )
        return consumed is not None

    async def purge_nonces(self, older_than_seconds: int) -> int:
        """Delete nonces expired for a while (login events keep their rows; the reference becomes NULL)."""
        status = await self._pool.execute(
            "DELETE FROM auth.auth_nonces WHERE expires_at < now() - make_interval(secs => $1)", older_than_seconds
        )
        return int(status.split()[-1])

    # -------------------------------------------------------------------------------------- login events

    async def record_login_event(self, event: LoginEventRecord) -> None:
        await self._pool.execute(_EVENT_INSERT, *_event_args(event))

    async def list_login_events(
        self, *, user_id: str | None, address: str | None, results: list[str] | None, after: Cursor | None,
        limit: int,
    ) -> list[LoginEventRecord]:
        # Only the predicates in use are in the SQL text, so each shape gets a plan that uses its index.
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (("user_id = ${}::uuid", user_id), ("account_id = ${}", address),
                              ("result = ANY(${}::text[])", results)):
            if value is not None:
                args.append(value)
                where.append(clause.format(len(args)))
        if after is not None:
            args += [after.created_at, after.key]
            where.append(f'("timestamp", id) < (${len(args) - 1}, ${len(args)}::uuid)')
        args.append(limit)
        rows = await self._pool.fetch(
            f"""SELECT id::text, user_id::text, account_id, host(ip_address) AS ip_address, user_agent, result,
                       error_message, chain_id, domain, session_id::text, nonce, "timestamp"
                  FROM auth.login_events WHERE {" AND ".join(where)}
                 ORDER BY "timestamp" DESC, id DESC LIMIT ${len(args)}""",  # noqa: S608  (fixed fragments only)
            *args,
        )
        return [LoginEventRecord(**dict(row)) for row in rows]

    # -------------------------------------------------------------------------------------- sessions

    async def open_session(self, new: NewSession, event: LoginEventRecord) -> SessionRecord:
        """Insert the session and its successful login event in one statement."""
        row = await self._pool.fetchrow(
            f"""WITH s AS (
                  INSERT INTO auth.sessions (session_id, user_id, device_id, refresh_hash, ip_address, user_agent,
                                             expires_at, last_used_at, address, chain_id)
                  VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::inet, $6, now() + make_interval(secs => $7), now(),
                          $8, $9)
                  RETURNING *
                ), e AS (
                  INSERT INTO auth.login_events (user_id, account_id, ip_address, user_agent, result, chain_id,
                                                 domain, session_id, nonce)
                  SELECT s.user_id, $10, s.ip_address, s.user_agent, $11, s.chain_id, $12, s.session_id, $13 FROM s
                )
                SELECT {SESSION_COLUMNS} FROM s""",  # noqa: S608
            new.session_id, new.user_id, new.device_id, new.refresh_hash, new.ip_address, new.user_agent,
            new.ttl_seconds, new.address, new.chain_id, event.account_id, event.result, event.domain, event.nonce,
        )
        assert row is not None
        return _session(row)

    async def session_by_refresh_hash(self, refresh_hash: str) -> SessionRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {SESSION_COLUMNS} FROM auth.sessions WHERE refresh_hash = $1", refresh_hash  # noqa: S608
        )
        return _session(row) if row is not None else None

    async def rotate_refresh(self, old_hash: str, new_hash: str, history_size: int) -> SessionRecord | None:
        """Swap the refresh hash if it is still current and the session alive; keep the old one as history."""
        row = await self._pool.fetchrow(
            f"""UPDATE auth.sessions
                   SET refresh_hash = $2, last_used_at = now(),
                       previous_refresh_hashes = jsonb_path_query_array(
                           jsonb_build_array(refresh_hash) || previous_refresh_hashes, '$[0 to $n]',
                           jsonb_build_object('n', $3::int - 1))
                 WHERE refresh_hash = $1 AND revoked_at IS NULL AND expires_at > now()
             RETURNING {SESSION_COLUMNS}""",  # noqa: S608
            old_hash, new_hash, history_size,
        )
        return _session(row) if row is not None else None

    async def revoke_for_reuse(self, refresh_hash: str) -> str | None:
        """Revoke the session a rotated (old) refresh token belongs to; its id, or None if none matches."""
        value = await self._pool.fetchval(
            """UPDATE auth.sessions
                  SET revoked_at = coalesce(revoked_at, now()),
                      revoked_reason = coalesce(revoked_reason, 'refresh_reuse')
                WHERE previous_refresh_hashes @> jsonb_build_array($1::text)
            RETURNING session_id::text""",
            refresh_hash,
        )
        return str(value) if value is not None else None

    async def touch_session(self, session_id: str) -> SessionRecord | None:
        row = await self._pool.fetchrow(
            f"""UPDATE auth.sessions SET last_used_at = now() WHERE session_id = $1::uuid
            RETURNING {SESSION_COLUMNS}""",  # noqa: S608
            session_id,
        )
        return _session(row) if row is not None else None

    async def revoke_sessions(self, session_id: str, *, whole_user: bool, reason: str) -> tuple[bool, list[str]]:
        """Revoke a session (or all live sessions of its user). (session exists, ids newly revoked)."""
        row = await self._pool.fetchrow(
            """WITH target AS (SELECT user_id FROM auth.sessions WHERE session_id = $1::uuid),
                    revoked AS (
                      UPDATE auth.sessions s SET revoked_at = now(), revoked_reason = $3
                       WHERE s.revoked_at IS NULL
                         AND (s.session_id = $1::uuid OR ($2 AND s.user_id = (SELECT user_id FROM target)))
                   RETURNING s.session_id::text)
               SELECT EXISTS (SELECT 1 FROM target) AS found, ARRAY(SELECT session_id FROM revoked) AS ids""",
            session_id, whole_user, reason,
        )
        assert row is not None
        return bool(row["found"]), list(row["ids"])

    async def revoke_owned_session(self, user_id: str, session_id: str, reason: str) -> SessionRecord | None:
        """Revoke (idempotently) a session of this user; None if it is not this user's or does not exist."""
        row = await self._pool.fetchrow(
            f"""UPDATE auth.sessions
                   SET revoked_at = coalesce(revoked_at, now()), revoked_reason = coalesce(revoked_reason, $3)
                 WHERE session_id = $1::uuid AND user_id = $2::uuid
             RETURNING {SESSION_COLUMNS}""",  # noqa: S608
            session_id, user_id, reason,
        )
        return _session(row) if row is not None else None

    async def session_owner(self, session_id: str) -> str | None:
        value = await self._pool.fetchval("SELECT user_id::text FROM auth.sessions WHERE session_id = $1::uuid",
                                          session_id)
        return str(value) if value is not None else None

    async def list_sessions(
        self, user_id: str, *, include_inactive: bool, after: Cursor | None, limit: int
    ) -> tuple[list[SessionRecord], int]:
        """One page, newest first, and how many sessions match in total (one round trip)."""
        rows = await self._pool.fetch(
            f"""WITH matching AS (
                  SELECT * FROM auth.sessions
                   WHERE user_id = $1::uuid AND ($2 OR (revoked_at IS NULL AND expires_at > now())))
                SELECT c.total, page.* FROM (SELECT count(*) AS total FROM matching) c
                LEFT JOIN LATERAL (
                  SELECT {SESSION_COLUMNS} FROM matching
                   WHERE $3::timestamptz IS NULL OR (created_at, session_id) < ($3, $4::uuid)
                   ORDER BY created_at DESC, session_id DESC LIMIT $5) page ON true""",  # noqa: S608
            user_id, include_inactive, after.created_at if after else None, after.key if after else None, limit,
        )
        total = int(rows[0]["total"]) if rows else 0
        return [_session(row) for row in rows if row["session_id"] is not None], total

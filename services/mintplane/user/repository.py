"""PostgreSQL access of the user service (schema `users`): the only module that writes SQL.

Concurrency rules every write here follows, so counters stay exact and transactions cannot deadlock:
- a follow row and both users' counters change in one transaction, and counters move only when a row
  was really inserted or deleted (ON CONFLICT DO NOTHING / DELETE ... RETURNING decide);
- `users.users` rows of the parties are share-locked first, in id order, so a concurrent status change
  (suspend, delete) is seen and waits for in-flight follows;
- `user_stats` rows are locked in id order (`ORDER BY user_id FOR UPDATE`) before they are updated, in
  every code path, so two transactions never hold them crosswise.
A deadlock or serialization failure that slips through anyway is retried a few times.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from mintplane.common.errors import AlreadyExists, FailedPrecondition, NotFound
from mintplane.common.pagination import Cursor

T = TypeVar("T")
Record = asyncpg.Record
if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    Pool = asyncpg.Pool[Any]
    Connection = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]
else:
    Pool = Connection = Any

ACTIVE, SUSPENDED, DELETED = "active", "suspended", "deleted"
_RETRIES = 3
_USERNAME_INDEX = "ux_profiles_username_lower"

_USER_COLUMNS = """u.user_id, u.status, u.created_at, u.updated_at, p.username, p.display_name, p.avatar_url,
       p.banner_url, p.bio, p.locale, p.timezone, p.socials_json, p.updated_at AS profile_updated_at"""
_USER_FROM = "users.users u JOIN users.profiles p ON p.user_id = u.user_id"

PROFILE_COLUMNS: frozenset[str] = frozenset(
    {"username", "display_name", "avatar_url", "banner_url", "bio", "locale", "timezone", "socials_json"}
)
PREFERENCE_COLUMNS: frozenset[str] = frozenset(
    {"email_notifications", "push_notifications", "marketing_emails", "language", "currency", "theme",
     "privacy_level", "show_activity"}
)
_PREFERENCE_DEFAULTS: Mapping[str, Any] = {
    "email_notifications": True, "push_notifications": True, "marketing_emails": False, "show_activity": True,
}


@dataclass(frozen=True)
class Follow:
    follower_id: uuid.UUID
    following_id: uuid.UUID
    created_at: datetime


async def _retrying(work: Callable[[], Awaitable[T]]) -> T:
    for attempt in range(_RETRIES):
        try:
            return await work()
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            if attempt == _RETRIES - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _username_taken(username: str | None) -> AlreadyExists:
    return AlreadyExists(f"username {username!r} is taken")


class UserRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    # ------------------------------------------------------------------------------------------ users

    async def create_user(
        self, user_id: uuid.UUID, username: str | None, display_name: str | None
    ) -> tuple[Record, bool]:
        """One round trip creates the user with profile, default preferences and zeroed stats."""
        query = """
            WITH u AS (
                INSERT INTO users.users (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING RETURNING user_id
            ), p AS (
                INSERT INTO users.profiles (user_id, username, display_name) SELECT user_id, $2, $3 FROM u
            ), pr AS (
                INSERT INTO users.user_preferences (user_id) SELECT user_id FROM u
            ), s AS (
                INSERT INTO users.user_stats (user_id) SELECT user_id FROM u
            )
            SELECT count(*) > 0 FROM u"""
        try:
            created = bool(await self._pool.fetchval(query, user_id, username, display_name))
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == _USERNAME_INDEX:
                raise _username_taken(username) from None
            raise
        rows = await self.get_users([user_id])
        if not rows:  # an existing users row without a profile: created outside this service
            raise FailedPrecondition(f"user {user_id} exists but has no profile")
        return rows[0], created

    async def get_users(self, user_ids: Sequence[uuid.UUID]) -> list[Record]:
        if not user_ids:
            return []
        return list(
            await self._pool.fetch(
                f"SELECT {_USER_COLUMNS} FROM {_USER_FROM} WHERE u.user_id = ANY($1::uuid[])",  # noqa: S608
                list(user_ids),
            )
        )

    async def user_id_by_username(self, username: str) -> uuid.UUID | None:
        """Served by the unique index on lower(username); `username` is already canonical (lowercase)."""
        user_id = await self._pool.fetchval(
            "SELECT user_id FROM users.profiles WHERE lower(username) = $1", username
        )
        return user_id if isinstance(user_id, uuid.UUID) else None

    async def _lock_status(self, conn: Connection, user_id: uuid.UUID) -> str:
        status = await conn.fetchval("SELECT status FROM users.users WHERE user_id = $1 FOR SHARE", user_id)
        if status is None:
            raise NotFound(f"user {user_id} not found")
        return str(status)

    async def update_profile(self, user_id: uuid.UUID, values: Mapping[str, Any]) -> tuple[Record, str | None]:
        """Write the given profile columns; returns the user and the username it had before."""
        columns = sorted(values)
        if not set(columns) <= PROFILE_COLUMNS:
            raise ValueError(f"not profile columns: {set(columns) - PROFILE_COLUMNS}")
        assignments = ", ".join(f"{col} = ${i}" for i, col in enumerate(columns, start=2))
        async with self._pool.acquire() as conn, conn.transaction():
            status = await self._lock_status(conn, user_id)
            if status != ACTIVE:
                raise FailedPrecondition(f"user {user_id} is {status}: the profile cannot be changed")
            old = await conn.fetchval(
                "SELECT username FROM users.profiles WHERE user_id = $1 FOR UPDATE", user_id
            )
            try:
                updated = await conn.fetchval(
                    f"UPDATE users.profiles SET {assignments}, updated_at = now() "  # noqa: S608
                    "WHERE user_id = $1 RETURNING true",
                    user_id, *(values[col] for col in columns),
                )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == _USERNAME_INDEX:
                    raise _username_taken(values.get("username")) from None
                raise
            if not updated:
                raise NotFound(f"user {user_id} has no profile")
            row = await conn.fetchrow(
                f"SELECT {_USER_COLUMNS} FROM {_USER_FROM} WHERE u.user_id = $1", user_id  # noqa: S608
            )
        assert row is not None
        return row, old

    async def set_status(self, user_id: uuid.UUID, status: str) -> tuple[Record, str | None]:
        """Change the status; deleting also clears the profile and removes the user's follows (both ways),
        adjusting every affected counter. Returns the user and the username it had before."""
        async def work() -> tuple[Record, str | None]:
            async with self._pool.acquire() as conn, conn.transaction():
                current = await conn.fetchval(
                    "SELECT status FROM users.users WHERE user_id = $1 FOR UPDATE", user_id
                )
                if current is None:
                    raise NotFound(f"user {user_id} not found")
                if current == DELETED and status != DELETED:
                    raise FailedPrecondition(f"user {user_id} is deleted; deletion cannot be undone")
                old = await conn.fetchval("SELECT username FROM users.profiles WHERE user_id = $1", user_id)
                if current != status:
                    await conn.execute(
                        "UPDATE users.users SET status = $2, updated_at = now() WHERE user_id = $1", user_id, status
                    )
                if status == DELETED and current != DELETED:
                    await self._erase(conn, user_id)
                row = await conn.fetchrow(
                    f"SELECT {_USER_COLUMNS} FROM {_USER_FROM} WHERE u.user_id = $1", user_id  # noqa: S608
                )
            assert row is not None
            return row, old

        return await _retrying(work)

    async def _erase(self, conn: Connection, user_id: uuid.UUID) -> None:
        await conn.execute(
            """UPDATE users.profiles SET username = NULL, display_name = NULL, avatar_url = NULL, banner_url = NULL,
                      bio = NULL, locale = NULL, timezone = NULL, socials_json = NULL, updated_at = now()
                WHERE user_id = $1""",
            user_id,
        )
        gone = await conn.fetch(
            "DELETE FROM users.user_follows WHERE follower_id = $1 OR following_id = $1 "
            "RETURNING follower_id, following_id",
            user_id,
        )
        lost_followers: dict[uuid.UUID, int] = {}  # users the deleted one followed
        lost_following: dict[uuid.UUID, int] = {}  # users who followed the deleted one
        for row in gone:
            if row["follower_id"] == user_id:
                lost_followers[row["following_id"]] = lost_followers.get(row["following_id"], 0) + 1
            else:
                lost_following[row["follower_id"]] = lost_following.get(row["follower_id"], 0) + 1
        others = sorted(lost_followers.keys() | lost_following.keys())
        await conn.execute(
            """UPDATE users.user_stats s
                  SET followers_count = CASE WHEN s.user_id = $1 THEN 0 ELSE s.followers_count - d.followers END,
                      following_count = CASE WHEN s.user_id = $1 THEN 0 ELSE s.following_count - d.following END,
                      updated_at = now()
                 FROM (SELECT l.user_id, x.followers, x.following
                         FROM (SELECT user_id FROM users.user_stats WHERE user_id = ANY($2::uuid[])
                                ORDER BY user_id FOR UPDATE) l
                         JOIN unnest($2::uuid[], $3::int[], $4::int[]) AS x(user_id, followers, following)
                           ON x.user_id = l.user_id) d
                WHERE s.user_id = d.user_id""",
            user_id,
            [*others, user_id],
            [lost_followers.get(o, 0) for o in others] + [0],
            [lost_following.get(o, 0) for o in others] + [0],
        )

    # ------------------------------------------------------------------------------------ preferences

    async def get_preferences(self, user_id: uuid.UUID) -> Record | None:
        return await self._pool.fetchrow("SELECT * FROM users.user_preferences WHERE user_id = $1", user_id)

    async def update_preferences(self, user_id: uuid.UUID, values: Mapping[str, Any]) -> Record:
        """Write the given columns; None resets a column to its default."""
        columns = sorted(values)
        if not set(columns) <= PREFERENCE_COLUMNS:
            raise ValueError(f"not preference columns: {set(columns) - PREFERENCE_COLUMNS}")
        params = [values[c] if values[c] is not None else _PREFERENCE_DEFAULTS.get(c) for c in columns]
        assignments = ", ".join(f"{col} = ${i}" for i, col in enumerate(columns, start=2))
        async with self._pool.acquire() as conn, conn.transaction():
            status = await self._lock_status(conn, user_id)
            if status != ACTIVE:
                raise FailedPrecondition(f"user {user_id} is {status}: preferences cannot be changed")
            row = await conn.fetchrow(
                f"UPDATE users.user_preferences SET {assignments}, updated_at = now() "  # noqa: S608
                "WHERE user_id = $1 RETURNING *",
                user_id, *params,
            )
        if row is None:
            raise NotFound(f"user {user_id} has no preferences")
        result: Record = row
        return result

    # ------------------------------------------------------------------------------------------ stats

    async def get_stats(self, user_ids: Sequence[uuid.UUID]) -> list[Record]:
        if not user_ids:
            return []
        return list(
            await self._pool.fetch("SELECT * FROM users.user_stats WHERE user_id = ANY($1::uuid[])", list(user_ids))
        )

    # ---------------------------------------------------------------------------------------- follows

    async def follow(self, follower: uuid.UUID, following: uuid.UUID) -> tuple[Follow, bool]:
        async def work() -> tuple[Follow, bool]:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    "SELECT user_id, status FROM users.users WHERE user_id = ANY($1::uuid[]) "
                    "ORDER BY user_id FOR SHARE",
                    [follower, following],
                )
                statuses = {row["user_id"]: row["status"] for row in rows}
                if statuses.get(follower, DELETED) == DELETED:
                    raise NotFound(f"user {follower} not found")
                if statuses.get(following, DELETED) == DELETED:
                    raise NotFound(f"user {following} not found")
                if statuses[follower] != ACTIVE:
                    raise FailedPrecondition(f"user {follower} is {statuses[follower]} and cannot follow")
                if statuses[following] != ACTIVE:
                    raise FailedPrecondition(f"user {following} is {statuses[following]} and cannot be followed")
                created_at = await conn.fetchval(
                    "INSERT INTO users.user_follows (follower_id, following_id) VALUES ($1, $2) "
                    "ON CONFLICT DO NOTHING RETURNING created_at",
                    follower, following,
                )
                if created_at is None:
                    existing = await conn.fetchval(
                        "SELECT created_at FROM users.user_follows WHERE follower_id = $1 AND following_id = $2",
                        follower, following,
                    )
                    return Follow(follower, following, existing), False
                await self._bump(conn, follower, following, +1)
                return Follow(follower, following, created_at), True

        return await _retrying(work)

    async def unfollow(self, follower: uuid.UUID, following: uuid.UUID) -> bool:
        async def work() -> bool:
            async with self._pool.acquire() as conn, conn.transaction():
                removed = await conn.fetchval(
                    "DELETE FROM users.user_follows WHERE follower_id = $1 AND following_id = $2 RETURNING true",
                    follower, following,
                )
                if removed:
                    await self._bump(conn, follower, following, -1)
                return bool(removed)

        return await _retrying(work)

    async def _bump(self, conn: Connection, follower: uuid.UUID, following: uuid.UUID, delta: int) -> None:
        await conn.execute(
            """UPDATE users.user_stats s
                  SET following_count = s.following_count + CASE WHEN s.user_id = $1 THEN $3::int ELSE 0 END,
                      followers_count = s.followers_count + CASE WHEN s.user_id = $2 THEN $3::int ELSE 0 END,
                      updated_at = now()
                 FROM (SELECT user_id FROM users.user_stats WHERE user_id IN ($1, $2)
                        ORDER BY user_id FOR UPDATE) l
                WHERE s.user_id = l.user_id""",
            follower, following, delta,
        )

    async def list_follows(
        self, user_id: uuid.UUID, *, followers: bool, after: Cursor | None, limit: int
    ) -> tuple[list[Follow], int]:
        """One page, newest first, keyset on (created_at, other id); plus the counter as total."""
        mine, other = ("following_id", "follower_id") if followers else ("follower_id", "following_id")
        counter = "followers_count" if followers else "following_count"
        keyset = f"AND (created_at, {other}) < ($3, $4)" if after else ""
        params: list[Any] = [user_id, limit]
        if after:
            params += [after.created_at, after.key]
        rows = await self._pool.fetch(
            f"""SELECT follower_id, following_id, created_at,
                       (SELECT {counter} FROM users.user_stats WHERE user_id = $1) AS total
                  FROM users.user_follows WHERE {mine} = $1 {keyset}
                 ORDER BY created_at DESC, {other} DESC LIMIT $2""",  # noqa: S608
            *params,
        )
        if rows:
            total = rows[0]["total"]
        else:
            total = await self._pool.fetchval(
                f"SELECT {counter} FROM users.user_stats WHERE user_id = $1", user_id  # noqa: S608
            )
            if total is None:
                raise NotFound(f"user {user_id} not found")
        return [Follow(r["follower_id"], r["following_id"], r["created_at"]) for r in rows], int(total or 0)

    async def is_following(self, follower: uuid.UUID, candidates: Sequence[uuid.UUID]) -> list[Follow]:
        rows = await self._pool.fetch(
            "SELECT follower_id, following_id, created_at FROM users.user_follows "
            "WHERE follower_id = $1 AND following_id = ANY($2::uuid[])",
            follower, list(candidates),
        )
        return [Follow(r["follower_id"], r["following_id"], r["created_at"]) for r in rows]

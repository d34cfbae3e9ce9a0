"""Everything after sign-in: refresh-token rotation, validation, listing and revocation of sessions.

Refresh rotation is strict (RFC 9700 section 4.14.2): each refresh token works once. Presenting one that
was already rotated means two parties hold it, and the session is revoked for both. The cost is that a
client which loses a Refresh response and retries with the old token is signed out; that is the intended
trade. The user's status is checked *before* rotating, so an unreachable user service fails the call
without consuming the token.

Authorization of listing and revocation happens here, where the data lives: a session is revoked through
RevokeSession only when the caller's user id owns it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from redis.exceptions import RedisError

from mintplane.api.auth.v1 import auth_pb2
from mintplane.api.common.v1 import common_pb2
from mintplane.auth.cache import SessionCache
from mintplane.auth.directory import Identity, UserState
from mintplane.auth.errors import outcomes_for
from mintplane.auth.keys import AccessClaims
from mintplane.auth.repository import AuthRepository, LoginEventRecord, SessionRecord
from mintplane.auth.settings import AuthSettings
from mintplane.auth.signin import Clock, utc_now
from mintplane.auth.siwe_message import normalize_address
from mintplane.auth.tokens import (
    IssuedTokens,
    TokenIssuer,
    hash_refresh_token,
    is_refresh_token_shaped,
    new_refresh_token,
)
from mintplane.common import pagination
from mintplane.common.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from mintplane.common.log import get_logger

log = get_logger(__name__)


def parse_uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError):
        raise InvalidArgument(f"{field} must be a UUID") from None


@dataclass(frozen=True, slots=True)
class Validated:
    claims: AccessClaims
    session_expires_at: datetime


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str
    total_size: int = 0


class SessionService:
    def __init__(
        self, *, settings: AuthSettings, repo: AuthRepository, cache: SessionCache, issuer: TokenIssuer,
        identity: Identity, clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._cache = cache
        self._issuer = issuer
        self._identity = identity
        self._clock = clock

    # ------------------------------------------------------------------------------------- refresh

    async def refresh(self, refresh_token: str) -> tuple[SessionRecord, IssuedTokens]:
        if not is_refresh_token_shaped(refresh_token):
            raise Unauthenticated("refresh token is not valid")
        presented = hash_refresh_token(refresh_token)
        session = await self._repo.session_by_refresh_hash(presented)
        if session is None:
            await self._refuse_reuse(presented)
            raise Unauthenticated("refresh token is not valid")
        now = self._clock()
        if session.revoked_at is not None:
            raise Unauthenticated("session has been revoked; sign in again")
        if session.expires_at <= now:
            raise Unauthenticated("session has expired; sign in again")
        state = await self._identity.user_state(session.user_id)
        if state is not UserState.ACTIVE:
            await self._revoke(session.session_id, whole_user=True, reason="user_blocked")
            raise PermissionDenied(f"the account is {state.value}; its sessions have been revoked")

        new_token, new_hash = new_refresh_token()
        rotated = await self._repo.rotate_refresh(presented, new_hash, self._settings.auth_refresh_history_size)
        if rotated is None:  # a concurrent Refresh with the same token won the swap: that is reuse too
            await self._refuse_reuse(presented)
            raise Unauthenticated("refresh token is not valid")
        return rotated, self._issuer.issue(rotated, new_token, self._clock())

    async def _refuse_reuse(self, presented_hash: str) -> None:
        session_id = await self._repo.revoke_for_reuse(presented_hash)
        if session_id is None:
            return
        log.warning("rotated refresh token presented again; session revoked", session_id=session_id)
        await self._forget([session_id])
        raise Unauthenticated("refresh token was already used; the session has been revoked, sign in again")

    # ------------------------------------------------------------------------------------- validation

    async def validate(self, access_token: str) -> Validated:
        claims = self._issuer.verify(access_token)
        now = self._clock()
        cached = None
        try:
            cached = await self._cache.get(claims.session_id)
        except RedisError:
            log.warning("session cache unavailable; reading PostgreSQL")
        if cached is not None:
            if not cached.active:
                raise Unauthenticated("session has been revoked")
            if cached.user_id != claims.user_id:
                raise Unauthenticated("access token does not match its session")
            if cached.expires_at <= now.timestamp():
                raise Unauthenticated("session has expired")
            return Validated(claims, datetime.fromtimestamp(cached.expires_at, UTC))

        session = await self._repo.touch_session(parse_uuid(claims.session_id, "sid"))
        if session is None or session.user_id != claims.user_id:
            raise Unauthenticated("access token does not match a session")
        if session.revoked_at is not None:
            await self._forget([session.session_id])
            raise Unauthenticated("session has been revoked")
        if session.expires_at <= now:
            raise Unauthenticated("session has expired")
        try:
            await self._cache.remember_active(session.session_id, session.user_id, session.expires_at, now)
        except RedisError:
            log.warning("could not cache session state", session_id=session.session_id)
        return Validated(claims, session.expires_at)

    # ------------------------------------------------------------------------------------- revocation

    async def sign_out(self, session_id: str, *, all_sessions: bool) -> int:
        found, revoked = await self._repo.revoke_sessions(
            parse_uuid(session_id, "session_id"), whole_user=all_sessions, reason="sign_out"
        )
        if not found:
            raise NotFound("session not found")
        await self._forget(revoked)
        return len(revoked)

    async def revoke(self, user_id: str, session_id: str) -> SessionRecord:
        user_id = parse_uuid(user_id, "user_id")
        session_id = parse_uuid(session_id, "session_id")
        session = await self._repo.revoke_owned_session(user_id, session_id, "revoked")
        if session is None:
            owner = await self._repo.session_owner(session_id)
            if owner is None:
                raise NotFound("session not found")
            raise PermissionDenied("the session belongs to another user")
        await self._forget([session.session_id])
        return session

    async def _revoke(self, session_id: str, *, whole_user: bool, reason: str) -> None:
        _, revoked = await self._repo.revoke_sessions(session_id, whole_user=whole_user, reason=reason)
        await self._forget(revoked)

    async def _forget(self, session_ids: list[str]) -> None:
        try:
            await self._cache.remember_revoked(session_ids)
        except RedisError:
            log.warning("could not mark revoked sessions in the cache", count=len(session_ids))

    # ------------------------------------------------------------------------------------- listing

    async def list_sessions(
        self, user_id: str, *, include_inactive: bool, page: common_pb2.PageRequest
    ) -> Page[SessionRecord]:
        user_id = parse_uuid(user_id, "user_id")
        limit = pagination.page_size(page.page_size)
        scope = pagination.scope_of(user_id, include_inactive)
        after = pagination.decode(page.page_token, "sessions", scope)
        rows, total = await self._repo.list_sessions(
            user_id, include_inactive=include_inactive, after=after, limit=limit + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows else None
        token = (
            pagination.encode("sessions", scope, pagination.Cursor(last.created_at, uuid.UUID(last.session_id)))
            if more and last
            else ""
        )
        return Page(items=rows, next_page_token=token, total_size=total)

    async def list_login_events(
        self, *, user_id: str, address: str, result: auth_pb2.LoginResult.ValueType, page: common_pb2.PageRequest
    ) -> Page[LoginEventRecord]:
        if not user_id and not address:
            raise InvalidArgument("set user_id or address")
        user = parse_uuid(user_id, "user_id") if user_id else None
        try:
            account = normalize_address(address) if address else None
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        results = outcomes_for(result) if result != auth_pb2.LOGIN_RESULT_UNSPECIFIED else None
        if results == []:
            raise InvalidArgument("result is not a known LoginResult")
        limit = pagination.page_size(page.page_size)
        scope = pagination.scope_of(user, account, result)
        after = pagination.decode(page.page_token, "login_events", scope)
        rows = await self._repo.list_login_events(
            user_id=user, address=account, results=results, after=after, limit=limit + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        last_event = rows[-1] if rows else None
        token = (
            pagination.encode("login_events", scope, pagination.Cursor(last_event.timestamp, uuid.UUID(last_event.id)))
            if more and last_event and last_event.timestamp
            else ""
        )
        return Page(items=rows, next_page_token=token)

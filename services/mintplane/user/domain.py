"""What the user service does, in plain functions over parsed values: validation, authorization, the
cache, and the repository. The gRPC handlers only translate messages to these calls and back.

Authorization lives here, next to the data: the gateway passes the signed-in user as the actor, and a
user may only change (or read the private parts of) their own account.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mintplane.api.user.v1 import user_pb2
from mintplane.common import pagination
from mintplane.common.errors import InvalidArgument, NotFound, PermissionDenied
from mintplane.common.log import get_logger
from mintplane.user import convert, text_rules, usernames
from mintplane.user.cache import UserCache
from mintplane.user.repository import DELETED, Follow, UserRepository

log = get_logger(__name__)


def require_self(actor: uuid.UUID, owner: uuid.UUID, what: str) -> None:
    if actor != owner:
        raise PermissionDenied(f"you may only {what} of your own account")


def _mask_paths(paths: Sequence[str], writable: Iterable[str]) -> list[str]:
    allowed = set(writable)
    if not paths:
        raise InvalidArgument("update_mask is required: name the fields to change")
    result: list[str] = []
    for path in paths:
        if path == "updated_at":
            raise InvalidArgument("update_mask: updated_at is output only")
        if path not in allowed:
            raise InvalidArgument(f"update_mask: unknown path {path!r}; writable: {', '.join(sorted(allowed))}")
        if path not in result:
            result.append(path)
    return result


def _or_none(value: str) -> str | None:
    return value or None


# Profile path -> (column, validator of the message's value into the column's value).
_PROFILE_FIELDS: Mapping[str, tuple[str, Callable[[user_pb2.Profile], Any]]] = {
    "username": ("username", lambda p: usernames.normalize_username(p.username) if p.username.strip() else None),
    "display_name": (
        "display_name",
        lambda p: _or_none(text_rules.bounded_text("display_name", p.display_name, text_rules.DISPLAY_NAME_MAX)),
    ),
    "avatar_url": ("avatar_url", lambda p: _or_none(text_rules.https_url("avatar_url", p.avatar_url))),
    "banner_url": ("banner_url", lambda p: _or_none(text_rules.https_url("banner_url", p.banner_url))),
    "bio": ("bio", lambda p: _or_none(text_rules.bounded_text("bio", p.bio, text_rules.BIO_MAX, multiline=True))),
    "locale": ("locale", lambda p: _or_none(text_rules.language_tag("locale", p.locale))),
    "timezone": ("timezone", lambda p: _or_none(text_rules.time_zone(p.timezone))),
    "socials": ("socials_json", lambda p: text_rules.socials(dict(p.socials)) or None),
}


def _enum(value: int, mapping: Mapping[int, str], field: str) -> str | None:
    if value == 0:
        return None  # UNSPECIFIED in the mask: back to the default
    if value not in mapping:
        raise InvalidArgument(f"{field}: unknown value {value}")
    return mapping[value]


_PREFERENCE_FIELDS: Mapping[str, Callable[[user_pb2.Preferences], Any]] = {
    "email_notifications": lambda p: p.email_notifications,
    "push_notifications": lambda p: p.push_notifications,
    "marketing_emails": lambda p: p.marketing_emails,
    "show_activity": lambda p: p.show_activity,
    "language": lambda p: _or_none(text_rules.language_tag("language", p.language)),
    "currency": lambda p: _or_none(text_rules.currency(p.currency)),
    "theme": lambda p: _enum(p.theme, convert.THEME_TO_DB, "theme"),
    "privacy_level": lambda p: _enum(p.privacy_level, convert.PRIVACY_TO_DB, "privacy_level"),
}


@dataclass(frozen=True)
class FollowPage:
    follows: list[Follow]
    next_token: str
    total: int


class Users:
    def __init__(self, repository: UserRepository, cache: UserCache, *, admins: frozenset[uuid.UUID]) -> None:
        self._repo = repository
        self._cache = cache
        self._admins = admins

    # ----------------------------------------------------------------------------------------- reads

    async def get_many(self, user_ids: Sequence[uuid.UUID]) -> list[user_pb2.User]:
        """Users in request order, unknown ids omitted; cache first, PostgreSQL for the misses."""
        cached, generations = await self._cache.get_many(user_ids)
        missing = [u for u in user_ids if u not in cached]
        loaded = [convert.user(row) for row in await self._repo.get_users(missing)]
        await self._cache.store_many(loaded, generations)
        by_id = {**cached, **{uuid.UUID(u.user_id): u for u in loaded}}
        return [by_id[u] for u in user_ids if u in by_id]

    async def get(self, user_id: uuid.UUID) -> user_pb2.User:
        found = await self.get_many([user_id])
        if not found:
            raise NotFound(f"user {user_id} not found")
        return found[0]

    async def get_by_username(self, raw: str) -> user_pb2.User:
        name = usernames.lookup_key(raw)
        if name is None:
            raise NotFound(f"no user is named {raw[:64]!r}")
        user_id = await self._cache.user_id_for(name)
        if user_id is not None:
            hit = await self.get_many([user_id])
            if hit and hit[0].profile.username == name:
                return hit[0]
        user_id = await self._repo.user_id_by_username(name)
        if user_id is not None:
            found = await self.get_many([user_id])
            if found and found[0].profile.username == name:
                await self._cache.remember_username(name, user_id)
                return found[0]
        raise NotFound(f"no user is named {name!r}")

    async def get_preferences(self, actor: uuid.UUID, user_id: uuid.UUID) -> user_pb2.Preferences:
        require_self(actor, user_id, "read the preferences")
        row = await self._repo.get_preferences(user_id)
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return convert.preferences(row)

    async def get_stats(self, user_ids: Sequence[uuid.UUID]) -> list[user_pb2.UserStats]:
        return [convert.stats(row) for row in await self._repo.get_stats(user_ids)]

    async def get_one_stats(self, user_id: uuid.UUID) -> user_pb2.UserStats:
        found = await self.get_stats([user_id])
        if not found:
            raise NotFound(f"user {user_id} not found")
        return found[0]

    # ---------------------------------------------------------------------------------------- writes

    async def create(self, user_id: uuid.UUID | None, username: str, display_name: str) -> tuple[user_pb2.User, bool]:
        name = usernames.normalize_username(username) if username.strip() else None
        shown = _or_none(text_rules.bounded_text("display_name", display_name, text_rules.DISPLAY_NAME_MAX))
        row, created = await self._repo.create_user(user_id or uuid.uuid4(), name, shown)
        user = convert.user(row)
        if created:
            log.info("user created", user_id=user.user_id)
        return user, created

    async def update_profile(
        self, actor: uuid.UUID, user_id: uuid.UUID, profile: user_pb2.Profile, paths: Sequence[str]
    ) -> user_pb2.User:
        require_self(actor, user_id, "change the profile")
        values = {}
        for path in _mask_paths(paths, _PROFILE_FIELDS):
            column, validate = _PROFILE_FIELDS[path]
            values[column] = validate(profile)
        row, old_username = await self._repo.update_profile(user_id, values)
        await self._cache.invalidate(user_id, old_username, values.get("username"))
        return convert.user(row)

    async def set_status(
        self, actor: uuid.UUID, user_id: uuid.UUID, status: int, reason: str
    ) -> user_pb2.User:
        target = convert.STATUS_TO_DB.get(status)
        if target is None:
            raise InvalidArgument("status must be ACTIVE, SUSPENDED or DELETED")
        if actor not in self._admins and not (actor == user_id and target == DELETED):
            raise PermissionDenied("only an administrator may change another account's status or suspend one")
        why = text_rules.bounded_text("reason", reason, 500)
        row, old_username = await self._repo.set_status(user_id, target)
        await self._cache.invalidate(user_id, old_username)
        log.info("user status changed", user_id=str(user_id), actor_user_id=str(actor), status=target, reason=why)
        return convert.user(row)

    async def update_preferences(
        self, actor: uuid.UUID, user_id: uuid.UUID, preferences: user_pb2.Preferences, paths: Sequence[str]
    ) -> user_pb2.Preferences:
        require_self(actor, user_id, "change the preferences")
        values = {path: _PREFERENCE_FIELDS[path](preferences) for path in _mask_paths(paths, _PREFERENCE_FIELDS)}
        return convert.preferences(await self._repo.update_preferences(user_id, values))

    # --------------------------------------------------------------------------------------- follows

    async def follow(self, actor: uuid.UUID, follower: uuid.UUID, following: uuid.UUID) -> tuple[Follow, bool]:
        require_self(actor, follower, "follow others in the name")
        if follower == following:
            raise InvalidArgument("a user cannot follow themselves")
        return await self._repo.follow(follower, following)

    async def unfollow(self, actor: uuid.UUID, follower: uuid.UUID, following: uuid.UUID) -> bool:
        require_self(actor, follower, "unfollow others in the name")
        if follower == following:
            raise InvalidArgument("a user cannot follow themselves")
        return await self._repo.unfollow(follower, following)

    async def list_follows(self, user_id: uuid.UUID, *, followers: bool, size: int, token: str) -> FollowPage:
        kind = "followers" if followers else "following"
        limit = pagination.page_size(size)
        after = pagination.decode(token, kind, str(user_id))
        follows, total = await self._repo.list_follows(user_id, followers=followers, after=after, limit=limit + 1)
        next_token = ""
        if len(follows) > limit:
            follows = follows[:limit]
            last = follows[-1]
            other = last.follower_id if followers else last.following_id
            next_token = pagination.encode(kind, str(user_id), pagination.Cursor(last.created_at, other))
        return FollowPage(follows, next_token, total)

    async def is_following(self, follower: uuid.UUID, candidates: Sequence[uuid.UUID]) -> list[Follow]:
        return await self._repo.is_following(follower, candidates) if candidates else []

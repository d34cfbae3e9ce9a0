"""Users: public profiles, the follow graph, and the signed-in viewer's own profile and preferences."""

# strawberry.field/mutation(...) with keyword arguments are typed as Any (they double as field specs).
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from google.protobuf.field_mask_pb2 import FieldMask

from mintplane.api.common.v1 import common_pb2
from mintplane.api.user.v1 import user_pb2
from mintplane.gateway.context import Identity, Info
from mintplane.gateway.errors import BadUserInput, NotFound
from mintplane.gateway.pagination import PageWindow, page_window, paginate
from mintplane.gateway.schema.common import PageInfo, or_none, parse_id, timestamp
from mintplane.gateway.schema.wallets import Wallet

if TYPE_CHECKING:
    from mintplane.gateway.schema.catalog import CollectionKey, TokenConnection

_CATALOG = "mintplane.gateway.schema.catalog"


@strawberry.enum(description="Account status.")
class UserStatus(Enum):
    UNSPECIFIED = "UNSPECIFIED"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    DELETED = "DELETED"


@strawberry.enum(description="UI theme preference.")
class Theme(Enum):
    SYSTEM = "SYSTEM"
    LIGHT = "LIGHT"
    DARK = "DARK"


@strawberry.enum(description="Who can see a user's profile details and activity.")
class PrivacyLevel(Enum):
    PUBLIC = "PUBLIC"
    FOLLOWERS = "FOLLOWERS"
    PRIVATE = "PRIVATE"


_STATUSES = {
    user_pb2.USER_STATUS_ACTIVE: UserStatus.ACTIVE,
    user_pb2.USER_STATUS_SUSPENDED: UserStatus.SUSPENDED,
    user_pb2.USER_STATUS_DELETED: UserStatus.DELETED,
}
_THEMES = {user_pb2.THEME_SYSTEM: Theme.SYSTEM, user_pb2.THEME_LIGHT: Theme.LIGHT, user_pb2.THEME_DARK: Theme.DARK}
_THEMES_TO_PROTO = {value: key for key, value in _THEMES.items()}
_PRIVACY = {
    user_pb2.PRIVACY_LEVEL_PUBLIC: PrivacyLevel.PUBLIC,
    user_pb2.PRIVACY_LEVEL_FOLLOWERS: PrivacyLevel.FOLLOWERS,
    user_pb2.PRIVACY_LEVEL_PRIVATE: PrivacyLevel.PRIVATE,
}
_PRIVACY_TO_PROTO = {value: key for key, value in _PRIVACY.items()}


@strawberry.type(description="A social handle, e.g. network `x`, handle `@alice`.")
class Social:
    network: str
    handle: str


@strawberry.type(description="Counters and volumes of a user. Volumes are decimal strings in native units.")
class UserStats:
    collections_count: int
    items_count: int
    listings_count: int
    sales_count: int
    purchases_count: int
    volume_sold: str
    volume_purchased: str
    followers_count: int
    following_count: int
    updated_at: datetime | None

    @classmethod
    def from_proto(cls, stats: user_pb2.UserStats) -> UserStats:
        return cls(
            collections_count=stats.collections_count, items_count=stats.items_count,
            listings_count=stats.listings_count, sales_count=stats.sales_count,
            purchases_count=stats.purchases_count, volume_sold=stats.volume_sold or "0",
            volume_purchased=stats.volume_purchased or "0", followers_count=stats.followers_count,
            following_count=stats.following_count, updated_at=timestamp(stats, "updated_at"),
        )


@strawberry.type(description="The viewer's private preferences.")
class Preferences:
    email_notifications: bool
    push_notifications: bool
    marketing_emails: bool
    language: str | None
    currency: str | None
    theme: Theme | None
    privacy_level: PrivacyLevel | None
    show_activity: bool
    updated_at: datetime | None

    @classmethod
    def from_proto(cls, prefs: user_pb2.Preferences) -> Preferences:
        return cls(
            email_notifications=prefs.email_notifications, push_notifications=prefs.push_notifications,
            marketing_emails=prefs.marketing_emails, language=or_none(prefs.language),
            currency=or_none(prefs.currency), theme=_THEMES.get(prefs.theme),
            privacy_level=_PRIVACY.get(prefs.privacy_level), show_activity=prefs.show_activity,
            updated_at=timestamp(prefs, "updated_at"),
        )


@strawberry.interface(description="What every user shows: public profile, counters, wallets and follows.")
class Account:
    id: strawberry.ID
    username: str | None
    display_name: str | None
    avatar_url: str | None
    banner_url: str | None
    bio: str | None
    locale: str | None
    timezone: str | None
    socials: list[Social]
    status: UserStatus
    created_at: datetime | None
    updated_at: datetime | None

    @staticmethod
    def fields_of(user: user_pb2.User) -> dict[str, Any]:
        profile = user.profile
        return {
            "id": strawberry.ID(user.user_id), "username": or_none(profile.username),
            "display_name": or_none(profile.display_name), "avatar_url": or_none(profile.avatar_url),
            "banner_url": or_none(profile.banner_url), "bio": or_none(profile.bio),
            "locale": or_none(profile.locale), "timezone": or_none(profile.timezone),
            "socials": [Social(network=key, handle=value) for key, value in sorted(profile.socials.items())],
            "status": _STATUSES.get(user.status, UserStatus.UNSPECIFIED),
            "created_at": timestamp(user, "created_at"), "updated_at": timestamp(user, "updated_at"),
        }

    @strawberry.field(description="Counters and volumes (batched across the users of a response).")
    async def stats(self, info: Info) -> UserStats | None:
        stats = await info.context.loaders.stats.load(str(self.id))
        return UserStats.from_proto(stats) if stats is not None else None

    @strawberry.field(description="Linked wallets, primary first (batched across the users of a response).")
    async def wallets(self, info: Info) -> list[Wallet]:
        return [Wallet.from_proto(wallet) for wallet in await info.context.loaders.wallets.load(str(self.id))]

    @strawberry.field(description="Who follows this user, most recent first.")
    async def followers(self, info: Info, first: int = 20, after: str | None = None) -> UserConnection:
        window = page_window(first, after)
        reply = await info.context.clients.user.list_followers(
            user_pb2.ListFollowersRequest(user_id=str(self.id), page=window.request)
        )
        return await UserConnection.build(info, window, reply.follows, reply.page, lambda edge: edge.follower_id)

    @strawberry.field(description="Whom this user follows, most recent first.")
    async def following(self, info: Info, first: int = 20, after: str | None = None) -> UserConnection:
        window = page_window(first, after)
        reply = await info.context.clients.user.list_following(
            user_pb2.ListFollowingRequest(user_id=str(self.id), page=window.request)
        )
        return await UserConnection.build(info, window, reply.follows, reply.page, lambda edge: edge.following_id)

    @strawberry.field(description="Tokens held by any of this user's linked wallets, optionally of one collection.")
    async def tokens(
        self, info: Info, first: int = 20, after: str | None = None,
        collection: Annotated[CollectionKey, strawberry.lazy(_CATALOG)] | None = None,
    ) -> Annotated[TokenConnection, strawberry.lazy(_CATALOG)]:
        from mintplane.gateway.schema.catalog import tokens_of_user  # catalog imports this module

        return await tokens_of_user(info, str(self.id), first, after, collection)

    @strawberry.field(description="Whether the signed-in viewer follows this user; null when signed out.")
    async def viewer_is_following(self, info: Info) -> bool | None:
        viewer = await info.context.viewer_or_none()
        if viewer is None:
            return None
        if viewer.user_id == self.id:
            return False
        return await info.context.loaders.follows(viewer.user_id).load(str(self.id))


@strawberry.type(description="A user with their public profile.")
class User(Account):
    @classmethod
    def from_proto(cls, user: user_pb2.User) -> User:
        return cls(**cls.fields_of(user))


@strawberry.type(description="The signed-in user: their public profile plus what only they may see.")
class Viewer(Account):
    address: str = strawberry.field(description="Address that signed in for this session.")
    session_id: strawberry.ID = strawberry.field(description="Session of the presented access token.")

    @classmethod
    def of(cls, user: user_pb2.User, identity: Identity) -> Viewer:
        return cls(**Account.fields_of(user), address=identity.address, session_id=strawberry.ID(identity.session_id))

    @strawberry.field(description="Private preferences.")
    async def preferences(self, info: Info) -> Preferences:
        request = user_pb2.GetPreferencesRequest(user_id=str(self.id), actor_user_id=str(self.id))
        reply = await info.context.clients.user.get_preferences(request)
        return Preferences.from_proto(reply.preferences)


@strawberry.type
class UserEdge:
    cursor: str
    node: User
    followed_at: datetime | None = strawberry.field(description="When this follow relation was created.")


@strawberry.type(description="A page of users (Relay cursor connection).")
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Total size when the service counts it cheaply, else 0.")

    @classmethod
    async def build(
        cls, info: Info, window: PageWindow, follows: Sequence[user_pb2.FollowEdge],
        page: common_pb2.PageResponse, user_of: Callable[[user_pb2.FollowEdge], str],
    ) -> UserConnection:
        """One page of follow edges with their users, loaded in one batch."""
        cut = paginate(window, list(follows), page)
        users = await info.context.loaders.users.load_many([user_of(edge) for _, edge in cut.items])
        edges = [
            UserEdge(cursor=cursor, node=User.from_proto(user), followed_at=timestamp(edge, "created_at"))
            for (cursor, edge), user in zip(cut.items, users, strict=True)
            if user is not None  # a user deleted between the two reads is left out, not an error
        ]
        return cls(edges=edges, page_info=PageInfo.of(cut), total_count=cut.total_count)


@strawberry.input(description="Social handle to set.")
class SocialInput:
    network: str
    handle: str


@strawberry.input(description="Profile fields to change. Omitted fields are kept; null or \"\" clears a field.")
class UpdateProfileInput:
    username: str | None = strawberry.UNSET
    display_name: str | None = strawberry.UNSET
    avatar_url: str | None = strawberry.UNSET
    banner_url: str | None = strawberry.UNSET
    bio: str | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET
    timezone: str | None = strawberry.UNSET
    socials: list[SocialInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces every social handle."
    )


@strawberry.input(description="Preferences to change. Omitted (or null) fields are kept.")
class UpdatePreferencesInput:
    email_notifications: bool | None = strawberry.UNSET
    push_notifications: bool | None = strawberry.UNSET
    marketing_emails: bool | None = strawberry.UNSET
    language: str | None = strawberry.UNSET
    currency: str | None = strawberry.UNSET
    theme: Theme | None = strawberry.UNSET
    privacy_level: PrivacyLevel | None = strawberry.UNSET
    show_activity: bool | None = strawberry.UNSET


_PROFILE_TEXT = ("username", "display_name", "avatar_url", "banner_url", "bio", "locale", "timezone")


def profile_update(input_: UpdateProfileInput) -> tuple[user_pb2.Profile, list[str]]:
    """The Profile message and update-mask paths for the fields the client sent."""
    profile = user_pb2.Profile()
    paths: list[str] = []
    for name in _PROFILE_TEXT:
        value = getattr(input_, name)
        if value is strawberry.UNSET:
            continue
        setattr(profile, name, value or "")
        paths.append(name)
    if input_.socials is not strawberry.UNSET:
        for social in input_.socials or []:
            profile.socials[social.network] = social.handle
        paths.append("socials")
    if not paths:
        raise BadUserInput("Name at least one profile field to change.")
    return profile, paths


def preferences_update(input_: UpdatePreferencesInput) -> tuple[user_pb2.Preferences, list[str]]:
    prefs = user_pb2.Preferences()
    paths: list[str] = []
    for name in ("email_notifications", "push_notifications", "marketing_emails", "show_activity",
                 "language", "currency"):
        value = getattr(input_, name)
        if value is strawberry.UNSET or value is None:
            continue
        setattr(prefs, name, value)
        paths.append(name)
    if input_.theme is not strawberry.UNSET and input_.theme is not None:
        prefs.theme = _THEMES_TO_PROTO[input_.theme]
        paths.append("theme")
    if input_.privacy_level is not strawberry.UNSET and input_.privacy_level is not None:
        prefs.privacy_level = _PRIVACY_TO_PROTO[input_.privacy_level]
        paths.append("privacy_level")
    if not paths:
        raise BadUserInput("Name at least one preference to change.")
    return prefs, paths


async def load_user(info: Info, user_id: str) -> user_pb2.User:
    user = await info.context.loaders.users.load(user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def load_viewer(info: Info, identity: Identity) -> Viewer:
    return Viewer.of(await load_user(info, identity.user_id), identity)


@strawberry.type
class FollowPayload:
    user: User = strawberry.field(description="The user followed or unfollowed.")
    changed: bool = strawberry.field(description="False when nothing changed (already followed / not followed).")


@strawberry.type
class UserQuery:
    @strawberry.field(description="The signed-in user; null without an Authorization header.")
    async def me(self, info: Info) -> Viewer | None:
        if not info.context.has_credentials:
            return None
        return await load_viewer(info, await info.context.viewer())

    @strawberry.field(description="A user by username (case-insensitive).")
    async def user(self, info: Info, username: str) -> User | None:
        reply = await info.context.clients.user.get_user_by_username(
            user_pb2.GetUserByUsernameRequest(username=username)
        )
        info.context.loaders.users.prime(reply.user.user_id, reply.user)
        return User.from_proto(reply.user)

    @strawberry.field(description="A user by id.")
    async def user_by_id(self, info: Info, id: strawberry.ID) -> User | None:
        return User.from_proto(await load_user(info, parse_id(id, "id")))


@strawberry.type
class UserMutation:
    @strawberry.mutation(description="Changes the viewer's profile fields named in `input`.")
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> Viewer:
        identity = await info.context.viewer()
        profile, paths = profile_update(input)
        reply = await info.context.clients.user.update_profile(user_pb2.UpdateProfileRequest(
            user_id=identity.user_id, profile=profile, update_mask=FieldMask(paths=paths),
            actor_user_id=identity.user_id,
        ))
        info.context.loaders.forget_user(identity.user_id)
        info.context.loaders.users.prime(identity.user_id, reply.user)
        return Viewer.of(reply.user, identity)

    @strawberry.mutation(description="Changes the viewer's preferences named in `input`.")
    async def update_preferences(self, info: Info, input: UpdatePreferencesInput) -> Preferences:
        identity = await info.context.viewer()
        prefs, paths = preferences_update(input)
        reply = await info.context.clients.user.update_preferences(user_pb2.UpdatePreferencesRequest(
            user_id=identity.user_id, preferences=prefs, update_mask=FieldMask(paths=paths),
            actor_user_id=identity.user_id,
        ))
        return Preferences.from_proto(reply.preferences)

    @strawberry.mutation(description="The viewer follows a user. Idempotent.")
    async def follow(self, info: Info, user_id: strawberry.ID) -> FollowPayload:
        identity = await info.context.viewer()
        target = parse_id(user_id, "userId")
        if target == identity.user_id:
            raise BadUserInput("You cannot follow yourself.")
        reply = await info.context.clients.user.follow(
            user_pb2.FollowRequest(follower_id=identity.user_id, following_id=target, actor_user_id=identity.user_id)
        )
        return await _follow_payload(info, identity.user_id, target, reply.created)

    @strawberry.mutation(description="The viewer stops following a user. Idempotent.")
    async def unfollow(self, info: Info, user_id: strawberry.ID) -> FollowPayload:
        identity = await info.context.viewer()
        target = parse_id(user_id, "userId")
        reply = await info.context.clients.user.unfollow(
            user_pb2.UnfollowRequest(follower_id=identity.user_id, following_id=target, actor_user_id=identity.user_id)
        )
        return await _follow_payload(info, identity.user_id, target, reply.removed)


async def _follow_payload(info: Info, viewer_id: str, target: str, changed: bool) -> FollowPayload:
    info.context.loaders.forget_user(viewer_id)
    info.context.loaders.forget_user(target)
    return FollowPayload(user=User.from_proto(await load_user(info, target)), changed=changed)

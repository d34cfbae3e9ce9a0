"""The user service over gRPC, in-process on an ephemeral port, against the dev stack's PostgreSQL and
Redis: usernames, profiles, preferences, status, the cache, and who may change what."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from mintplane.api.user.v1 import user_pb2 as pb
from mintplane.api.user.v1 import user_pb2_grpc
from mintplane.common.service import Resources
from mintplane.user.cache import UserCache
from mintplane.user.server import NEEDS, build_server
from mintplane.user.settings import UserSettings

pytestmark = pytest.mark.integration

ADMIN = uuid.uuid4()


class Harness:
    """A running user service, its stub, and the ids it created (deleted at the end)."""

    def __init__(self, stub: user_pb2_grpc.UserServiceStub, resources: Resources) -> None:
        self.stub = stub
        self.resources = resources
        self.created: list[str] = []

    async def user(self, username: str = "", display_name: str = "") -> pb.User:
        response = await self.stub.CreateUser(pb.CreateUserRequest(username=username, display_name=display_name))
        self.created.append(response.user.user_id)
        return response.user


@pytest.fixture(scope="module")
async def svc() -> AsyncIterator[Harness]:
    settings = UserSettings(grpc_port=0, admin_user_ids=frozenset({ADMIN}))
    resources = await Resources.open(settings, NEEDS, name="user-test")
    built = await build_server(settings, resources)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    harness = Harness(user_pb2_grpc.UserServiceStub(channel), resources)
    try:
        yield harness
    finally:
        await resources.pg.execute("DELETE FROM users.users WHERE user_id = ANY($1::uuid[])", harness.created)
        await channel.close()
        await built.server.stop(None)
        await resources.close()


def _handle() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    code: grpc.StatusCode = caught.value.code()
    assert caught.value.details(), "errors carry a message"
    assert "Traceback" not in (caught.value.details() or "")
    return code


def _profile_update(actor: str, user: str, paths: list[str], **fields: Any) -> pb.UpdateProfileRequest:
    return pb.UpdateProfileRequest(
        user_id=user, actor_user_id=actor, profile=pb.Profile(**fields), update_mask=FieldMask(paths=paths)
    )


# ------------------------------------------------------------------------------------------ usernames


async def test_create_user_is_idempotent_and_starts_with_defaults(svc: Harness) -> None:
    user_id = str(uuid.uuid4())
    first = await svc.stub.CreateUser(pb.CreateUserRequest(user_id=user_id, display_name="Ann"))
    svc.created.append(user_id)
    again = await svc.stub.CreateUser(pb.CreateUserRequest(user_id=user_id, display_name="Other"))
    assert (first.created, again.created) == (True, False)
    assert again.user.profile.display_name == "Ann" and again.user.status == pb.USER_STATUS_ACTIVE
    prefs = await svc.stub.GetPreferences(pb.GetPreferencesRequest(user_id=user_id, actor_user_id=user_id))
    assert prefs.preferences.theme == pb.THEME_SYSTEM and prefs.preferences.email_notifications
    stats = await svc.stub.GetStats(pb.GetStatsRequest(user_id=user_id))
    assert (stats.stats.followers_count, stats.stats.volume_sold) == (0, "0")


async def test_hostile_usernames_are_refused_through_the_api(svc: Harness) -> None:
    taken = _handle()
    owner = await svc.user(username=taken)
    hostile = [
        "\u0430dmin",  # Cyrillic a
        "\uff41\uff44\uff4d\uff49\uff4e",  # fullwidth admin -> reserved
        f"{taken[:4]}\u200d{taken[4:]}",  # zero-width joiner inside an existing handle
        f"{taken}\u202e",  # RTL override
        "b\u043eb_" + uuid.uuid4().hex[:6],  # Cyrillic o
        "support",
        "Root",
        "adm1n",
        "mintplane_help",
        "ab",
        "x" * 31,
        "_under",
        "has space",
    ]
    codes = []
    for name in hostile:
        codes.append(await _code(svc.stub.CreateUser(pb.CreateUserRequest(username=name))))
        codes.append(await _code(svc.stub.UpdateProfile(
            _profile_update(owner.user_id, owner.user_id, ["username"], username=name))))
    assert set(codes) == {grpc.StatusCode.INVALID_ARGUMENT}
    # a case variant and a fullwidth variant of an existing handle collide with it
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in taken.upper())
    for variant in (taken.upper(), fullwidth):
        code = await _code(svc.stub.CreateUser(pb.CreateUserRequest(username=variant)))
        assert code == grpc.StatusCode.ALREADY_EXISTS
    other = await svc.user()
    assert await _code(svc.stub.UpdateProfile(
        _profile_update(other.user_id, other.user_id, ["username"], username=taken.upper()))) == (
        grpc.StatusCode.ALREADY_EXISTS)
    still = await svc.stub.GetUser(pb.GetUserRequest(user_id=owner.user_id))
    assert still.user.profile.username == taken


async def test_username_lookup_is_case_insensitive_and_follows_renames(svc: Harness) -> None:
    old, new = _handle(), _handle()
    user = await svc.user(username=old)
    found = await svc.stub.GetUserByUsername(pb.GetUserByUsernameRequest(username=old.upper()))
    assert found.user.user_id == user.user_id
    await svc.stub.UpdateProfile(_profile_update(user.user_id, user.user_id, ["username"], username=new))
    assert await _code(svc.stub.GetUserByUsername(pb.GetUserByUsernameRequest(username=old))) == (
        grpc.StatusCode.NOT_FOUND)
    renamed = await svc.stub.GetUserByUsername(pb.GetUserByUsernameRequest(username=new))
    assert renamed.user.user_id == user.user_id
    # the freed handle can be taken by someone else, and lookups then find the new owner
    taker = await svc.user(username=old)
    assert (await svc.stub.GetUserByUsername(pb.GetUserByUsernameRequest(username=old))).user.user_id == (
        taker.user_id)
    assert await _code(svc.stub.GetUserByUsername(pb.GetUserByUsernameRequest(username="\u0430dmin"))) == (
        grpc.StatusCode.NOT_FOUND)


# ------------------------------------------------------------------------------------------- profiles


async def test_profile_update_validates_cleans_and_clears(svc: Harness) -> None:
    user = await svc.user()
    updated = await svc.stub.UpdateProfile(_profile_update(
        user.user_id, user.user_id,
        ["display_name", "bio", "avatar_url", "socials", "locale", "timezone"],
        display_name="  Ann \u202eevil\u202c\x00 ", bio="line one\nline two\x07",
        avatar_url="https://cdn.example.com/a.png", socials={"twitter": "@ann"}, locale="en-GB",
        timezone="Europe/London",
    ))
    profile = updated.user.profile
    assert profile.display_name == "Ann evil"
    assert profile.bio == "line one\nline two"
    assert dict(profile.socials) == {"x": "@ann"}
    assert (profile.locale, profile.timezone) == ("en-GB", "Europe/London")
    cleared = await svc.stub.UpdateProfile(_profile_update(user.user_id, user.user_id, ["bio", "socials"]))
    assert cleared.user.profile.bio == "" and not cleared.user.profile.socials
    assert cleared.user.profile.display_name == "Ann evil"  # not in the mask: untouched
    bad = [
        _profile_update(user.user_id, user.user_id, ["avatar_url"], avatar_url="http://x.example/a.png"),
        _profile_update(user.user_id, user.user_id, ["banner_url"], banner_url="https://127.0.0.1/a.png"),
        _profile_update(user.user_id, user.user_id, ["display_name"], display_name="x" * 51),
        _profile_update(user.user_id, user.user_id, ["bio"], bio="y" * 501),
        _profile_update(user.user_id, user.user_id, ["timezone"], timezone="Mars/Olympus"),
        _profile_update(user.user_id, user.user_id, ["updated_at"]),
        _profile_update(user.user_id, user.user_id, ["nope"]),
        _profile_update(user.user_id, user.user_id, []),
    ]
    for request in bad:
        assert await _code(svc.stub.UpdateProfile(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_preferences_use_enums_and_reset_to_defaults(svc: Harness) -> None:
    user = await svc.user()
    uid = user.user_id
    updated = await svc.stub.UpdatePreferences(pb.UpdatePreferencesRequest(
        user_id=uid, actor_user_id=uid,
        preferences=pb.Preferences(theme=pb.THEME_DARK, privacy_level=pb.PRIVACY_LEVEL_FOLLOWERS,
                                   email_notifications=False, currency="eur", language="de"),
        update_mask=FieldMask(paths=["theme", "privacy_level", "email_notifications", "currency", "language"]),
    ))
    prefs = updated.preferences
    assert (prefs.theme, prefs.privacy_level, prefs.email_notifications, prefs.currency, prefs.language) == (
        pb.THEME_DARK, pb.PRIVACY_LEVEL_FOLLOWERS, False, "EUR", "de")
    reset = await svc.stub.UpdatePreferences(pb.UpdatePreferencesRequest(
        user_id=uid, actor_user_id=uid, preferences=pb.Preferences(),
        update_mask=FieldMask(paths=["theme", "email_notifications"]),
    ))
    assert reset.preferences.theme == pb.THEME_SYSTEM
    assert reset.preferences.email_notifications is False  # booleans take the value sent
    assert reset.preferences.privacy_level == pb.PRIVACY_LEVEL_FOLLOWERS
    assert await _code(svc.stub.UpdatePreferences(pb.UpdatePreferencesRequest(
        user_id=uid, actor_user_id=uid, preferences=pb.Preferences(theme=99),  # type: ignore[arg-type]
        update_mask=FieldMask(paths=["theme"])))) == grpc.StatusCode.INVALID_ARGUMENT


# -------------------------------------------------------------------------------------- access control


async def test_no_user_can_change_or_read_another_users_private_data(svc: Harness) -> None:
    alice, bob, carol = await svc.user(), await svc.user(), await svc.user()
    a, b, c = alice.user_id, bob.user_id, carol.user_id
    mask = FieldMask(paths=["display_name"])
    attempts: dict[str, Callable[[str], Awaitable[Any]]] = {
        "UpdateProfile": lambda actor: svc.stub.UpdateProfile(pb.UpdateProfileRequest(
            user_id=b, actor_user_id=actor, profile=pb.Profile(display_name="pwned"), update_mask=mask)),
        "UpdatePreferences": lambda actor: svc.stub.UpdatePreferences(pb.UpdatePreferencesRequest(
            user_id=b, actor_user_id=actor, preferences=pb.Preferences(marketing_emails=True),
            update_mask=FieldMask(paths=["marketing_emails"]))),
        "GetPreferences": lambda actor: svc.stub.GetPreferences(
            pb.GetPreferencesRequest(user_id=b, actor_user_id=actor)),
        "SetUserStatus(suspend)": lambda actor: svc.stub.SetUserStatus(pb.SetUserStatusRequest(
            user_id=b, actor_user_id=actor, status=pb.USER_STATUS_SUSPENDED)),
        "SetUserStatus(delete)": lambda actor: svc.stub.SetUserStatus(pb.SetUserStatusRequest(
            user_id=b, actor_user_id=actor, status=pb.USER_STATUS_DELETED)),
        "Follow(as bob)": lambda actor: svc.stub.Follow(pb.FollowRequest(
            follower_id=b, following_id=c, actor_user_id=actor)),
        "Unfollow(as bob)": lambda actor: svc.stub.Unfollow(pb.UnfollowRequest(
            follower_id=b, following_id=c, actor_user_id=actor)),
    }
    for name, attempt in attempts.items():
        assert await _code(attempt(a)) == grpc.StatusCode.PERMISSION_DENIED, name
        assert await _code(attempt("")) == grpc.StatusCode.UNAUTHENTICATED, name
    # nothing changed
    assert (await svc.stub.GetUser(pb.GetUserRequest(user_id=b))).user.profile.display_name == ""
    assert (await svc.stub.GetUser(pb.GetUserRequest(user_id=b))).user.status == pb.USER_STATUS_ACTIVE
    assert (await svc.stub.GetStats(pb.GetStatsRequest(user_id=c))).stats.followers_count == 0
    # the owner may; an administrator may suspend and reactivate
    own = await svc.stub.UpdateProfile(pb.UpdateProfileRequest(
        user_id=b, actor_user_id=b, profile=pb.Profile(display_name="Bob"), update_mask=mask))
    assert own.user.profile.display_name == "Bob"
    suspended = await svc.stub.SetUserStatus(pb.SetUserStatusRequest(
        user_id=b, actor_user_id=str(ADMIN), status=pb.USER_STATUS_SUSPENDED, reason="spam"))
    assert suspended.user.status == pb.USER_STATUS_SUSPENDED
    assert await _code(svc.stub.UpdateProfile(pb.UpdateProfileRequest(
        user_id=b, actor_user_id=b, profile=pb.Profile(display_name="x"), update_mask=mask))) == (
        grpc.StatusCode.FAILED_PRECONDITION)
    assert await _code(svc.stub.SetUserStatus(pb.SetUserStatusRequest(
        user_id=b, actor_user_id=b, status=pb.USER_STATUS_ACTIVE))) == grpc.StatusCode.PERMISSION_DENIED
    back = await svc.stub.SetUserStatus(pb.SetUserStatusRequest(
        user_id=b, actor_user_id=str(ADMIN), status=pb.USER_STATUS_ACTIVE))
    assert back.user.status == pb.USER_STATUS_ACTIVE


async def test_deleting_an_account_clears_it_and_fixes_everyones_counters(svc: Harness) -> None:
    name = _handle()
    doomed, fan, idol = await svc.user(username=name, display_name="D"), await svc.user(), await svc.user()
    d, f, i = doomed.user_id, fan.user_id, idol.user_id
    await svc.stub.Follow(pb.FollowRequest(follower_id=f, following_id=d, actor_user_id=f))
    await svc.stub.Follow(pb.FollowRequest(follower_id=d, following_id=i, actor_user_id=d))
    deleted = await svc.stub.SetUserStatus(pb.SetUserStatusRequest(
        user_id=d, actor_user_id=d, status=pb.USER_STATUS_DELETED, reason="bye"))
    assert deleted.user.status == pb.USER_STATUS_DELETED
    assert deleted.user.profile.username == "" and deleted.user.profile.display_name == ""
    stats = {s.user_id: s for s in (await svc.stub.BatchGetStats(pb.BatchGetStatsRequest(user_ids=[d, f, i]))).stats}
    assert (stats[f].following_count, stats[i].followers_count) == (0, 0)
    assert (stats[d].followers_count, stats[d].following_count) == (0, 0)
    assert await _code(svc.stub.Follow(pb.FollowRequest(follower_id=f, following_id=d, actor_user_id=f))) == (
        grpc.StatusCode.NOT_FOUND)
    assert await _code(svc.stub.GetUserByUsername(pb.GetUserByUsernameRequest(username=name))) == (
        grpc.StatusCode.NOT_FOUND)
    assert await _code(svc.stub.SetUserStatus(pb.SetUserStatusRequest(
        user_id=d, actor_user_id=str(ADMIN), status=pb.USER_STATUS_ACTIVE))) == grpc.StatusCode.FAILED_PRECONDITION


# ---------------------------------------------------------------------------------------------- cache


async def test_writes_invalidate_the_cache_immediately(svc: Harness) -> None:
    user = await svc.user(display_name="before")
    uid = user.user_id
    redis = svc.resources.redis
    key = f"mintplane:user:v1:{{{uid}}}:user"
    await svc.stub.GetUser(pb.GetUserRequest(user_id=uid))
    assert await redis.exists(key) == 1, "a read fills the cache"
    cached = pb.User.FromString(await redis.get(key))
    assert cached.profile.display_name == "before"
    await svc.stub.UpdateProfile(_profile_update(uid, uid, ["display_name"], display_name="after"))
    assert await redis.exists(key) == 0, "the write dropped the entry"
    assert (await svc.stub.GetUser(pb.GetUserRequest(user_id=uid))).user.profile.display_name == "after"
    batch = await svc.stub.BatchGetUsers(pb.BatchGetUsersRequest(user_ids=[uid, uid, str(uuid.uuid4())]))
    assert [u.profile.display_name for u in batch.users] == ["after"]
    # a value served from the cache is the cached one: prove the cache is really used
    forged = pb.User()
    forged.CopyFrom(cached)
    forged.profile.display_name = "from-cache"
    await redis.set(key, forged.SerializeToString(), ex=60)
    assert (await svc.stub.GetUser(pb.GetUserRequest(user_id=uid))).user.profile.display_name == "from-cache"
    await svc.stub.UpdateProfile(_profile_update(uid, uid, ["display_name"], display_name="final"))
    assert (await svc.stub.GetUser(pb.GetUserRequest(user_id=uid))).user.profile.display_name == "final"


async def test_a_read_that_raced_a_write_cannot_store_its_stale_value(svc: Harness) -> None:
    """Reader sees generation g, writer commits and invalidates, reader then tries to store: refused."""
    user = await svc.user(display_name="old")
    uid = uuid.UUID(user.user_id)
    cache = UserCache(svc.resources.redis, ttl_seconds=60)
    hit, generations = await cache.get_many([uid])
    assert hit == {} and generations is not None
    stale = (await svc.stub.GetUser(pb.GetUserRequest(user_id=user.user_id))).user  # loaded "before the write"
    await svc.resources.redis.delete(f"mintplane:user:v1:{{{uid}}}:user")
    hit, generations = await cache.get_many([uid])  # the reader's view, taken before the write
    await svc.stub.UpdateProfile(_profile_update(user.user_id, user.user_id, ["display_name"], display_name="new"))
    await cache.store_many([stale], generations)  # too late: the generation moved
    assert await svc.resources.redis.exists(f"mintplane:user:v1:{{{uid}}}:user") == 0
    assert (await svc.stub.GetUser(pb.GetUserRequest(user_id=user.user_id))).user.profile.display_name == "new"


async def test_batch_reads_are_capped_and_validated(svc: Harness) -> None:
    users = await asyncio.gather(*(svc.user() for _ in range(3)))
    ids = [u.user_id for u in users]
    batch = await svc.stub.BatchGetUsers(pb.BatchGetUsersRequest(user_ids=[*ids, str(uuid.uuid4())]))
    assert sorted(u.user_id for u in batch.users) == sorted(ids)
    assert await _code(svc.stub.BatchGetUsers(pb.BatchGetUsersRequest(
        user_ids=[str(uuid.uuid4()) for _ in range(101)]))) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(svc.stub.BatchGetUsers(pb.BatchGetUsersRequest(user_ids=["x"]))) == (
        grpc.StatusCode.INVALID_ARGUMENT)
    assert await _code(svc.stub.GetUser(pb.GetUserRequest(user_id=str(uuid.uuid4())))) == grpc.StatusCode.NOT_FOUND

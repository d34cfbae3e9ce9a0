"""The follow graph over gRPC against the dev stack: idempotency, exact counters under concurrency, and
keyset pagination without duplicates or gaps."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from mintplane.api.common.v1 import common_pb2
from mintplane.api.user.v1 import user_pb2 as pb
from mintplane.api.user.v1 import user_pb2_grpc
from mintplane.common.service import Resources
from mintplane.common.settings import ServiceSettings
from mintplane.user.server import NEEDS, build_server

pytestmark = pytest.mark.integration


class Harness:
    def __init__(self, stub: user_pb2_grpc.UserServiceStub, resources: Resources) -> None:
        self.stub = stub
        self.resources = resources
        self.created: list[str] = []

    async def users(self, n: int) -> list[str]:
        """n fresh users, created in one statement per user but concurrently."""
        created = await asyncio.gather(*(self.stub.CreateUser(pb.CreateUserRequest()) for _ in range(n)))
        ids = [c.user.user_id for c in created]
        self.created += ids
        return ids

    async def stats(self, *ids: str) -> dict[str, pb.UserStats]:
        response = await self.stub.BatchGetStats(pb.BatchGetStatsRequest(user_ids=list(ids)))
        return {s.user_id: s for s in response.stats}

    async def true_counts(self, user_id: str) -> tuple[int, int]:
        """Followers and following counted from the rows themselves."""
        row = await self.resources.pg.fetchrow(
            "SELECT (SELECT count(*) FROM users.user_follows WHERE following_id = $1) AS followers, "
            "(SELECT count(*) FROM users.user_follows WHERE follower_id = $1) AS following",
            uuid.UUID(user_id),
        )
        return row["followers"], row["following"]


@pytest.fixture(scope="module")
async def svc() -> AsyncIterator[Harness]:
    settings = ServiceSettings(grpc_port=0, pg_pool_max=30)
    resources = await Resources.open(settings, NEEDS, name="user-follows-test")
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


def _follow(follower: str, following: str) -> pb.FollowRequest:
    return pb.FollowRequest(follower_id=follower, following_id=following, actor_user_id=follower)


def _unfollow(follower: str, following: str) -> pb.UnfollowRequest:
    return pb.UnfollowRequest(follower_id=follower, following_id=following, actor_user_id=follower)


async def test_follow_and_unfollow_are_idempotent(svc: Harness) -> None:
    a, b = await svc.users(2)
    first = await svc.stub.Follow(_follow(a, b))
    again = await svc.stub.Follow(_follow(a, b))
    assert (first.created, again.created) == (True, False)
    assert first.follow.created_at == again.follow.created_at
    stats = await svc.stats(a, b)
    assert (stats[a].following_count, stats[b].followers_count) == (1, 1)
    removed = await svc.stub.Unfollow(_unfollow(a, b))
    removed_again = await svc.stub.Unfollow(_unfollow(a, b))
    assert (removed.removed, removed_again.removed) == (True, False)
    stats = await svc.stats(a, b)
    assert (stats[a].following_count, stats[b].followers_count) == (0, 0)


async def test_self_follow_and_unknown_users_are_refused(svc: Harness) -> None:
    (a,) = await svc.users(1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.Follow(_follow(a, a))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.Follow(_follow(a, str(uuid.uuid4())))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await svc.stats(a))[a].following_count == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.ListFollowers(pb.ListFollowersRequest(user_id=str(uuid.uuid4())))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    empty = await svc.stub.ListFollowers(pb.ListFollowersRequest(user_id=a))
    assert list(empty.follows) == [] and empty.page.next_page_token == "" and empty.page.total_size == 0


async def test_fifty_concurrent_follows_leave_exact_counters(svc: Harness) -> None:
    (star,) = await svc.users(1)
    fans = await svc.users(50)
    results = await asyncio.gather(*(svc.stub.Follow(_follow(fan, star)) for fan in fans))
    assert all(r.created for r in results)
    # the same 50 again, concurrently, plus duplicates: nothing moves
    again = await asyncio.gather(*(svc.stub.Follow(_follow(fan, star)) for fan in fans + fans[:10]))
    assert not any(r.created for r in again)
    stats = await svc.stats(star, *fans)
    assert stats[star].followers_count == 50 == (await svc.true_counts(star))[0]
    assert all(stats[fan].following_count == 1 for fan in fans)


async def test_crossing_follows_and_unfollows_never_deadlock_or_drift(svc: Harness) -> None:
    """Random follow/unfollow storms in both directions between 8 users: counters equal the rows."""
    users = await svc.users(8)
    rng = random.Random(7)
    calls = []
    for _ in range(300):
        a, b = rng.sample(users, 2)
        calls.append(svc.stub.Follow(_follow(a, b)) if rng.random() < 0.6 else svc.stub.Unfollow(_unfollow(a, b)))
    await asyncio.gather(*calls)
    stats = await svc.stats(*users)
    for user in users:
        assert (stats[user].followers_count, stats[user].following_count) == await svc.true_counts(user)


async def test_followers_paginate_without_duplicates_or_gaps(svc: Harness) -> None:
    (star,) = await svc.users(1)
    fans = await svc.users(120)
    for chunk in range(0, 120, 40):  # three waves: some followers share a created_at
        await asyncio.gather(*(svc.stub.Follow(_follow(fan, star)) for fan in fans[chunk:chunk + 40]))
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = await svc.stub.ListFollowers(pb.ListFollowersRequest(
            user_id=star, page=common_pb2.PageRequest(page_size=25, page_token=token)))
        pages += 1
        assert page.page.total_size == (120 if pages <= 2 else 121)
        seen += [edge.follower_id for edge in page.follows]
        stamps = [(e.created_at.ToDatetime(), e.follower_id) for e in page.follows]
        assert stamps == sorted(stamps, reverse=True), "newest first, ties broken by id"
        token = page.page.next_page_token
        if not token:
            break
        # a follower arriving mid-listing goes to the head and does not shift later pages
        if pages == 2:
            (late,) = await svc.users(1)
            await svc.stub.Follow(_follow(late, star))
    assert pages == 5
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == set(fans)
    # a token only works for the list that produced it
    first = await svc.stub.ListFollowers(pb.ListFollowersRequest(
        user_id=star, page=common_pb2.PageRequest(page_size=10)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.ListFollowing(pb.ListFollowingRequest(
            user_id=star, page=common_pb2.PageRequest(page_token=first.page.next_page_token)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # and ListFollowing of one fan shows the star
    following = await svc.stub.ListFollowing(pb.ListFollowingRequest(user_id=fans[0]))
    assert [e.following_id for e in following.follows] == [star] and following.page.total_size == 1


async def test_is_following_answers_a_whole_page_in_one_call(svc: Harness) -> None:
    me, *others = await svc.users(6)
    await asyncio.gather(*(svc.stub.Follow(_follow(me, o)) for o in others[:3]))
    response = await svc.stub.IsFollowing(pb.IsFollowingRequest(follower_id=me, following_ids=others))
    assert {e.following_id for e in response.follows} == set(others[:3])
    assert all(e.follower_id == me for e in response.follows)

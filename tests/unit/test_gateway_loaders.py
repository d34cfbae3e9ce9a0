"""Per-request DataLoaders: a page of users costs one batched call per field type, whatever its size."""

from __future__ import annotations

import pytest

from mintplane.gateway.schema import build_schema
from mintplane.gateway.settings import GatewaySettings
from mintplane.gateway.testing import FakeBackend, execute

pytestmark = pytest.mark.unit

SCHEMA = build_schema(GatewaySettings())
PAGE_QUERY = """
query($first: Int!) { me { followers(first: $first) { totalCount pageInfo { hasNextPage endCursor }
  edges { cursor followedAt node { id username viewerIsFollowing stats { followersCount volumeSold }
                                   wallets { address isPrimary } } } } } }
"""


def backend_with_followers(count: int) -> tuple[FakeBackend, str, list[str]]:
    backend = FakeBackend()
    star = backend.add_user("star", "0x" + "ee" * 20)
    followers = []
    for index in range(count):
        follower = backend.add_user(f"fan{index}", f"0x{index + 1:040x}")
        backend.add_follow(follower, star)
        followers.append(follower)
    return backend, backend.sign_in_as(star), followers


async def test_fifty_followers_cost_one_batched_call_per_field_type() -> None:
    backend, token, followers = backend_with_followers(50)
    result = await execute(SCHEMA, backend, PAGE_QUERY, variables={"first": 50}, token=token)
    assert result.errors is None
    edges = result.data["me"]["followers"]["edges"]
    assert len(edges) == 50
    assert {edge["node"]["id"] for edge in edges} == set(followers)
    assert all(edge["node"]["wallets"][0]["isPrimary"] for edge in edges)
    assert backend.calls["ListFollowers"] == 1
    # One BatchGetUsers for `me`, one for the whole page of followers.
    assert backend.calls["BatchGetUsers"] == 2
    assert backend.calls["BatchGetStats"] == 1
    assert backend.calls["BatchListWallets"] == 1
    assert backend.calls["IsFollowing"] == 1
    assert backend.calls["ValidateSession"] == 1
    assert "GetUser" not in backend.calls


async def test_a_full_page_of_a_hundred_is_still_one_batch_each() -> None:
    backend, token, _ = backend_with_followers(120)
    result = await execute(SCHEMA, backend, PAGE_QUERY, variables={"first": 100}, token=token)
    assert result.errors is None
    connection = result.data["me"]["followers"]
    assert len(connection["edges"]) == 100 and connection["pageInfo"]["hasNextPage"] is True
    assert connection["totalCount"] == 120
    assert backend.calls["BatchGetStats"] == backend.calls["BatchListWallets"] == 1


async def test_following_the_end_cursor_reads_the_rest_without_overlap() -> None:
    backend, token, followers = backend_with_followers(45)
    seen: list[str] = []
    after = None
    for _ in range(5):
        result = await execute(SCHEMA, backend, """
            query($after: String) { me { followers(first: 20, after: $after) {
              pageInfo { hasNextPage endCursor } edges { node { id } } } } }""",
            variables={"after": after}, token=token)
        assert result.errors is None
        connection = result.data["me"]["followers"]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(followers) and len(seen) == 45


async def test_any_edge_cursor_resumes_right_after_that_edge() -> None:
    backend, token, _ = backend_with_followers(30)
    first_page = await execute(SCHEMA, backend, "{ me { followers(first: 10) { edges { cursor node { id } } } } }",
                               token=token)
    edges = first_page.data["me"]["followers"]["edges"]
    resumed = await execute(SCHEMA, backend, """
        query($after: String) { me { followers(first: 5, after: $after) { edges { node { id } } } } }""",
        variables={"after": edges[3]["cursor"]}, token=token)
    assert [e["node"]["id"] for e in resumed.data["me"]["followers"]["edges"]] == \
        [e["node"]["id"] for e in edges[4:9]]


async def test_a_forged_cursor_is_bad_user_input() -> None:
    backend, token, _ = backend_with_followers(1)
    result = await execute(SCHEMA, backend, '{ me { followers(after: "%%%") { totalCount } } }', token=token)
    assert [error.extensions["code"] for error in result.errors] == ["BAD_USER_INPUT"]
    assert backend.calls["ListFollowers"] == 0

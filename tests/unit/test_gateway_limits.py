"""Depth, alias, token and cost limits refuse abusive documents before any resolver runs."""

from __future__ import annotations

import pytest
from strawberry.extensions.validation_cache import _get_validate_cache

from mintplane.gateway.schema import CACHE_SIZE, build_schema
from mintplane.gateway.settings import GatewaySettings
from mintplane.gateway.testing import FakeBackend, execute

pytestmark = pytest.mark.unit

SETTINGS = GatewaySettings(max_query_depth=8, max_aliases=5, max_tokens=400, max_complexity=3000)
SCHEMA = build_schema(SETTINGS)


def nested_followers(levels: int) -> str:
    query = "id"
    for _ in range(levels):
        query = f"followers(first: 2) {{ edges {{ node {{ {query} }} }} }}"
    return f"{{ user(username: \"a\") {{ {query} }} }}"


async def run(query: str) -> tuple[FakeBackend, list[str], list[str]]:
    backend = FakeBackend()
    result = await execute(SCHEMA, backend, query, settings=SETTINGS)
    errors = result.errors or []
    return backend, [e.extensions.get("code", "") for e in errors], [e.message for e in errors]


async def test_too_deep_query_is_refused_before_any_upstream_call() -> None:
    backend, codes, messages = await run(nested_followers(3))
    assert codes and set(codes) == {"GRAPHQL_VALIDATION_FAILED"}
    assert any("exceeds maximum operation depth of 8" in message for message in messages)
    assert sum(backend.calls.values()) == 0


async def test_depth_counts_through_fragments() -> None:
    query = """
      fragment F on User { followers(first: 1) { edges { node { ...G } } } }
      fragment G on User { followers(first: 1) { edges { node { following(first: 1) { edges { node { id } } } } } } }
      { user(username: "a") { ...F } }"""
    backend, _, messages = await run(query)
    assert any("maximum operation depth" in message for message in messages)
    assert sum(backend.calls.values()) == 0


async def test_a_query_within_limits_runs() -> None:
    backend, codes, _ = await run(nested_followers(1))
    assert codes == ["NOT_FOUND"]  # it ran: the fake has no user "a"
    assert backend.calls["GetUserByUsername"] == 1


async def test_too_many_aliases_are_refused() -> None:
    query = "{ " + " ".join(f'u{i}: user(username: "u{i}") {{ id }}' for i in range(6)) + " }"
    backend, codes, messages = await run(query)
    assert codes == ["GRAPHQL_VALIDATION_FAILED"] and "6 aliases found. Allowed: 5" in messages[0]
    assert sum(backend.calls.values()) == 0


async def test_too_many_tokens_are_refused_while_parsing() -> None:
    query = "{ me { " + "id " * 500 + "} }"
    _, codes, messages = await run(query)
    assert codes == ["GRAPHQL_PARSE_FAILED"] and "more than 400 tokens" in messages[0]


async def test_wide_but_shallow_pages_are_refused_by_cost() -> None:
    query = """{ me { followers(first: 100) { edges { node {
        followers(first: 100) { edges { node { id } } } } } } } }"""
    backend, codes, messages = await run(query)
    assert codes == ["GRAPHQL_VALIDATION_FAILED"]
    assert "too complex" in messages[0]
    assert sum(backend.calls.values()) == 0


async def test_a_variable_page_size_is_costed_at_the_maximum() -> None:
    query = """query($n: Int!) { me { followers(first: $n) { edges { node {
        followers(first: 40) { edges { node { id } } } } } } } }"""
    _, codes, messages = await run(query)
    assert codes == ["GRAPHQL_VALIDATION_FAILED"] and "too complex" in messages[0]


async def test_limits_keep_validation_cacheable() -> None:
    cache = _get_validate_cache(CACHE_SIZE)
    query = '{ user(username: "cache-probe") { id username } }'
    await run(query)
    hits = cache.cache_info().hits
    await run(query)
    await run(query)
    assert cache.cache_info().hits == hits + 2

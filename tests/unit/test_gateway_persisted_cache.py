"""APQ and the result cache over fake upstreams: the protocol, which operations may be cached, what a hit
looks like on the wire (headers, ETag, 304), and that nothing viewer-dependent is ever shared.

The app runs without Redis or a broker here (no `infra`): stores are the local LRUs and the cache is switched
on by hand, with invalidations called directly; tests/integration/test_gateway_cache.py drives the real ones.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from graphql import GraphQLObjectType, get_named_type

from mintplane.api.catalog.v1 import catalog_pb2
from mintplane.api.common.v1 import common_pb2
from mintplane.catalog.changes import MAX_TOKENS_PER_MESSAGE, change_messages
from mintplane.gateway import result_cache
from mintplane.gateway.app import create_app
from mintplane.gateway.hot_path import HotReadPath
from mintplane.gateway.persisted import sha256_hex
from mintplane.gateway.result_cache import (
    LISTS_TAG,
    VIEWER_FIELDS,
    VIEWER_TYPES,
    CacheScope,
    ResultCache,
    analyse,
    catalog_tags,
    change_tags,
)
from mintplane.gateway.schema import build_schema
from mintplane.gateway.settings import GatewaySettings
from mintplane.gateway.testing import FakeBackend, FakeCatalog

pytestmark = pytest.mark.unit

COLLECTION = "query($slug: String!) { collection(slug: $slug) { id name } }"


@asynccontextmanager
async def gateway(backend: FakeBackend, *, cache_on: bool = True, **settings: Any) -> AsyncIterator[
        tuple[httpx.AsyncClient, HotReadPath]]:
    app = create_app(GatewaySettings(**settings), upstreams=backend)
    hot: HotReadPath = app.state.hot_path
    async with app.router.lifespan_context(app):
        if hot.cache is not None:
            hot.cache.active = cache_on
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client, hot


def apq(query_hash: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": query_hash}}


def get_params(query_hash: str, variables: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
    params = {"extensions": orjson.dumps(apq(query_hash)).decode(), **extra}
    if variables is not None:
        params["variables"] = orjson.dumps(variables).decode()
    return params


# ------------------------------------------------------------------------------------------------ APQ


async def test_apq_round_trip_not_found_then_register_then_get() -> None:
    backend = FakeBackend()
    collection = backend.add_collection("Apes")
    query_hash = sha256_hex(COLLECTION)
    variables = {"slug": collection.slug}
    async with gateway(backend, cache_on=False) as (client, _):
        missing = await client.get("/graphql", params=get_params(query_hash, variables))
        assert missing.status_code == 200
        assert missing.json() == {"errors": [{"message": "PersistedQueryNotFound",
                                              "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]}
        assert missing.headers["cache-control"] == "private, no-store"

        registered = await client.post("/graphql", json={"query": COLLECTION, "variables": variables,
                                                          "extensions": apq(query_hash)})
        assert registered.json() == {"data": {"collection": {"id": collection.id, "name": "Apes"}}}

        again = await client.get("/graphql", params=get_params(query_hash, variables))
        assert again.status_code == 200
        assert again.json() == {"data": {"collection": {"id": collection.id, "name": "Apes"}}}
        by_post = await client.post("/graphql", json={"variables": variables, "extensions": apq(query_hash)})
        assert by_post.json() == again.json()


async def test_apq_hash_must_match_the_query_and_nothing_is_stored_otherwise() -> None:
    backend = FakeBackend()
    wrong = sha256_hex("{ __typename }")
    async with gateway(backend) as (client, _):
        refused = await client.post("/graphql", json={"query": COLLECTION, "variables": {"slug": "x"},
                                                       "extensions": apq(wrong)})
        assert refused.json() == {"errors": [{"message": "provided sha does not match query",
                                              "extensions": {"code": "BAD_USER_INPUT"}}]}
        after = await client.get("/graphql", params=get_params(wrong))
        assert after.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        bad_version = await client.post("/graphql", json={"extensions": {"persistedQuery": {
            "version": 2, "sha256Hash": wrong}}})
        assert bad_version.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
        bad_hash = await client.post("/graphql", json={"extensions": apq("not-a-hash")})
        assert bad_hash.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_mutations_are_refused_over_get_even_when_persisted() -> None:
    backend = FakeBackend()
    token = backend.sign_in_as(backend.add_user("alice"))
    mutation = "mutation { signOut { revokedCount } }"
    query_hash = sha256_hex(mutation)
    async with gateway(backend) as (client, _):
        plain = await client.get("/graphql", params={"query": mutation}, headers={"authorization": f"Bearer {token}"})
        assert plain.status_code in (400, 405) and "mutation" in plain.text.lower()
        # registered over POST (executed there), then replayed by hash over GET: still refused
        registered = await client.post("/graphql", json={"query": mutation, "extensions": apq(query_hash)},
                                       headers={"authorization": f"Bearer {token}"})
        assert registered.json()["data"]["signOut"]["revokedCount"] == 1
        token = backend.sign_in_as(backend.add_user("bob"))
        replay = await client.get("/graphql", params=get_params(query_hash),
                                  headers={"authorization": f"Bearer {token}"})
        assert replay.status_code in (400, 405) and "mutation" in replay.text.lower()
    assert backend.calls["SignOut"] == 1


# ------------------------------------------------------------------------------------------ the cache


async def test_cached_get_has_public_headers_etag_and_304_and_skips_graphql() -> None:
    backend = FakeBackend()
    collection = backend.add_collection("Apes")
    params = {"query": COLLECTION, "variables": orjson.dumps({"slug": collection.slug}).decode()}
    async with gateway(backend, http_max_age_seconds=7, http_stale_while_revalidate_seconds=40,
                       result_cache_clock_skew_seconds=0) as (client, hot):
        first = await client.get("/graphql", params=params)
        assert first.headers["x-mintplane-cache"] == "miss"
        assert first.headers["cache-control"] == "public, max-age=7, stale-while-revalidate=40"
        assert "Authorization" in first.headers["vary"]
        etag = first.headers["etag"]
        assert etag.startswith('"') and len(etag) == 34
        calls = sum(backend.calls.values())

        second = await client.get("/graphql", params=params)
        assert second.headers["x-mintplane-cache"] == "hit" and second.content == first.content
        assert second.headers["etag"] == etag
        assert sum(backend.calls.values()) == calls  # no resolver, no upstream call

        not_modified = await client.get("/graphql", params=params, headers={"if-none-match": f'W/{etag}, "x"'})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert not_modified.headers["etag"] == etag

        # the same operation by POST (text, not hash) shares the entry, but is never publicly cacheable
        posted = await client.post("/graphql", json={"query": COLLECTION, "variables": {"slug": collection.slug}})
        assert posted.headers["x-mintplane-cache"] == "hit" and posted.headers["cache-control"] == "private, no-store"

        # a change event naming the collection drops the entry: the rename shows at once
        collection.name = "Apes Renamed"
        assert hot.cache is not None
        await hot.cache.invalidate(change_tags({"collection_ids": [collection.id], "token_ids": []}))
        fresh = await client.get("/graphql", params=params, headers={"if-none-match": etag})
        assert fresh.status_code == 200 and fresh.headers["x-mintplane-cache"] == "miss"
        assert fresh.json()["data"]["collection"]["name"] == "Apes Renamed"
        assert fresh.headers["etag"] != etag


async def test_a_signed_in_caller_gets_the_shared_public_entry_privately() -> None:
    backend = FakeBackend()
    collection = backend.add_collection("Apes")
    token = backend.sign_in_as(backend.add_user("alice"))
    params = {"query": COLLECTION, "variables": orjson.dumps({"slug": collection.slug}).decode()}
    async with gateway(backend) as (client, _):
        anonymous = await client.get("/graphql", params=params)
        signed = await client.get("/graphql", params=params, headers={"authorization": f"Bearer {token}"})
        assert signed.headers["x-mintplane-cache"] == "hit" and signed.content == anonymous.content
        assert signed.headers["cache-control"] == "private, no-store" and "etag" not in signed.headers


async def test_viewer_fields_are_never_cached_or_shared() -> None:
    backend = FakeBackend()
    alice, bob = backend.add_user("alice"), backend.add_user("bob")
    backend.add_follow(alice, bob)
    collection = backend.add_collection("Apes")
    alice_token, bob_token = backend.sign_in_as(alice), backend.sign_in_as(bob)
    mixed = """query($slug: String!, $u: String!) { collection(slug: $slug) { name }
               user(username: $u) { id viewerIsFollowing } }"""
    me = "{ me { id } }"
    variables = {"slug": collection.slug, "u": "bob"}
    async with gateway(backend, result_cache_unevented_ttl_seconds=60) as (client, _):
        for _ in range(2):
            mine = await client.post("/graphql", json={"query": mixed, "variables": variables},
                                     headers={"authorization": f"Bearer {alice_token}"})
            assert mine.json()["data"]["user"]["viewerIsFollowing"] is True
            assert mine.headers["cache-control"] == "private, no-store" and "x-mintplane-cache" not in mine.headers
            theirs = await client.post("/graphql", json={"query": mixed, "variables": variables},
                                       headers={"authorization": f"Bearer {bob_token}"})
            assert theirs.json()["data"]["user"]["viewerIsFollowing"] is False  # bob looking at himself
            anonymous = await client.get("/graphql", params={"query": mixed,
                                                              "variables": orjson.dumps(variables).decode()})
            assert anonymous.json()["data"]["user"]["viewerIsFollowing"] is None
            assert anonymous.headers["cache-control"] == "private, no-store"
        assert (await client.get("/graphql", params={"query": me},
                                 headers={"authorization": f"Bearer {alice_token}"})).json() == {
            "data": {"me": {"id": alice}}}
        assert (await client.get("/graphql", params={"query": me},
                                 headers={"authorization": f"Bearer {bob_token}"})).json() == {
            "data": {"me": {"id": bob}}}


async def test_a_resolver_reading_the_viewer_taints_the_run_even_when_not_listed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule 3: drop Wallet.label from the static list, and the run that read the viewer is still not stored."""
    monkeypatch.setattr(result_cache, "VIEWER_FIELDS", VIEWER_FIELDS - {"Wallet.label"})
    backend = FakeBackend()
    alice = backend.add_user("alice", address="0x" + "a1" * 20)
    backend.wallets[alice][0].label = "cold storage"
    token = backend.sign_in_as(alice)
    query = "query($id: ID!) { userById(id: $id) { wallets { address label } } }"
    async with gateway(backend, result_cache_unevented_ttl_seconds=60) as (client, _):
        own = await client.post("/graphql", json={"query": query, "variables": {"id": alice}},
                                headers={"authorization": f"Bearer {token}"})
        assert own.json()["data"]["userById"]["wallets"][0]["label"] == "cold storage"
        assert own.headers["x-mintplane-cache"] == "miss"
        anonymous = await client.post("/graphql", json={"query": query, "variables": {"id": alice}})
        assert anonymous.json()["data"]["userById"]["wallets"][0]["label"] is None
        assert anonymous.headers["x-mintplane-cache"] == "miss"  # neither run was stored


async def test_errors_and_unevented_data_are_not_stored() -> None:
    backend = FakeBackend()
    backend.add_user("alice")
    async with gateway(backend) as (client, _):
        for _ in range(2):
            missing = await client.get("/graphql", params={"query": COLLECTION, "variables": '{"slug": "nope"}'})
            assert missing.json()["errors"] and missing.headers["x-mintplane-cache"] == "miss"
            profile = await client.get("/graphql", params={"query": '{ user(username: "alice") { id } }'})
            assert profile.json()["data"]["user"] is not None
            assert profile.headers["x-mintplane-cache"] == "miss"  # user data has no change events: TTL 0


async def test_inactive_cache_serves_everything_uncached() -> None:
    backend = FakeBackend()
    collection = backend.add_collection("Apes")
    params = {"query": COLLECTION, "variables": orjson.dumps({"slug": collection.slug}).decode()}
    async with gateway(backend, cache_on=False) as (client, _):
        responses = [await client.get("/graphql", params=params) for _ in range(2)]
    assert all(r.headers["cache-control"] == "private, no-store" for r in responses)
    assert backend.calls["GetCollectionBySlug"] + backend.calls["BatchGetCollections"] >= 2


# ------------------------------------------------------------------------------------------- the rules


def test_analysis_finds_viewer_fields_anywhere_and_only_caches_queries() -> None:
    schema = build_schema(GatewaySettings())._schema
    public = analyse(schema, COLLECTION, max_tokens=2000)
    assert public.valid and not public.viewer_dependent and public.cacheable(None)
    in_fragment = analyse(schema, """query Q { user(username: "a") { ...F } } fragment F on User {
        id viewerIsFollowing }""", max_tokens=2000)
    assert in_fragment.viewer_dependent and not in_fragment.cacheable("Q")
    by_type = analyse(schema, "{ me { id } }", max_tokens=2000)
    assert by_type.viewer_dependent
    two = analyse(schema, "query A { __typename } query B { __typename }", max_tokens=2000)
    assert two.cacheable("A") and not two.cacheable(None) and not two.cacheable("C")
    mutation = analyse(schema, "mutation { signOut { revokedCount } }", max_tokens=2000)
    assert mutation.valid and not mutation.cacheable(None)
    assert not analyse(schema, "{ nope }", max_tokens=2000).valid
    assert not analyse(schema, "{ user(", max_tokens=2000).valid


def test_every_resolver_that_reads_the_viewer_is_listed() -> None:
    """A new field reading `viewer` / `has_credentials` must join VIEWER_FIELDS or return a VIEWER_TYPES type."""
    strawberry_schema = build_schema(GatewaySettings())
    unlisted: list[str] = []
    for type_name, graphql_type in strawberry_schema._schema.type_map.items():
        if type_name.startswith("__") or type_name == "Mutation" or not isinstance(graphql_type, GraphQLObjectType):
            continue
        definition = strawberry_schema.get_type_by_name(type_name)
        fields = getattr(definition, "fields", [])
        for field in fields:
            resolver = field.base_resolver
            if resolver is None:
                continue
            source = inspect.getsource(resolver.wrapped_func)
            body = source.split(":", 1)[1] if "def " in source else source
            reads_viewer = "viewer" in body.split('"""')[-1] or "has_credentials" in source
            name = field.graphql_name or strawberry_schema.config.name_converter.get_graphql_name(field)
            returns = get_named_type(graphql_type.fields[name].type).name
            if reads_viewer and f"{type_name}.{name}" not in VIEWER_FIELDS and returns not in VIEWER_TYPES \
                    and type_name not in VIEWER_TYPES:
                unlisted.append(f"{type_name}.{name}")
    assert unlisted == []


def _token(collection_id: str) -> catalog_pb2.Token:
    return catalog_pb2.Token(id=str(uuid.uuid4()), collection_id=collection_id, token_number="7")


def test_catalog_tags_come_from_requests_and_responses() -> None:
    cid = str(uuid.uuid4())
    token = _token(cid)
    by_key = catalog_pb2.GetTokenRequest(key=catalog_pb2.TokenKey(token_number="7"))
    assert catalog_tags("get_token", by_key, catalog_pb2.GetTokenResponse(token=token)) == {
        f"token:{token.id}", f"collection:{cid}"}
    assert catalog_tags("get_token", by_key, None) == {LISTS_TAG}  # not found may become a null: lists
    listed = catalog_tags("list_tokens", catalog_pb2.ListTokensRequest(collection_id=cid),
                          catalog_pb2.ListTokensResponse())
    assert listed == {f"collection:{cid}"}  # an empty page of a collection still hears its first token
    by_owner = catalog_tags("list_tokens", catalog_pb2.ListTokensRequest(owner_address="0xab"),
                            catalog_pb2.ListTokensResponse(tokens=[token]))
    assert by_owner == {LISTS_TAG, f"token:{token.id}", f"collection:{cid}"}
    collections = catalog_tags("list_collections", catalog_pb2.ListCollectionsRequest(
        chain=common_pb2.ChainRef(caip2="eip155:1")), catalog_pb2.ListCollectionsResponse(
        collections=[catalog_pb2.Collection(id=cid)]))
    assert collections == {LISTS_TAG, f"collection:{cid}"}
    wanted = str(uuid.uuid4())
    assert catalog_tags("batch_get_tokens", catalog_pb2.BatchGetTokensRequest(ids=[wanted]),
                        catalog_pb2.BatchGetTokensResponse()) == {f"token:{wanted}"}


async def test_an_entry_begun_before_an_invalidation_is_neither_stored_nor_served() -> None:
    now = [1000.0]
    cache = ResultCache(None, namespace="t", schema_version="v", ttl_seconds=60, unevented_ttl_seconds=0,
                        local_size=10, local_ttl_seconds=60, clock_skew_seconds=0.5, clock=lambda: now[0])
    cache.active = True
    early = CacheScope(started=999.0, tags={"collection:a"})
    await cache.invalidate({"collection:a"})  # at 1000: the run that began at 999 may have read old data
    assert await cache.put("k1", b'{"data":{}}', early) is None
    late = CacheScope(started=1000.6, tags={"collection:a"})
    assert await cache.put("k2", b'{"data":{}}', late) is not None
    assert await cache.get("k2") is not None
    other = CacheScope(started=999.0, tags={"collection:b"})
    assert await cache.put("k3", b'{"data":{}}', other) is not None  # another collection: unaffected
    now[0] = 1001.0
    assert await cache.invalidate({"collection:a"}) == 1
    assert await cache.get("k2") is None and await cache.get("k3") is not None


def test_cache_keys_are_canonical_in_variables_and_distinct_by_operation() -> None:
    cache = ResultCache(None, namespace="t", schema_version="v", ttl_seconds=60, unevented_ttl_seconds=0,
                        local_size=10, local_ttl_seconds=60, clock_skew_seconds=0)
    assert cache.key("h", None, {"a": 1, "b": 2}) == cache.key("h", None, {"b": 2, "a": 1})
    assert cache.key("h", None, None) == cache.key("h", None, {})
    assert cache.key("h", "A", {}) != cache.key("h", "B", {}) != cache.key("h2", "B", {})
    other_schema = ResultCache(None, namespace="t", schema_version="w", ttl_seconds=60, unevented_ttl_seconds=0,
                               local_size=10, local_ttl_seconds=60, clock_skew_seconds=0)
    assert other_schema.key("h", None, {}) != cache.key("h", None, {})


def test_change_messages_split_big_batches_and_skip_empty_ones() -> None:
    assert change_messages("ingest", [], []) == []
    tokens = [uuid.uuid4() for _ in range(MAX_TOKENS_PER_MESSAGE + 5)]
    collection = uuid.uuid4()
    messages = change_messages("ingest", [collection, collection], tokens)
    bodies = [orjson.loads(m.body) for m in messages]
    assert [len(b["token_ids"]) for b in bodies] == [MAX_TOKENS_PER_MESSAGE, 5]
    assert bodies[0]["collection_ids"] == [str(collection)] and bodies[1]["collection_ids"] == []
    assert {m.routing_key for m in messages} == {"catalog.changed"}
    assert sorted(t for b in bodies for t in b["token_ids"]) == sorted(str(t) for t in tokens)
    assert change_tags(bodies[1]) == {LISTS_TAG, *(f"token:{t}" for t in bodies[1]["token_ids"])}


async def test_concurrent_misses_of_one_query_run_it_once() -> None:
    """A popular entry expiring must not send every waiting request into GraphQL and the catalog at once."""
    backend = FakeBackend()
    collection = backend.add_collection("Herd")
    gate = asyncio.Event()
    original = FakeCatalog.get_collection_by_slug

    async def slow(self: FakeCatalog, request: catalog_pb2.GetCollectionBySlugRequest) -> Any:
        await gate.wait()
        return await original(self, request)

    query_hash = sha256_hex(COLLECTION)
    variables = {"slug": collection.slug}
    async with gateway(backend) as (client, _):
        await client.post("/graphql", json={"query": "{ __typename }"})  # app warmed up, nothing cached yet
        FakeCatalog.get_collection_by_slug = slow  # type: ignore[method-assign]
        try:
            requests = [asyncio.create_task(client.post("/graphql", json={
                "query": COLLECTION, "variables": variables, "extensions": apq(query_hash)})) for _ in range(5)]
            await asyncio.sleep(0.2)  # every request has reached the cache by now
            gate.set()
            answers = await asyncio.gather(*requests)
        finally:
            FakeCatalog.get_collection_by_slug = original  # type: ignore[method-assign]
    assert {a.json()["data"]["collection"]["name"] for a in answers} == {"Herd"}
    assert backend.calls["GetCollectionBySlug"] == 1
    assert sorted(a.headers["x-mintplane-cache"] for a in answers) == ["hit"] * 4 + ["miss"]

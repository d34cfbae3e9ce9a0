"""The catalog over GraphQL with in-memory fakes: schema shape, argument checks before any upstream call,
error codes, lookups, and the number of upstream calls a page of tokens costs."""

from __future__ import annotations

from typing import Any

import pytest

from mintplane.api.catalog.v1 import catalog_pb2
from mintplane.gateway.schema import build_schema
from mintplane.gateway.settings import GatewaySettings
from mintplane.gateway.testing import FakeBackend, execute

pytestmark = pytest.mark.unit

SCHEMA = build_schema(GatewaySettings())
CHAIN = "eip155:31337"

# `first` is written into the document: a variable counts as 100 items in the cost estimate (limits.py).
PAGE = """
query($after: String, $slug: String!) {
  tokens(collection: {slug: $slug}, first: FIRST, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id tokenNumber name image traits { name value rarityScore counted } rarity { score rank }
      metadata { status } owner { address user { id username } }
      collection { slug name stats { itemsCount ownersCount metadata { ok pending } } }
    } }
  }
}
"""


def page(first: int) -> str:
    return PAGE.replace("FIRST", str(first))


def codes(result: Any) -> list[str]:
    return [error.extensions.get("code") for error in result.errors or []]


def catalog_with(tokens: int, owners: int = 5) -> tuple[FakeBackend, catalog_pb2.Collection, list[str]]:
    """A collection of `tokens` tokens spread over `owners` addresses, every other one linked to a user."""
    backend = FakeBackend()
    backend.add_chain(CHAIN, "Anvil", heads=((120, True), (130, False)))
    collection = backend.add_collection("Genesis", chain=CHAIN)
    addresses = [f"0x{index + 1:040x}" for index in range(owners)]
    for index, address in enumerate(addresses):
        if index % 2 == 0:
            backend.add_user(f"owner{index}", address)
    for number in range(1, tokens + 1):
        backend.add_token(collection, number, owner=addresses[number % owners],
                          traits={"Background": "Blue" if number % 3 else "Red", "Eyes": f"e{number % 4}"},
                          rank=tokens - number + 1, score=f"{number / 10:.4f}")
    return backend, collection, addresses


def test_sdl_has_the_catalog_api() -> None:
    sdl = SCHEMA.as_str()
    for piece in (
        "chains(includeDisabled: Boolean! = false, first: Int! = 20, after: String = null): ChainConnection!",
        "collections(chain: String = null, verified: Boolean! = false, creator: String = null",
        "sort: CollectionSort! = CREATED", "collection(slug: String = null, chain: String = null",
        "tokens(collection: CollectionKey = null, owner: String = null, traits: [TraitFilter!] = null",
        "ranges: [RangeFilter!] = null", "sort: TokenSort! = TOKEN_NUMBER",
        "token(chain: String!, address: String!, tokenNumber: String!): Token",
        "activity(collection: CollectionKey = null, token: TokenKey = null, address: String = null",
        "refreshMetadata(token: TokenKey = null, collectionSlug: String = null): RefreshMetadataPayload!",
        "type TokenConnection", "type RarityContribution", "enum TokenSort", "RECENTLY_TRANSFERRED",
        "tokens(first: Int! = 20, after: String = null, collection: CollectionKey = null): TokenConnection!",
    ):
        assert piece in sdl, piece


async def test_a_token_page_resolves_owners_users_and_collection_with_one_batch_each() -> None:
    backend, collection, addresses = catalog_with(60)
    result = await execute(SCHEMA, backend, page(50), variables={"slug": collection.slug})
    assert result.errors is None
    connection = result.data["tokens"]
    assert connection["totalCount"] == 60 and connection["pageInfo"]["hasNextPage"] is True
    edges = connection["edges"]
    assert [edge["node"]["tokenNumber"] for edge in edges] == [str(n) for n in range(1, 51)]
    first = edges[0]["node"]
    assert first["traits"] == [{"name": "Background", "value": "Blue", "rarityScore": 1.5, "counted": True},
                               {"name": "Eyes", "value": "e1", "rarityScore": 1.5, "counted": True}]
    assert first["rarity"] == {"score": 0.1, "rank": 60} and first["metadata"]["status"] == "OK"
    assert first["collection"]["stats"]["itemsCount"] == 60
    linked = {edge["node"]["owner"]["address"]: edge["node"]["owner"]["user"] for edge in edges}
    assert {address for address, user in linked.items() if user} == {addresses[0], addresses[2], addresses[4]}
    assert linked[addresses[2]]["username"] == "owner2" and linked[addresses[1]] is None
    # one call per kind, whatever the page size; the by-slug read primed the collection loader
    assert backend.calls["GetCollectionBySlug"] == backend.calls["ListTokens"] == 1
    assert backend.calls["BatchGetWalletsByAddress"] == backend.calls["BatchGetUsers"] == 1
    assert backend.calls["BatchGetCollectionStats"] == 1
    assert "BatchGetCollections" not in backend.calls and "GetToken" not in backend.calls


async def test_call_counts_do_not_grow_with_the_page_size() -> None:
    counts = []
    for size in (10, 50):
        backend, collection, _ = catalog_with(60)
        result = await execute(SCHEMA, backend, page(size), variables={"slug": collection.slug})
        assert result.errors is None and len(result.data["tokens"]["edges"]) == size
        counts.append(dict(backend.calls))
    assert counts[0] == counts[1]


async def test_cursors_walk_every_token_once() -> None:
    backend, collection, _ = catalog_with(45)
    seen, after = [], None
    while True:
        result = await execute(SCHEMA, backend, page(20), variables={"after": after, "slug": collection.slug})
        assert result.errors is None
        connection = result.data["tokens"]
        seen += [edge["node"]["tokenNumber"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == [str(n) for n in range(1, 46)]


async def test_filters_and_sorts_reach_the_catalog_as_asked() -> None:
    backend, collection, _ = catalog_with(12)
    result = await execute(SCHEMA, backend, """
        query($id: ID!) { tokens(collection: {id: $id}, traits: [{name: "background", values: ["RED"]}],
                                 ranges: [{name: "Level", min: "1.5", max: "10"}], sort: RARITY, first: 5) {
          totalCount edges { node { tokenNumber rarity { rank } } } } }""", variables={"id": collection.id})
    assert result.errors is None
    numbers = [edge["node"]["tokenNumber"] for edge in result.data["tokens"]["edges"]]
    assert numbers == ["12", "9", "6", "3"]  # Red ones (every third), rarest (lowest rank) first
    (request,) = backend.requests["ListTokens"]
    assert request.collection_id == collection.id and request.sort == catalog_pb2.TOKEN_SORT_RARITY_ASC
    assert [(f.name, list(f.values)) for f in request.trait_filters] == [("background", ["RED"])]
    assert [(f.name, f.min, f.max) for f in request.numeric_filters] == [("Level", "1.5", "10")]
    assert request.page.page_size == 5


@pytest.mark.parametrize(("query", "fragment"), [
    ('{ tokens(first: 5) { totalCount } }', "Name a `collection`"),
    ('{ tokens(owner: "0x12", first: 5) { totalCount } }', "`owner`"),
    ('{ tokens(owner: "0x' + "1" * 40 + '", traits: [{name: "a", values: ["b"]}]) { totalCount } }', "need a"),
    ('{ tokens(collection: {slug: "g", chain: "eip155:1"}) { totalCount } }', "exactly one"),
    ('{ tokens(collection: {chain: "eip155:1"}) { totalCount } }', "together"),
    ('{ tokens(collection: {id: "nope"}) { totalCount } }', "not a valid id"),
    ('{ tokens(collection: {slug: "g"}, first: 500) { totalCount } }', "`first`"),
    ('{ tokens(collection: {slug: "g"}, after: "%%%") { totalCount } }', "cursor"),
    ('{ tokens(collection: {slug: "g"}, traits: [{name: "a", values: []}]) { totalCount } }', "values"),
    ('{ tokens(collection: {slug: "g"}, ranges: [{name: "a"}]) { totalCount } }', "min"),
    ('{ tokens(collection: {slug: "g"}, ranges: [{name: "a", min: "x"}]) { totalCount } }', "decimal"),
    ('{ tokens(collection: {slug: "g"}, ranges: [{name: "a", min: "5", max: "1"}]) { totalCount } }', "exceed"),
    ('{ token(chain: "eth", address: "0x' + "1" * 40 + '", tokenNumber: "1") { id } }', "CAIP-2"),
    ('{ token(chain: "eip155:1", address: "0x' + "1" * 40 + '", tokenNumber: "-1") { id } }', "tokenNumber"),
    ('{ token(chain: "eip155:1", address: "0x' + "1" * 40 + '", tokenNumber: "01") { id } }', "tokenNumber"),
    ('{ collections(chain: "1") { totalCount } }', "CAIP-2"),
    ('{ collections(creator: "bob") { totalCount } }', "`creator`"),
    ('{ collection { id } }', "exactly one"),
    ('{ activity { totalCount } }', "Name a `collection`"),
    ('{ activity(address: "0x' + "1" * 40 + '", types: [UNSPECIFIED]) { totalCount } }', "UNSPECIFIED"),
    ('{ activity(address: "0xzz") { totalCount } }', "`address`"),
    ('{ chain(caip2: "solana:1") { name } }', "CAIP-2"),
])
async def test_bad_arguments_are_refused_before_any_upstream_call(query: str, fragment: str) -> None:
    backend = FakeBackend()
    result = await execute(SCHEMA, backend, query)
    assert codes(result) == ["BAD_USER_INPUT"], result.errors
    assert fragment in result.errors[0].message
    assert sum(backend.calls.values()) == 0, backend.calls


async def test_unknown_collection_and_token_are_null_with_not_found() -> None:
    backend, _, _ = catalog_with(2)
    for query in ('{ collection(slug: "missing") { id } }',
                  '{ collection(chain: "eip155:31337", address: "0x' + "9" * 40 + '") { id } }',
                  '{ token(chain: "eip155:31337", address: "0x' + "9" * 40 + '", tokenNumber: "1") { id } }'):
        result = await execute(SCHEMA, backend, query)
        assert codes(result) == ["NOT_FOUND"] and next(iter(result.data.values())) is None


async def test_token_detail_explains_its_rarity_and_lists_its_activity() -> None:
    backend, collection, addresses = catalog_with(3)
    token = next(t for t in backend.catalog_tokens.values() if t.token_number == "2")
    backend.add_activity(token, catalog_pb2.ACTIVITY_TYPE_MINT, to_address=addresses[0])
    backend.add_activity(token, catalog_pb2.ACTIVITY_TYPE_TRANSFER, addresses[0], addresses[2])
    result = await execute(SCHEMA, backend, """
        query($a: String!) { token(chain: "eip155:31337", address: $a, tokenNumber: "2") {
          name rarity { rank explanation { trait value contribution missing meta counted } }
          activity(first: 10) { edges { node { type fromAddress toAddress token { tokenNumber } } } }
          collection { name } } }""", variables={"a": collection.contract_address})
    assert result.errors is None
    detail = result.data["token"]
    assert detail["rarity"]["rank"] == 2
    assert detail["rarity"]["explanation"] == [
        {"trait": "Background", "value": "Blue", "contribution": 1.5, "missing": False, "meta": False,
         "counted": True},
        {"trait": "Eyes", "value": "e2", "contribution": 1.5, "missing": False, "meta": False, "counted": True},
    ]
    types = [edge["node"]["type"] for edge in detail["activity"]["edges"]]
    assert types == ["TRANSFER", "MINT"]
    assert {edge["node"]["token"]["tokenNumber"] for edge in detail["activity"]["edges"]} == {"2"}
    # the detail read primed the token loader: the activity's token needs no further call
    assert backend.calls["GetToken"] == 1 and "BatchGetTokens" not in backend.calls


async def test_collections_with_stats_and_chain_head() -> None:
    backend, _collection, _ = catalog_with(4)
    other = backend.add_collection("Other")
    backend.add_token(other, 1, owner="0x" + "7" * 40)
    result = await execute(SCHEMA, backend, """
        { collections(first: 10) { totalCount edges { node { slug chain stats { itemsCount }
            network { name chainId head } } } } }""")
    assert result.errors is None
    nodes = [edge["node"] for edge in result.data["collections"]["edges"]]
    assert [(n["slug"], n["stats"]["itemsCount"]) for n in nodes] == [("other", 1), ("genesis", 4)]
    # the healthy endpoint's head wins over a higher one from an unhealthy endpoint
    assert nodes[0]["network"] == {"name": "Anvil", "chainId": 31337, "head": 120}
    assert backend.calls["GetChain"] == backend.calls["ListEndpoints"] == 1
    assert backend.calls["BatchGetCollectionStats"] == 1
    assert "BatchGetCollections" not in backend.calls  # primed from the list


async def test_chains_connection_and_head_fallback() -> None:
    backend = FakeBackend()
    backend.add_chain("eip155:1", "Ethereum", heads=((900, False),))
    backend.add_chain("eip155:10", "Optimism")
    backend.add_chain("eip155:5", "Goerli", enabled=False)
    result = await execute(SCHEMA, backend, """
        { chains { totalCount edges { node { caip2 name chainId nativeSymbol explorerUrl enabled head } } } }""")
    assert result.errors is None
    nodes = [edge["node"] for edge in result.data["chains"]["edges"]]
    assert [(n["caip2"], n["head"]) for n in nodes] == [("eip155:1", 900), ("eip155:10", None)]
    everything = await execute(SCHEMA, backend, "{ chains(includeDisabled: true) { edges { node { enabled } } } }")
    assert [e["node"]["enabled"] for e in everything.data["chains"]["edges"]] == [True, False, True]


async def test_facets_pass_their_filters_and_show_counts() -> None:
    backend, collection, _ = catalog_with(3)
    backend.traits[collection.id] = [catalog_pb2.Trait(
        id="t1", name="Background", normalized_name="background", value_type=catalog_pb2.TRAIT_VALUE_TYPE_STRING,
        null_occurrences=1, values=[catalog_pb2.TraitValue(value_string="Blue", occurrences=2, filtered_count=1,
                                                           rarity_score="0.58")],
    )]
    result = await execute(SCHEMA, backend, """
        { collection(slug: "genesis") { traits(traits: [{name: "Eyes", values: ["e1"]}]) {
            name valueType nullCount values { value count filteredCount rarityScore } } } }""")
    assert result.errors is None
    assert result.data["collection"]["traits"] == [{"name": "Background", "valueType": "STRING", "nullCount": 1,
        "values": [{"value": "Blue", "count": 2, "filteredCount": 1, "rarityScore": 0.58}]}]
    (request,) = backend.requests["ListTraits"]
    assert request.collection_id == collection.id and request.trait_filters[0].name == "Eyes"


async def test_user_tokens_span_every_linked_wallet() -> None:
    backend, _collection, addresses = catalog_with(10)
    user_id = next(uid for uid, wallets in backend.wallets.items() if wallets[0].address == addresses[0])
    backend.add_wallet(user_id, addresses[1])
    result = await execute(SCHEMA, backend, """
        query($id: ID!) { userById(id: $id) { tokens(first: 20) { totalCount edges { node { owner { address } } } } } }
    """, variables={"id": user_id})
    assert result.errors is None
    owners = {edge["node"]["owner"]["address"] for edge in result.data["userById"]["tokens"]["edges"]}
    assert owners == {addresses[0], addresses[1]} and result.data["userById"]["tokens"]["totalCount"] == 4
    (request,) = backend.requests["ListTokens"]
    assert sorted(request.owner_addresses) == sorted([addresses[0], addresses[1]])


async def test_user_tokens_check_the_collection_before_reading_wallets() -> None:
    backend = FakeBackend()
    user_id = backend.add_user("solo", "0x" + "5" * 40)
    result = await execute(SCHEMA, backend, """query($id: ID!) {
        userById(id: $id) { tokens(collection: {chain: "eip155:1"}) { totalCount } } }""", variables={"id": user_id})
    assert codes(result) == ["BAD_USER_INPUT"] and "BatchListWallets" not in backend.calls
    empty = await execute(SCHEMA, backend, """query($id: ID!) {
        userById(id: $id) { tokens { totalCount edges { cursor } pageInfo { hasNextPage } } } }""",
        variables={"id": backend.add_user("nobody")})
    assert empty.errors is None and empty.data["userById"]["tokens"] == {
        "totalCount": 0, "edges": [], "pageInfo": {"hasNextPage": False}}
    assert "ListTokens" not in backend.calls


async def test_refresh_metadata_needs_a_viewer_and_maps_rate_limits() -> None:
    backend, collection, _addresses = catalog_with(4)
    mutation = 'mutation { refreshMetadata(collectionSlug: "genesis") { queued stats { metadata { pending ok } } } }'
    anonymous = await execute(SCHEMA, backend, mutation)
    assert codes(anonymous) == ["UNAUTHENTICATED"] and "RefreshMetadata" not in backend.calls
    viewer = backend.sign_in_as(next(iter(backend.users)))
    done = await execute(SCHEMA, backend, mutation, token=viewer)
    assert done.errors is None
    assert done.data["refreshMetadata"] == {"queued": 4, "stats": {"metadata": {"pending": 4, "ok": 0}}}
    one = await execute(SCHEMA, backend, """mutation($a: String!) {
        refreshMetadata(token: {chain: "eip155:31337", address: $a, tokenNumber: "1"}) { queued } }""",
        variables={"a": collection.contract_address}, token=viewer)
    assert one.errors is None and one.data["refreshMetadata"]["queued"] == 1
    backend.refresh_wait_seconds = 30
    limited = await execute(SCHEMA, backend, mutation, token=viewer)
    assert codes(limited) == ["RATE_LIMITED"] and "30s" in limited.errors[0].message
    both = await execute(SCHEMA, backend, """mutation { refreshMetadata(collectionSlug: "genesis",
        token: {chain: "eip155:31337", address: "0x""" + "1" * 40 + """", tokenNumber: "1"}) { queued } }""",
        token=viewer)
    assert codes(both) == ["BAD_USER_INPUT"]

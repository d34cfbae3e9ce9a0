"""The catalog over GraphQL through the real gateway app (httpx ASGI transport) over real catalog,
chain-registry, wallet and user services, each in this process on an ephemeral port against the dev stack's
PostgreSQL (so they run the current code), with seeded data on a chain id of its own.

The query-count test counts what a page costs: gRPC calls with a client interceptor on the gateway's
channels, and SQL statements with a counting proxy around the catalog's connection pool. A page of 10 and a
page of 50 tokens with traits, owners (and their users) and the collection (and its stats) must cost the
same, small number of both.
"""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
import events as ev

from mintplane.api.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from mintplane.api.chain_registry.v1 import chain_registry_pb2, chain_registry_pb2_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.api.user.v1 import user_pb2, user_pb2_grpc
from mintplane.api.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from mintplane.auth import server as auth_server
from mintplane.auth.settings import AuthSettings
from mintplane.catalog import server as catalog_server
from mintplane.catalog.rarity import recompute
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.trait_store import replace_token_traits
from mintplane.catalog.traits import normalize_attributes
from mintplane.chain_registry import server as registry_server
from mintplane.common.service import Resources
from mintplane.common.settings import ServiceSettings
from mintplane.gateway.app import create_app
from mintplane.gateway.clients import ChannelPool
from mintplane.gateway.localstack import delete_identities
from mintplane.gateway.settings import GatewaySettings
from mintplane.user import server as user_server
from mintplane.wallet import server as wallet_server
from mintplane.wallet.settings import WalletSettings

pytestmark = pytest.mark.integration

TOKENS = 60
OWNERS = 6
BACKGROUNDS = ("Blue", "Red", "Green")
HEAD = 4321


class CountingConnection:
    """An asyncpg connection that counts the statements sent through it."""

    def __init__(self, connection: Any, counter: Counter[str]) -> None:
        self._connection = connection
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._connection, name)
        if name in ("fetch", "fetchrow", "fetchval", "execute", "executemany", "copy_records_to_table"):
            async def counted(*args: Any, **kwargs: Any) -> Any:
                self._counter["statements"] += 1
                return await attribute(*args, **kwargs)

            return counted
        return attribute


class CountingPool(CountingConnection):
    """The catalog's pool behind a counter: direct statements and those on acquired connections."""

    def acquire(self) -> Any:
        pool_acquire = self._connection.acquire()
        counter = self._counter

        class Acquired:
            async def __aenter__(self) -> CountingConnection:
                return CountingConnection(await pool_acquire.__aenter__(), counter)

            async def __aexit__(self, *exc: object) -> None:
                await pool_acquire.__aexit__(*exc)

        return Acquired()


class CallCounter(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Counts the gateway's upstream calls by method name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    async def intercept_unary_unary(
        self, continuation: Callable[..., Awaitable[Any]], client_call_details: Any, request: Any
    ) -> Any:
        method = client_call_details.method
        name = method.decode() if isinstance(method, bytes) else str(method)
        self.calls[name.rsplit("/", 1)[-1]] += 1
        return await continuation(client_call_details, request)


@dataclass
class Stack:
    http: httpx.AsyncClient
    grpc_calls: CallCounter
    sql: Counter[str]
    catalog: catalog_pb2_grpc.CatalogServiceStub
    registry: chain_registry_pb2_grpc.ChainRegistryServiceStub
    wallet: wallet_pb2_grpc.WalletServiceStub
    user: user_pb2_grpc.UserServiceStub
    catalog_pg: Any
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    def reset(self) -> None:
        self.grpc_calls.calls.clear()
        self.sql.clear()


@pytest_asyncio.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    started: list[tuple[Any, Resources]] = []
    ports: dict[str, int] = {}
    sql: Counter[str] = Counter()
    for name, module, settings in (
        ("catalog", catalog_server, ServiceSettings(grpc_port=0)),
        ("chain_registry", registry_server, ServiceSettings(grpc_port=0)),
        ("wallet", wallet_server, WalletSettings(grpc_port=0)),
        ("user", user_server, ServiceSettings(grpc_port=0)),
    ):
        resources = await Resources.open(settings, module.NEEDS, name=f"{name}-gateway-test")
        if name == "catalog":
            real_pool = resources.pg
            resources.pg = CountingPool(real_pool, sql)
        built = await module.build_server(settings, resources)
        await built.server.start()
        if name == "catalog":
            resources.pg = real_pool  # closed by Resources.close as usual
        started.append((built.server, resources))
        ports[name] = built.port
    address = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    auth_settings = AuthSettings(grpc_port=0, auth_user_target=address["user"], auth_wallet_target=address["wallet"],
                                 auth_chain_registry_target=address["chain_registry"])
    auth_resources = await Resources.open(auth_settings, auth_server.NEEDS, name="auth-gateway-test")
    auth_built = await auth_server.build_server(auth_settings, auth_resources)
    await auth_built.server.start()
    started.append((auth_built.server, auth_resources))
    settings = GatewaySettings(
        auth_addr=f"127.0.0.1:{auth_built.port}",
        user_addr=address["user"], wallet_addr=address["wallet"], catalog_addr=address["catalog"],
        chain_registry_addr=address["chain_registry"],
        result_cache=False, persisted_queries=False,  # every query must reach the services
    )
    counter = CallCounter()
    app = create_app(settings, upstreams=ChannelPool(settings.upstream_addresses(), interceptors=[counter]))
    channels = {name: grpc.aio.insecure_channel(target) for name, target in address.items()}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=30) as http:
                yield Stack(
                    http=http, grpc_calls=counter, sql=sql,
                    catalog=catalog_pb2_grpc.CatalogServiceStub(channels["catalog"]),
                    registry=chain_registry_pb2_grpc.ChainRegistryServiceStub(channels["chain_registry"]),
                    wallet=wallet_pb2_grpc.WalletServiceStub(channels["wallet"]),
                    user=user_pb2_grpc.UserServiceStub(channels["user"]), catalog_pg=started[0][1].pg,
                )
    finally:
        for channel in channels.values():
            await channel.close(None)
        for server, resources in reversed(started):
            await server.stop(None)
            await resources.close()


@dataclass
class Seeded:
    chain: ev.Chain
    slug: str
    collection_id: str
    contract: str
    owners: list[LocalAccount]
    users: dict[str, str]  # lowercase address -> username, for the linked owners


def _sign(text: str, account: LocalAccount) -> str:
    return "0x" + bytes(Account.sign_message(encode_defunct(text=text), account.key).signature).hex()


async def _link(stack: Stack, account: LocalAccount) -> tuple[str, str]:
    """A mintplane user owning `account`'s address, linked through the wallet service's real proof."""
    username = f"gw{uuid.uuid4().hex[:10]}"
    user = (await stack.user.CreateUser(user_pb2.CreateUserRequest(username=username))).user
    challenge = await stack.wallet.CreateLinkChallenge(wallet_pb2.CreateLinkChallengeRequest(
        user_id=user.user_id, address=account.address, chain=common_pb2.ChainRef(caip2="eip155:31337"),
        domain="localhost:8081"))
    await stack.wallet.LinkWallet(wallet_pb2.LinkWalletRequest(
        user_id=user.user_id, message=challenge.message, signature=_sign(challenge.message, account)))
    return user.user_id, username


@pytest_asyncio.fixture(scope="module")
async def seeded(stack: Stack) -> AsyncIterator[Seeded]:
    chain, contract = ev.Chain(), ev.address()
    owners = [Account.create() for _ in range(OWNERS)]
    user_ids: list[str] = []
    users: dict[str, str] = {}
    pg = stack.catalog_pg
    try:
        registered = await stack.registry.UpsertChain(chain_registry_pb2.UpsertChainRequest(
            chain=chain_registry_pb2.Chain(
                caip2=chain.caip2, chain_numeric=chain.chain_numeric, name="Gateway test chain",
                native_symbol="GTC", decimals=18, explorer_url="https://explorer.gateway.test")))
        assert registered.chain.caip2 == chain.caip2
        endpoint = (await stack.registry.UpsertEndpoint(chain_registry_pb2.UpsertEndpointRequest(
            endpoint=chain_registry_pb2.Endpoint(
                caip2=chain.caip2, url="https://rpc.gateway.test", priority=0, weight=1,
                auth_type=chain_registry_pb2.ENDPOINT_AUTH_TYPE_NONE)))).endpoint
        await stack.registry.SetEndpointHealth(chain_registry_pb2.SetEndpointHealthRequest(
            id=endpoint.id, active=True, latency_ms=3, head_block=HEAD))

        repo = CatalogRepository(pg)
        mints = [chain.event("transfer", contract, n, ev.ZERO, owners[n % OWNERS].address.lower(), block=n, log=0)
                 for n in range(1, TOKENS + 1)]
        moves = [chain.event("transfer", contract, 1, owners[1].address.lower(), owners[2].address.lower(),
                             block=TOKENS + 1, log=0)]
        await repo.ingest(mints)
        await repo.ingest(moves)
        slug = f"gateway-{uuid.uuid4().hex[:10]}"
        collection = (await stack.catalog.RegisterCollection(catalog_pb2.RegisterCollectionRequest(
            contract=common_pb2.ContractRef(chain=common_pb2.ChainRef(caip2=chain.caip2), address=contract),
            name="Gateway Genesis", slug=slug, standard=common_pb2.TOKEN_STANDARD_ERC721))).collection
        collection_id = uuid.UUID(collection.id)
        # what the metadata worker leaves behind for a fetched document (its own tests cover the fetching)
        rows = await pg.fetch(
            "UPDATE catalog.tokens SET metadata_status = 'ok', metadata_fetched_at = now(), "
            "name = 'Gateway Genesis #' || token_number, image_url = 'https://img.gateway.test/' || token_number "
            "WHERE collection_id = $1 RETURNING id, token_number", collection_id)
        traits = {
            row["id"]: normalize_attributes([
                {"trait_type": "Background", "value": BACKGROUNDS[int(row["token_number"]) % 3]},
                {"trait_type": "Eyes", "value": f"e{int(row['token_number']) % 5}"},
            ])[0]
            for row in rows
        }
        async with pg.acquire() as conn:
            async with conn.transaction():
                await replace_token_traits(conn, collection_id, traits)
            await recompute(conn, collection_id)

        for account in owners[::2]:
            user_id, username = await _link(stack, account)
            user_ids.append(user_id)
            users[account.address.lower()] = username
        yield Seeded(chain=chain, slug=slug, collection_id=collection.id, contract=contract, owners=owners,
                     users=users)
    finally:
        await pg.execute("DELETE FROM catalog.collections WHERE chain_id = $1", chain.caip2)
        await pg.execute("DELETE FROM catalog.processed_events WHERE event_id LIKE $1", chain.caip2 + ":%")
        await pg.execute("DELETE FROM chain_registry.chains WHERE caip2 = $1", chain.caip2)
        ids = [uuid.UUID(u) for u in user_ids]
        for table in ("wallet.wallet_activity", "wallet.wallet_verifications", "wallet.wallet_links"):
            await pg.execute(f"DELETE FROM {table} WHERE user_id = ANY($1::uuid[])", ids)  # noqa: S608
        await pg.execute("DELETE FROM users.users WHERE user_id = ANY($1::uuid[])", ids)


PAGE = """
query($slug: String!) {
  tokens(collection: {slug: $slug}, first: FIRST) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node {
      tokenNumber name traits { name value occurrences rarityScore meta } rarity { score rank }
      metadata { status } owner { address user { id username } }
      collection { slug name chain stats { itemsCount ownersCount metadata { pending ok failed } } }
    } }
  }
}
"""


async def test_a_token_page_costs_the_same_calls_and_statements_at_10_and_50(stack: Stack, seeded: Seeded) -> None:
    costs: dict[int, tuple[dict[str, int], int]] = {}
    for size in (10, 50, 10):
        stack.reset()
        data = await stack.graphql(PAGE.replace("FIRST", str(size)), {"slug": seeded.slug})
        connection = data["tokens"]
        edges = [edge["node"] for edge in connection["edges"]]
        assert connection["totalCount"] == TOKENS and len(edges) == size
        assert [node["tokenNumber"] for node in edges] == [str(n) for n in range(1, size + 1)]
        for node in edges:
            number = int(node["tokenNumber"])
            named = {trait["name"]: trait["value"] for trait in node["traits"] if not trait["meta"]}
            assert set(named) == {"Background", "Eyes"}
            assert named["Background"] == BACKGROUNDS[number % 3] and named["Eyes"] == f"e{number % 5}"
            assert node["rarity"] is not None and node["rarity"]["rank"] >= 1
            owner = node["owner"]["address"]
            expected_owner = seeded.owners[2 if number == 1 else number % OWNERS].address.lower()
            assert owner == expected_owner
            username = seeded.users.get(owner)
            assert (node["owner"]["user"] or {}).get("username") == username
            assert node["collection"]["slug"] == seeded.slug
            assert node["collection"]["stats"]["itemsCount"] == TOKENS
        costs[size] = (dict(stack.grpc_calls.calls), stack.sql["statements"])
        print(f"page of {size}: gRPC {dict(stack.grpc_calls.calls)}, catalog SQL statements {stack.sql['statements']}")
    calls, statements = costs[50]
    assert costs[10] == costs[50]
    assert calls == {"GetCollectionBySlug": 1, "ListTokens": 1, "BatchGetCollectionStats": 1,
                     "BatchGetWalletsByAddress": 1, "BatchGetUsers": 1}
    assert 0 < statements <= 10


async def test_collection_detail_facets_token_detail_activity_chains_and_user_tokens(
    stack: Stack, seeded: Seeded
) -> None:
    chain = seeded.chain.caip2
    collection = (await stack.graphql("""
        query($chain: String!, $address: String!) { collection(chain: $chain, address: $address) {
          id slug name chain address standard totalSupply status
          network { caip2 name chainId nativeSymbol explorerUrl enabled head }
          stats { itemsCount ownersCount rarityComputedAt }
          traits { name values { value count filteredCount } }
          filtered: traits(traits: [{name: "background", values: ["blue"]}]) { name values { value filteredCount } }
        } }""", {"chain": chain, "address": seeded.contract.upper().replace("0X", "0x")}))["collection"]
    assert (collection["slug"], collection["chain"], collection["address"]) == (seeded.slug, chain, seeded.contract)
    assert collection["network"] == {"caip2": chain, "name": "Gateway test chain",
                                     "chainId": seeded.chain.chain_numeric, "nativeSymbol": "GTC",
                                     "explorerUrl": "https://explorer.gateway.test", "enabled": True, "head": HEAD}
    assert collection["stats"]["itemsCount"] == TOKENS and collection["stats"]["rarityComputedAt"]
    backgrounds = next(trait for trait in collection["traits"] if trait["name"] == "Background")
    assert sorted((v["value"], v["count"]) for v in backgrounds["values"]) == [("Blue", 20), ("Green", 20), ("Red", 20)]
    # facet semantics: a filter on Background narrows the other traits' counts, not Background's own
    eyes = next(trait for trait in collection["filtered"] if trait["name"] == "Eyes")
    assert sum(value["filteredCount"] for value in eyes["values"]) == 20

    red = await stack.graphql("""
        query($slug: String!) {
          tokens(collection: {slug: $slug}, traits: [{name: "Background", values: ["red"]}], sort: RARITY, first: 50) {
            totalCount edges { node { tokenNumber rarity { rank } } } } }
    """, {"slug": seeded.slug})
    ranks = [edge["node"]["rarity"]["rank"] for edge in red["tokens"]["edges"]]
    assert red["tokens"]["totalCount"] == 20 and ranks == sorted(ranks)
    assert all(int(edge["node"]["tokenNumber"]) % 3 == 1 for edge in red["tokens"]["edges"])

    detail = (await stack.graphql("""
        query($chain: String!, $address: String!) { token(chain: $chain, address: $address, tokenNumber: "1") {
          tokenNumber owner { address } lastTransferredAt
          rarity { score rank }
          activity(first: 10) { edges { node { type fromAddress toAddress token { tokenNumber } } } }
        } }""", {"chain": chain, "address": seeded.contract}))["token"]
    assert detail["owner"]["address"] == seeded.owners[2].address.lower() and detail["lastTransferredAt"]
    assert [edge["node"]["type"] for edge in detail["activity"]["edges"]] == ["TRANSFER", "MINT"]

    by_address = await stack.graphql("""
        query($address: String!) { activity(address: $address, types: [TRANSFER], first: 5) {
          edges { node { type toAddress collection { slug } } } } }""", {"address": seeded.owners[2].address})
    assert [(e["node"]["type"], e["node"]["collection"]["slug"]) for e in by_address["activity"]["edges"]] == [
        ("TRANSFER", seeded.slug)]

    owner = seeded.owners[0].address.lower()
    user_id = (await stack.wallet.BatchGetWalletsByAddress(
        wallet_pb2.BatchGetWalletsByAddressRequest(addresses=[owner]))).wallets[0].user_id
    mine = await stack.graphql("""
        query($id: ID!, $slug: String!) { userById(id: $id) {
          tokens(first: 50, collection: {slug: $slug}) { totalCount edges { node { owner { address } } } } } }
    """, {"id": user_id, "slug": seeded.slug})
    tokens = mine["userById"]["tokens"]
    assert tokens["totalCount"] == TOKENS // OWNERS
    assert {edge["node"]["owner"]["address"] for edge in tokens["edges"]} == {owner}


async def test_token_detail_explains_its_rarity_with_terms_that_sum_to_the_score(stack: Stack, seeded: Seeded) -> None:
    rows = await stack.catalog_pg.fetch(
        "SELECT token_number, rarity_score, rarity_rank FROM catalog.tokens WHERE collection_id = $1 "
        "ORDER BY rarity_rank, token_number LIMIT 3", uuid.UUID(seeded.collection_id))
    for row in rows:
        token = (await stack.graphql("""
            query($chain: String!, $address: String!, $number: String!) {
              token(chain: $chain, address: $address, tokenNumber: $number) {
                rarity { score rank explanation { trait value occurrences contribution missing meta counted } } } }
        """, {"chain": seeded.chain.caip2, "address": seeded.contract, "number": row["token_number"]}))["token"]
        rarity = token["rarity"]
        assert rarity["rank"] == row["rarity_rank"] and abs(rarity["score"] - float(row["rarity_score"])) < 1e-9
        terms = rarity["explanation"]
        assert {term["trait"] for term in terms if not term["meta"]} == {"Background", "Eyes"}
        assert sum(1 for term in terms if term["meta"]) == 1  # the trait-count term
        assert abs(sum(term["contribution"] for term in terms) - rarity["score"]) < 1e-6


SIGN_IN = """mutation($m: String!, $s: String!) { signIn(message: $m, signature: $s) { accessToken viewer { id } } }"""
REFRESH = """mutation($slug: String) { refreshMetadata(collectionSlug: $slug) { queued
  stats { itemsCount metadata { pending ok failed } } } }"""


async def test_refresh_metadata_needs_a_viewer_queues_the_collection_and_is_rate_limited(
    stack: Stack, seeded: Seeded
) -> None:
    stack.reset()
    anonymous = (await stack.http.post("/graphql", json={"query": REFRESH, "variables": {"slug": seeded.slug}})).json()
    assert [error["extensions"]["code"] for error in anonymous["errors"]] == ["UNAUTHENTICATED"]
    assert "RefreshMetadata" not in stack.grpc_calls.calls

    account = Account.create()
    nonce = await stack.graphql("mutation($a: String!) { nonce(address: $a, chainId: 31337) { message } }",
                                {"a": account.address})
    message = nonce["nonce"]["message"]
    signed = (await stack.graphql(SIGN_IN, {"m": message, "s": _sign(message, account)}))["signIn"]
    headers = {"authorization": f"Bearer {signed['accessToken']}"}
    try:
        done = (await stack.http.post("/graphql", headers=headers,
                                      json={"query": REFRESH, "variables": {"slug": seeded.slug}})).json()
        assert "errors" not in done, done
        payload = done["data"]["refreshMetadata"]
        assert payload["queued"] == TOKENS
        assert payload["stats"]["itemsCount"] == TOKENS and payload["stats"]["metadata"]["pending"] == TOKENS
        again = (await stack.http.post("/graphql", headers=headers,
                                       json={"query": REFRESH, "variables": {"slug": seeded.slug}})).json()
        assert [error["extensions"]["code"] for error in again["errors"]] == ["RATE_LIMITED"]
        assert "retry after" in again["errors"][0]["message"]
        listed = await stack.graphql(PAGE.replace("FIRST", "5"), {"slug": seeded.slug})
        assert {edge["node"]["metadata"]["status"] for edge in listed["tokens"]["edges"]} == {"PENDING"}
    finally:
        await delete_identities([signed["viewer"]["id"]], [account.address])


async def test_unknown_lookups_are_null_with_not_found_and_bad_input_never_reaches_upstream(
    stack: Stack, seeded: Seeded
) -> None:
    response = await stack.http.post("/graphql", json={"query": '{ collection(slug: "no-such-gateway-slug") { id } }'})
    body = response.json()
    assert body["data"] == {"collection": None}
    assert [error["extensions"]["code"] for error in body["errors"]] == ["NOT_FOUND"]
    stack.reset()
    bad = await stack.http.post("/graphql", json={"query": """{ tokens(collection: {slug: "x"},
        ranges: [{name: "Level", min: "9", max: "1"}]) { totalCount } }"""})
    assert [error["extensions"]["code"] for error in bad.json()["errors"]] == ["BAD_USER_INPUT"]
    assert sum(stack.grpc_calls.calls.values()) == 0

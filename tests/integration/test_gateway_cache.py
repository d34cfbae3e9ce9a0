"""The gateway's hot read path against the real parts: the gateway app in-process (httpx ASGI transport) over
the dev stack's Redis and RabbitMQ, a catalog gRPC service in this process on an ephemeral port over the dev
PostgreSQL, transfers ingested by the catalog's real consumer from the broker, and its change events reaching
the gateway over the broker. Identity comes from this tree's auth, user and wallet processes (localstack).

Waits poll with a deadline for the event to arrive, never sleep for a TTL: every cache TTL here is minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
import pytest_asyncio
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
import events as ev
import pipeline as pl

from mintplane.catalog.changes import ChangePublisher
from mintplane.catalog.consumer import TransferConsumer
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.server import NEEDS, build_server
from mintplane.common import amqp
from mintplane.common.service import Resources
from mintplane.common.settings import InfraSettings, ServiceSettings
from mintplane.gateway.app import create_app
from mintplane.gateway.hot_path import HotReadPath
from mintplane.gateway.localstack import delete_identities, local_stack
from mintplane.gateway.persisted import sha256_hex
from mintplane.gateway.result_cache import LISTS_TAG
from mintplane.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

ZERO = ev.ZERO
INFRA = InfraSettings()
AMQP_URL = INFRA.amqp_url.get_secret_value()
TOKEN = """query($c: String!, $a: String!, $n: String!) {
  token(chain: $c, address: $a, tokenNumber: $n) { id tokenNumber owner { address } } }"""
COLLECTIONS = "query($c: String!) { collections(chain: $c) { totalCount edges { node { id address } } } }"


@dataclass
class Catalog:
    port: int
    resources: Resources


@pytest_asyncio.fixture
async def catalog() -> AsyncIterator[Catalog]:
    settings = ServiceSettings(grpc_port=0)
    resources = await Resources.open(settings, NEEDS, name="gateway-cache-test")
    built = await build_server(settings, resources)
    await built.server.start()
    try:
        yield Catalog(built.port, resources)
    finally:
        await built.server.stop(None)
        await resources.close()


@pytest_asyncio.fixture
async def chain(catalog: Catalog) -> AsyncIterator[ev.Chain]:
    made = ev.Chain()
    yield made
    await catalog.resources.pg.execute("DELETE FROM catalog.collections WHERE chain_id = $1", made.caip2)
    await catalog.resources.pg.execute("DELETE FROM catalog.processed_events WHERE event_id LIKE $1",
                                       made.caip2 + ":%")


@dataclass
class Ingestion:
    """The catalog's consumer on a queue of this test, publishing its change events like the service does."""

    consumer: TransferConsumer
    changes: ChangePublisher
    chain: ev.Chain

    async def publish(self, *bodies: bytes) -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(pl.TEST_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            for body in bodies:
                await exchange.publish(aio_pika.Message(body=body), routing_key=f"chain.{self.chain.caip2}.transfer")


@pytest_asyncio.fixture
async def ingestion(catalog: Catalog, chain: ev.Chain) -> AsyncIterator[Ingestion]:
    async def connect() -> Any:
        return await amqp.connect(INFRA, name="gateway-cache-test")

    changes = ChangePublisher(connect)
    queue = f"test.gateway.cache.{uuid.uuid4().hex[:10]}"
    consumer = TransferConsumer(CatalogRepository(catalog.resources.pg), connect, queue=queue,
                                routing_keys=(f"chain.{chain.caip2}.transfer",), batch_wait=0.01,
                                exchange=pl.TEST_EXCHANGE, on_change=changes.listener("ingest"))
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(consumer.ready.wait(), 30)
    try:
        yield Ingestion(consumer, changes, chain)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await changes.close()
        await pl.delete_queue_named(AMQP_URL, queue)


@asynccontextmanager
async def gateway(catalog_port: int | None = None, namespace: str | None = None,
                  **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, HotReadPath]]:
    if catalog_port is not None:
        settings["catalog_addr"] = f"127.0.0.1:{catalog_port}"
    app = create_app(GatewaySettings(result_cache_namespace=namespace or f"test:gw:{uuid.uuid4().hex[:10]}",
                                     **settings), infra=INFRA)
    hot: HotReadPath = app.state.hot_path
    async with app.router.lifespan_context(app):
        assert hot.invalidator is not None
        await asyncio.wait_for(hot.invalidator.connected.wait(), 30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=20) as client:
            yield client, hot


async def until(check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, what: str = "") -> Any:
    """Poll `check` until it returns something truthy (the event's propagation), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def get(query: str, variables: dict[str, Any]) -> dict[str, str]:
    return {"query": query, "variables": orjson.dumps(variables).decode()}


async def test_a_transfer_is_visible_in_the_next_query(catalog: Catalog, ingestion: Ingestion,
                                                       chain: ev.Chain) -> None:
    contract, alice, bob = ev.address(), ev.address(), ev.address()
    token_vars = {"c": chain.caip2, "a": contract, "n": "1"}
    owned = "query($o: String!) { tokens(owner: $o) { totalCount edges { node { tokenNumber address } } } }"
    async with gateway(catalog.port) as (client, hot):
        assert hot.cache is not None
        empty = await client.get("/graphql", params=get(owned, {"o": bob}))
        assert empty.json() == {"data": {"tokens": {"totalCount": 0, "edges": []}}}, empty.text
        await _cached(client, owned, {"o": bob})  # bob owns nothing, and that answer is cached

        await ingestion.publish(chain.body("transfer", contract, 1, ZERO, alice, block=10))

        async def minted() -> Any:
            response = await client.get("/graphql", params=get(TOKEN, token_vars))
            return response.json()["data"]["token"] if "errors" not in response.json() else None

        token = await until(minted, what="the mint to reach the catalog")
        assert token["owner"] == {"address": alice}
        await until(lambda: _seen(hot, f"token:{token['id']}"), what="the mint's change event")
        await _cached(client, TOKEN, token_vars)

        before = time.time()
        await ingestion.publish(chain.body("transfer", contract, 1, alice, bob, block=11))
        await until(lambda: _seen(hot, f"token:{token['id']}", after=before), what="the transfer's change event")
        moved = await client.get("/graphql", params=get(TOKEN, token_vars))
        assert moved.headers["x-mintplane-cache"] == "miss"
        assert moved.json()["data"]["token"]["owner"] == {"address": bob}
        # bob's cached empty list was tagged catalog:lists, which every change event drops
        listed = await client.get("/graphql", params=get(owned, {"o": bob}))
        assert listed.json()["data"]["tokens"]["edges"] == [{"node": {"tokenNumber": "1", "address": contract}}]
        assert ingestion.consumer.stats.applied == 2


async def test_a_new_token_shows_in_a_cached_collection_list_and_lists_of_other_chains_stay(
        catalog: Catalog, ingestion: Ingestion, chain: ev.Chain) -> None:
    contract, alice = ev.address(), ev.address()
    await ingestion.publish(chain.body("transfer", contract, 1, ZERO, alice, block=20))
    tokens_query = """query($c: String!, $a: String!) {
      tokens(collection: {chain: $c, address: $a}) { totalCount edges { node { tokenNumber } } } }"""
    variables = {"c": chain.caip2, "a": contract}
    async with gateway(catalog.port) as (client, hot):
        async def one_token() -> bool:
            body = (await client.get("/graphql", params=get(tokens_query, variables))).json()
            return "errors" not in body and body["data"]["tokens"]["totalCount"] == 1

        await until(one_token, what="the first token")
        await _cached(client, tokens_query, variables)
        before = time.time()
        await ingestion.publish(chain.body("transfer", contract, 2, ZERO, alice, block=21))
        pg = catalog.resources.pg

        async def stored() -> Any:
            return await pg.fetchval("""SELECT t.id FROM catalog.tokens t JOIN catalog.collections c
                                         ON c.id = t.collection_id WHERE c.chain_id = $1 AND t.token_number = '2'""",
                                     chain.caip2)

        new_id = await until(stored, what="token 2 in the catalog")
        await until(lambda: _seen(hot, f"token:{new_id}", after=before), what="token 2's change event")
        page = (await client.get("/graphql", params=get(tokens_query, variables))).json()
        assert [edge["node"]["tokenNumber"] for edge in page["data"]["tokens"]["edges"]] == ["1", "2"]


async def test_persisted_queries_and_results_are_shared_between_gateway_processes(
        catalog: Catalog, ingestion: Ingestion, chain: ev.Chain) -> None:
    contract, alice = ev.address(), ev.address()
    await ingestion.publish(chain.body("transfer", contract, 5, ZERO, alice, block=30))
    variables = {"c": chain.caip2, "a": contract, "n": "5"}
    query_hash = sha256_hex(TOKEN)
    extensions = orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": query_hash}}).decode()
    by_hash = {"extensions": extensions, "variables": orjson.dumps(variables).decode()}
    namespace = f"test:gw:{uuid.uuid4().hex[:10]}"
    async with gateway(catalog.port, namespace) as (first, _), gateway(catalog.port, namespace) as (second, _):
        assert (await first.get("/graphql", params=by_hash)).json()["errors"][0]["message"] == "PersistedQueryNotFound"

        async def registered() -> Any:
            response = await first.post("/graphql", json={"query": TOKEN, "variables": variables,
                                                           "extensions": orjson.loads(extensions)})
            return response.json()["data"]["token"] if "errors" not in response.json() else None

        await until(registered, what="the token through the first gateway")

        async def stored_entry() -> httpx.Response | None:
            response = await first.get("/graphql", params=by_hash)
            return response if "etag" in response.headers else None

        stored = await until(stored_entry, timeout=5, what="the entry to be stored")
        # another process: its LRUs are empty, Redis has the query text and the response
        shared = await second.get("/graphql", params=by_hash, headers={"if-none-match": stored.headers["etag"]})
        assert shared.status_code == 304 and shared.headers["x-mintplane-cache"] == "hit"
        body = await second.get("/graphql", params=by_hash)
        assert body.json()["data"]["token"]["owner"] == {"address": alice}


async def _cached(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> None:
    """Make sure the operation is in the cache now (the first run after an event may fall in the skew guard)."""
    async def hit() -> bool:
        response = await client.get("/graphql", params=get(query, variables))
        return bool(response.headers.get("x-mintplane-cache") == "hit")

    await until(hit, timeout=5, what="the entry to be cached")


async def _seen(hot: HotReadPath, tag: str, *, after: float = 0.0) -> bool:
    assert hot.cache is not None
    at = hot.cache.invalidated_at(tag)
    return at is not None and at > after


# ---------------------------------------------------------------------------------- viewers and users


CHAIN_ID = 31337
SIGN_IN = """mutation($m: String!, $s: String!) { signIn(message: $m, signature: $s) { accessToken viewer { id } } }"""


@dataclass
class Signed:
    account: LocalAccount
    token: str
    user_id: str


async def _gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
               token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


async def _sign_in(client: httpx.AsyncClient, users: list[str], addresses: list[str]) -> Signed:
    account: LocalAccount = Account.create()
    addresses.append(account.address)
    nonce = await _gql(client, "mutation($a: String!, $c: Int!) { nonce(address: $a, chainId: $c) { message } }",
                       {"a": account.address, "c": CHAIN_ID})
    message = nonce["data"]["nonce"]["message"]
    signature = "0x" + bytes(account.sign_message(encode_defunct(text=message)).signature).hex()
    body = await _gql(client, SIGN_IN, {"m": message, "s": signature})
    users.append(body["data"]["signIn"]["viewer"]["id"])
    return Signed(account, body["data"]["signIn"]["accessToken"], body["data"]["signIn"]["viewer"]["id"])


async def test_user_as_viewer_fields_never_reach_user_b_through_the_cache(catalog: Catalog) -> None:
    users: list[str] = []
    addresses: list[str] = []
    # this source tree's auth, user and wallet processes; profiles have no change events: let them be cached
    # for a minute here, so that sharing is really possible
    async with local_stack() as stack, gateway(
            catalog.port, result_cache_unevented_ttl_seconds=60, auth_addr=f"127.0.0.1:{stack.ports['auth']}",
            user_addr=f"127.0.0.1:{stack.ports['user']}", wallet_addr=f"127.0.0.1:{stack.ports['wallet']}",
    ) as (client, _):
        try:
            alice = await _sign_in(client, users, addresses)
            bob = await _sign_in(client, users, addresses)
            name = f"al_{uuid.uuid4().hex[:10]}"
            await _gql(client, 'mutation($u: String!) { updateProfile(input: {username: $u, displayName: "Al"}) '
                               '{ id } }', {"u": name}, alice.token)
            await _gql(client, "mutation($id: ID!) { follow(userId: $id) { changed } }", {"id": bob.user_id},
                       alice.token)

            me = "{ me { id address } }"
            following = "query($id: ID!) { userById(id: $id) { id viewerIsFollowing } }"
            wallets = "query($u: String!) { user(username: $u) { wallets { address label } } }"
            for _ in range(2):  # a second round would be served from the cache if anything were shared
                assert (await _gql(client, me, token=alice.token))["data"]["me"]["id"] == alice.user_id
                assert (await _gql(client, me, token=bob.token))["data"]["me"]["id"] == bob.user_id
                as_alice = await _gql(client, following, {"id": bob.user_id}, alice.token)
                as_bob = await _gql(client, following, {"id": bob.user_id}, bob.token)
                anonymous = await _gql(client, following, {"id": bob.user_id})
                assert as_alice["data"]["userById"]["viewerIsFollowing"] is True
                assert as_bob["data"]["userById"]["viewerIsFollowing"] is False
                assert anonymous["data"]["userById"]["viewerIsFollowing"] is None
                await _gql(client, 'mutation($w: ID!) { updateWalletLabel(walletId: $w, label: "mine") { id } }',
                           {"w": (await _gql(client, "{ wallets { id } }", token=alice.token))["data"]["wallets"][0][
                               "id"]}, alice.token)
                own = await _gql(client, wallets, {"u": name}, alice.token)
                seen_by_bob = await _gql(client, wallets, {"u": name}, bob.token)
                assert own["data"]["user"]["wallets"][0]["label"] == "mine"
                assert seen_by_bob["data"]["user"]["wallets"][0]["label"] is None

            # a public profile query is shared: the anonymous GET is public and cached, alice's GET private
            public = get("query($u: String!) { user(username: $u) { id displayName } }", {"u": name})
            first = await client.get("/graphql", params=public)
            second = await client.get("/graphql", params=public)
            assert second.headers["x-mintplane-cache"] == "hit" and second.headers["cache-control"].startswith("public")
            signed = await client.get("/graphql", params=public, headers={"authorization": f"Bearer {alice.token}"})
            assert signed.content == first.content and signed.headers["cache-control"] == "private, no-store"
            viewer = await client.get("/graphql", params={"query": "{ me { id } }"},
                                      headers={"authorization": f"Bearer {bob.token}"})
            assert viewer.headers["cache-control"] == "private, no-store"
            assert viewer.json()["data"]["me"]["id"] == bob.user_id
        finally:
            await delete_identities(users, addresses)


async def test_lists_tag_is_dropped_by_every_change_event(catalog: Catalog, ingestion: Ingestion,
                                                          chain: ev.Chain) -> None:
    async with gateway(catalog.port) as (client, hot):
        before = time.time()
        await ingestion.changes.publish("refresh", [uuid.uuid4()], [])
        await until(lambda: _seen(hot, LISTS_TAG, after=before), what="a change event")
        invalidator = hot.invalidator
        assert invalidator is not None

        async def applied() -> bool:
            return invalidator.events_seen >= 1

        await until(applied, what="the event to be applied")
        metrics = (await client.get("/metrics")).text
        assert "gateway_catalog_change_events_total" in metrics and "gateway_result_cache_total" in metrics

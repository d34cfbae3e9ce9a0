"""The catalog gRPC API as a client sees it: the service runs in this process on an ephemeral port with real
clients (``build_server`` + ``Resources.open``), data comes in through the same ingestion the consumer uses.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
import events as ev

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.catalog.v1 import catalog_pb2_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.server import NEEDS, build_server
from mintplane.common.service import Resources
from mintplane.common.settings import ServiceSettings

pytestmark = pytest.mark.integration
ZERO = ev.ZERO


class Api:
    def __init__(self, stub: catalog_pb2_grpc.CatalogServiceStub, resources: Resources) -> None:
        self.stub = stub
        self.repo = CatalogRepository(resources.pg)
        self.resources = resources


@pytest_asyncio.fixture
async def api() -> AsyncIterator[Api]:
    settings = ServiceSettings(grpc_port=0)
    resources = await Resources.open(settings, NEEDS, name="catalog-test")
    built = await build_server(settings, resources)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        yield Api(catalog_pb2_grpc.CatalogServiceStub(channel), resources)
    finally:
        await channel.close(None)
        await built.server.stop(None)
        await resources.close()


@pytest_asyncio.fixture
async def chain(api: Api) -> AsyncIterator[ev.Chain]:
    made = ev.Chain()
    yield made
    await api.resources.pg.execute("DELETE FROM catalog.collections WHERE chain_id = $1", made.caip2)
    await api.resources.pg.execute("DELETE FROM catalog.processed_events WHERE event_id LIKE $1", made.caip2 + ":%")


def _contract(chain: ev.Chain, address: str) -> common_pb2.ContractRef:
    return common_pb2.ContractRef(chain=common_pb2.ChainRef(caip2=chain.caip2), address=address)


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    code: grpc.StatusCode = error.value.code()
    return code


async def test_register_collection_is_idempotent_and_validated(api: Api, chain: ev.Chain) -> None:
    contract = ev.address()
    name = f"Genesis {uuid.uuid4().hex[:6]}"
    request = pb.RegisterCollectionRequest(contract=_contract(chain, contract.upper().replace("0X", "0x")), name=name,
                                           standard=common_pb2.TOKEN_STANDARD_ERC721, deploy_block=7)
    first = await api.stub.RegisterCollection(request)
    assert first.created and first.collection.contract_address == contract
    assert first.collection.slug == name.lower().replace(" ", "-")
    assert first.collection.status == pb.COLLECTION_STATUS_LIVE and first.collection.deploy_block == 7
    again = await api.stub.RegisterCollection(request)
    assert not again.created and again.collection.id == first.collection.id

    # a second contract with the same name gets a unique slug; an explicit taken slug is refused
    other = await api.stub.RegisterCollection(pb.RegisterCollectionRequest(
        contract=_contract(chain, ev.address()), name=name, standard=common_pb2.TOKEN_STANDARD_ERC721))
    assert other.collection.slug == first.collection.slug + "-2"
    assert await _code(api.stub.RegisterCollection(pb.RegisterCollectionRequest(
        contract=_contract(chain, ev.address()), name="x", slug=first.collection.slug,
        standard=common_pb2.TOKEN_STANDARD_ERC721))) == grpc.StatusCode.ALREADY_EXISTS
    assert await _code(api.stub.RegisterCollection(pb.RegisterCollectionRequest(
        contract=_contract(chain, contract), name=name,
        standard=common_pb2.TOKEN_STANDARD_ERC1155))) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(api.stub.RegisterCollection(pb.RegisterCollectionRequest(
        contract=_contract(chain, "0x123"), name="x",
        standard=common_pb2.TOKEN_STANDARD_ERC721))) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(api.stub.RegisterCollection(pb.RegisterCollectionRequest(
        contract=_contract(chain, ev.address()), name="x",
        standard=common_pb2.TOKEN_STANDARD_ERC20))) == grpc.StatusCode.INVALID_ARGUMENT

    by_id = await api.stub.GetCollection(pb.GetCollectionRequest(id=first.collection.id))
    by_contract = await api.stub.GetCollectionByContract(pb.GetCollectionByContractRequest(
        contract=_contract(chain, contract)))
    assert by_id.collection == by_contract.collection == again.collection
    missing = pb.GetCollectionRequest(id=str(uuid.uuid4()))
    assert await _code(api.stub.GetCollection(missing)) == grpc.StatusCode.NOT_FOUND
    assert await _code(api.stub.GetCollection(pb.GetCollectionRequest(id="nope"))) == grpc.StatusCode.INVALID_ARGUMENT


async def test_registering_adopts_a_collection_discovered_from_its_transfers(api: Api, chain: ev.Chain) -> None:
    contract, alice = ev.address(), ev.address()
    await api.repo.ingest([chain.event("transfer", contract, n, ZERO, alice, block=5, log=n) for n in range(3)])
    discovered = await api.stub.GetCollectionByContract(pb.GetCollectionByContractRequest(
        contract=_contract(chain, contract)))
    registered = await api.stub.RegisterCollection(pb.RegisterCollectionRequest(
        contract=_contract(chain, contract), name="Late Registration", slug=f"late-{uuid.uuid4().hex[:8]}",
        standard=common_pb2.TOKEN_STANDARD_ERC721))
    assert registered.created and registered.collection.id == discovered.collection.id
    assert registered.collection.name == "Late Registration" and registered.collection.total_supply == "3"
    stats = await api.stub.GetCollectionStats(pb.GetCollectionStatsRequest(collection_id=registered.collection.id))
    assert (stats.stats.items_count, stats.stats.owners_count, stats.stats.listed_count) == (3, 1, 0)


async def test_tokens_page_in_numeric_order_with_owner_filter_and_exact_totals(api: Api, chain: ev.Chain) -> None:
    contract, alice, bob = ev.address(), ev.address(), ev.address()
    second = ev.address()
    await api.repo.ingest(
        [chain.event("transfer", contract, n, ZERO, alice if n % 3 else bob, block=1, log=n) for n in range(1, 26)]
        + [chain.event("transfer", second, 1000, ZERO, bob, block=2)]
        + [chain.event("transfer", contract, 3, bob, ZERO, block=3)]  # burned
    )
    collection = (await api.stub.GetCollectionByContract(pb.GetCollectionByContractRequest(
        contract=_contract(chain, contract)))).collection
    numbers: list[str] = []
    token = ""
    while True:
        page = await api.stub.ListTokens(pb.ListTokensRequest(
            collection_id=collection.id, page=common_pb2.PageRequest(page_size=10, page_token=token)))
        assert page.page.total_size == 24
        numbers += [t.token_number for t in page.tokens]
        token = page.page.next_page_token
        if not token:
            break
    assert numbers == [str(n) for n in range(1, 26) if n != 3]  # 2 < 10 < 11: numeric, not text, order
    with_burned = await api.stub.ListTokens(pb.ListTokensRequest(collection_id=collection.id, include_burned=True))
    assert with_burned.page.total_size == 25

    owned = await api.stub.ListTokens(pb.ListTokensRequest(owner_address=bob.upper().replace("0X", "0x")))
    assert {(t.contract_address, t.token_number) for t in owned.tokens} == (
        {(contract, str(n)) for n in range(1, 26) if n % 3 == 0 and n != 3} | {(second, "1000")})
    assert all(t.owner_address == bob for t in owned.tokens)

    one = owned.tokens[0]
    by_id = await api.stub.GetToken(pb.GetTokenRequest(id=one.id))
    by_key = await api.stub.GetToken(pb.GetTokenRequest(key=pb.TokenKey(
        contract=_contract(chain, one.contract_address), token_number=one.token_number)))
    assert by_id.token == by_key.token and by_id.token.minted_at.seconds > 0
    assert await _code(api.stub.GetToken(pb.GetTokenRequest(key=pb.TokenKey(
        contract=_contract(chain, contract), token_number="999")))) == grpc.StatusCode.NOT_FOUND

    newest = await api.stub.ListTokens(pb.ListTokensRequest(
        collection_id=collection.id, owner_address=bob, sort=pb.TOKEN_SORT_MINTED_AT_DESC,
        page=common_pb2.PageRequest(page_size=3)))
    assert len(newest.tokens) == 3 and newest.page.next_page_token

    codes = [
        await _code(api.stub.ListTokens(pb.ListTokensRequest())),
        await _code(api.stub.ListTokens(pb.ListTokensRequest(collection_id=collection.id, page=common_pb2.PageRequest(
            page_token=newest.page.next_page_token)))),  # a token of another request
        await _code(api.stub.ListTokens(pb.ListTokensRequest(collection_id=collection.id, page=common_pb2.PageRequest(
            page_token="garbage")))),
        await _code(api.stub.ListTokens(pb.ListTokensRequest(collection_id=collection.id,
                                                             sort=pb.TOKEN_SORT_PRICE_ASC))),
        await _code(api.stub.ListTokens(pb.ListTokensRequest(collection_id=collection.id,
                                                             page=common_pb2.PageRequest(page_size=-1)))),
    ]
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * 5


async def test_activity_feeds_newest_first_by_token_collection_and_address(api: Api, chain: ev.Chain) -> None:
    contract, alice, bob, carol = ev.address(), ev.address(), ev.address(), ev.address()
    await api.repo.ingest([
        chain.event("transfer", contract, 1, ZERO, alice, block=10),
        chain.event("transfer", contract, 2, ZERO, alice, block=10, log=1),
        chain.event("transfer", contract, 1, alice, bob, block=11),
        chain.event("transfer", contract, 1, bob, carol, block=12),
        chain.event("transfer", contract, 2, alice, ZERO, block=13),
    ])
    token = (await api.stub.GetToken(pb.GetTokenRequest(key=pb.TokenKey(
        contract=_contract(chain, contract), token_number="1")))).token
    assert token.owner_address == carol
    feed = await api.stub.ListActivities(pb.ListActivitiesRequest(token_id=token.id))
    assert [(a.activity_type, a.from_address, a.to_address) for a in feed.activities] == [
        (pb.ACTIVITY_TYPE_TRANSFER, bob, carol), (pb.ACTIVITY_TYPE_TRANSFER, alice, bob),
        (pb.ACTIVITY_TYPE_MINT, "", alice)]
    collection_id = token.collection_id
    pages, page_token = [], ""
    while True:
        page = await api.stub.ListActivities(pb.ListActivitiesRequest(
            collection_id=collection_id, page=common_pb2.PageRequest(page_size=2, page_token=page_token)))
        pages.append(len(page.activities))
        page_token = page.page.next_page_token
        if not page_token:
            break
    assert pages == [2, 2, 1]
    bobs = await api.stub.ListActivities(pb.ListActivitiesRequest(address=bob))
    assert len(bobs.activities) == 2
    burns = await api.stub.ListActivities(pb.ListActivitiesRequest(
        collection_id=collection_id, activity_types=[pb.ACTIVITY_TYPE_BURN]))
    assert [(a.activity_type, a.from_address, a.to_address) for a in burns.activities] == [
        (pb.ACTIVITY_TYPE_BURN, alice, "")]
    assert await _code(api.stub.ListActivities(pb.ListActivitiesRequest())) == grpc.StatusCode.INVALID_ARGUMENT

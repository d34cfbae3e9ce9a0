"""Token metadata end to end on real parts: contracts on a private anvil registered in the chain registry,
documents on loopback HTTP servers (an allow-listed file server that is also the IPFS and Arweave
gateway), transfers ingested the way the consumer ingests them, the worker, and the catalog gRPC API.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "metadata"))
import chainkit as ck
import events as ev
import metakit as mk

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.catalog.v1 import catalog_pb2_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.catalog.metadata.store import MetadataStore, Outcome
from mintplane.catalog.metadata.worker import MetadataWorker, make_worker
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.settings import CatalogSettings
from mintplane.common.registry_client import GrpcRegistryClient
from mintplane.common.service import Resources

pytestmark = pytest.mark.integration
CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
AR_TX = "bNbA3TEQVL60xlgCcqdz4ZPHFZ711cZ3hmkpGttDt_U"


@dataclass
class World:
    anvil: ck.Anvil
    chain: ev.Chain
    files: mk.FileServer  # allow-listed: documents, the IPFS and Arweave gateways, hostile routes
    outside: mk.FileServer  # never allow-listed: what a refused redirect or name would have reached
    resources: Resources
    stub: catalog_pb2_grpc.CatalogServiceStub
    registry: GrpcRegistryClient
    repo: CatalogRepository
    block: int = 100

    def settings(self, **overrides: Any) -> CatalogSettings:
        values: dict[str, Any] = {
            "metadata_allow_hosts": [self.files.hostport], "metadata_ipfs_gateways": [self.files.url("")],
            "metadata_arweave_gateways": [self.files.url("/ar")], "metadata_chains": [self.chain.caip2],
            "metadata_retry_base_seconds": 0.0, "metadata_max_attempts": 1, "metadata_total_timeout_seconds": 8.0,
            "metadata_idle_timeout_seconds": 4.0, "metadata_min_rate_grace_seconds": 1.5,
            "metadata_max_bytes": 1024 * 1024, "metadata_batch_size": 50,
        }
        values.update(overrides)
        return CatalogSettings(**values)

    def worker(self, **overrides: Any) -> MetadataWorker:
        return make_worker(self.settings(**overrides), self.resources.pg, self.registry, pipelines=1)

    async def mint_events(self, contract: str, tokens: list[int], standard: str = "ERC721") -> None:
        """Transfers from the zero address, through the consumer's ingestion (one batch)."""
        self.block += 1
        await self.repo.ingest([self.chain.event("transfer", contract, n, ev.ZERO, ck.ACCOUNTS[1], block=self.block,
                                                 log=i, standard=standard) for i, n in enumerate(tokens)])

    async def token(self, contract: str, number: int) -> pb.Token:
        key = pb.TokenKey(contract=common_pb2.ContractRef(chain=common_pb2.ChainRef(caip2=self.chain.caip2),
                                                          address=contract), token_number=str(number))
        return (await self.stub.GetToken(pb.GetTokenRequest(key=key))).token


async def settle(worker: MetadataWorker, timeout: float = 120.0) -> None:
    """Run batches until nothing is due."""
    deadline = time.monotonic() + timeout
    while await worker.run_once():
        assert time.monotonic() < deadline, "the worker did not settle"


@pytest_asyncio.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    assert ck.registry_answers(), "the chain-registry service must answer on its port (dev stack)"
    anvil = await asyncio.to_thread(lambda: ck.Anvil().start())
    ck.seed_registry(ck.registry_target(), anvil.chain_id, [ck.EndpointSeed(anvil.url)], [])
    files, outside = await mk.FileServer().start(), await mk.FileServer().start()
    settings = CatalogSettings(grpc_port=0, metadata_refresh_token_cooldown_seconds=1.0,
                               metadata_refresh_collection_cooldown_seconds=600.0)
    chain = ev.Chain(chain_numeric=anvil.chain_id)
    try:
        async with mk.catalog_service(settings, forget=[chain.caip2]) as catalog:
            yield World(anvil, chain, files, outside, catalog.resources, catalog.stub, catalog.registry,
                        CatalogRepository(catalog.resources.pg))
    finally:
        await files.stop()
        await outside.stop()
        ck.disable_chain(ck.registry_target(), anvil.chain_id)
        anvil.stop()


def _doc(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": f"about {name}", "image": f"ipfs://{CID}/{name}.png",
            "attributes": [{"trait_type": "Background", "value": "Blue"}, {"trait_type": "Level", "value": 3,
                                                                          "display_type": "number"}], **extra}


async def test_metadata_from_every_uri_kind(world: World) -> None:
    files = world.files
    base = await asyncio.to_thread(mk.deploy_721, world.anvil, files.url("/721/"))
    await asyncio.to_thread(mk.mint_721, world.anvil, base, 1, 5)
    files.json("/721/1", _doc("Http 1"))
    b64 = base64.b64encode(json.dumps(_doc("Base64 2")).encode()).decode()
    files.json(f"/ipfs/{CID}/4.json", _doc("Ipfs 4"))
    files.json(f"/ar/{AR_TX}/5.json", _doc("Arweave 5"), content_type="text/plain")  # gateways do this
    await asyncio.to_thread(mk.set_token_uris, world.anvil, base, {
        2: "data:application/json;base64," + b64,
        3: "data:application/json," + json.dumps(_doc("Plain 3")),
        4: f"ipfs://{CID}/4.json",
        5: f"ar://{AR_TX}/5.json",
    })
    multi = await asyncio.to_thread(mk.deploy_1155, world.anvil, files.url("/1155/{id}.json"))
    await asyncio.to_thread(mk.mint_1155, world.anvil, multi, [1, 255])
    files.json("/1155/" + format(1, "064x") + ".json", _doc("Multi 1"))
    files.json("/1155/" + format(255, "064x") + ".json", _doc("Multi 255"))

    await world.mint_events(base, [1, 2, 3, 4, 5])
    await world.mint_events(multi, [1, 255], standard="ERC1155")
    before = await world.token(base, 1)
    assert before.metadata_status == pb.METADATA_STATUS_PENDING

    seen: list[tuple[set[uuid.UUID], set[uuid.UUID]]] = []

    async def on_change(collections: set[uuid.UUID], tokens: set[uuid.UUID]) -> None:
        seen.append((collections, tokens))

    worker = world.worker()
    worker.on_change = on_change
    await settle(worker)
    await worker.close()

    names = {1: "Http 1", 2: "Base64 2", 3: "Plain 3", 4: "Ipfs 4", 5: "Arweave 5"}
    for number, name in names.items():
        token = await world.token(base, number)
        assert token.metadata_status == pb.METADATA_STATUS_OK, (number, token.metadata_error)
        assert token.name == name and token.description == f"about {name}"
        assert token.image_url == files.url(f"/ipfs/{CID}/{quote(name)}.png")  # ipfs image through the gateway
        assert token.metadata_fetched_at.seconds > 0 and token.metadata_error == ""
        assert {(t.trait_name, t.value) for t in token.traits} >= {("Background", "Blue")}
    assert (await world.token(base, 2)).metadata_url.startswith("data:application/json;base64,")
    assert (await world.token(base, 1)).metadata_url == files.url("/721/1")
    for number in (1, 255):
        token = await world.token(multi, number)
        assert token.metadata_status == pb.METADATA_STATUS_OK and token.name == f"Multi {number}"
        assert token.metadata_url == files.url("/1155/{id}.json")  # the raw uri(id), {id} unsubstituted

    stats = (await world.stub.GetCollectionStats(pb.GetCollectionStatsRequest(
        collection_id=before.collection_id))).stats
    assert (stats.metadata_pending, stats.metadata_ok, stats.metadata_failed) == (0, 5, 0)
    changed_tokens = set().union(*(tokens for _, tokens in seen))
    assert uuid.UUID(before.id) in changed_tokens and uuid.UUID(before.collection_id) in set().union(
        *(collections for collections, _ in seen))

    # RefreshMetadata: rate limited per token (1 s here) and per collection (600 s)
    files.json("/721/1", _doc("Http 1 v2"))
    refresh = pb.RefreshMetadataRequest(token_id=before.id)
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await world.stub.RefreshMetadata(refresh)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "retry after" in (limited.value.details() or "")
    await asyncio.sleep(1.2)
    queued = await world.stub.RefreshMetadata(refresh)
    assert queued.queued == 1 and queued.stats.metadata_pending == 1 and queued.stats.metadata_ok == 4
    worker = world.worker()
    await settle(worker)
    await worker.close()
    assert (await world.token(base, 1)).name == "Http 1 v2"

    whole = await world.stub.RefreshMetadata(pb.RefreshMetadataRequest(collection_id=before.collection_id))
    assert whole.queued == 5 and whole.stats.metadata_pending == 5 and whole.stats.metadata_ok == 0
    assert (await world.token(base, 3)).name == "Plain 3"  # old fields stay until the refetch lands
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await world.stub.RefreshMetadata(pb.RefreshMetadataRequest(collection_id=before.collection_id))
    assert again.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "600 s" in (again.value.details() or "") and "retry after" in (again.value.details() or "")
    worker = world.worker()
    await settle(worker)
    await worker.close()
    stats = (await world.stub.GetCollectionStats(pb.GetCollectionStatsRequest(
        collection_id=before.collection_id))).stats
    assert (stats.metadata_pending, stats.metadata_ok, stats.metadata_failed) == (0, 5, 0)

    for bad, code in ((pb.RefreshMetadataRequest(), grpc.StatusCode.INVALID_ARGUMENT),
                      (pb.RefreshMetadataRequest(token_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND),
                      (pb.RefreshMetadataRequest(token_id="nope"), grpc.StatusCode.INVALID_ARGUMENT),
                      (pb.RefreshMetadataRequest(collection_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await world.stub.RefreshMetadata(bad)
        assert error.value.code() == code


async def test_transient_failures_back_off_and_the_next_gateway_is_tried(world: World) -> None:
    files = world.files
    files.raw(f"/down/ipfs/{CID}/flaky.json", b"busy", content_type="text/plain", status=503)
    files.json(f"/ipfs/{CID}/flaky.json", _doc("Flaky"))
    contract = await asyncio.to_thread(mk.deploy_721, world.anvil, f"ipfs://{CID}/")
    await asyncio.to_thread(mk.mint_721, world.anvil, contract, 1, 1)
    await asyncio.to_thread(mk.set_token_uris, world.anvil, contract, {1: f"ipfs://{CID}/flaky.json"})
    await world.mint_events(contract, [1])
    worker = world.worker(metadata_ipfs_gateways=[files.url("/down"), files.url("")], metadata_max_attempts=3,
                          metadata_retry_base_seconds=0.4)
    try:
        assert await worker.run_once() == 1
        row = await world.resources.pg.fetchrow(
            "SELECT metadata_status, metadata_attempts, metadata_next_attempt_at > now() AS later "
            "FROM catalog.tokens WHERE contract_address = $1", contract)
        assert (row["metadata_status"], row["metadata_attempts"], row["later"]) == ("pending", 1, True)
        assert await worker.run_once() == 0  # backing off: not due yet
        deadline = time.monotonic() + 15
        while await worker.run_once() == 0:  # due again after 0.4 s x jitter (0.5-1.5)
            assert time.monotonic() < deadline, "the retry never became due"
            await asyncio.sleep(0.1)
    finally:
        await worker.close()
    token = await world.token(contract, 1)
    assert token.metadata_status == pb.METADATA_STATUS_OK and token.name == "Flaky"
    assert files.hits[f"/down/ipfs/{CID}/flaky.json"] == 1 and files.hits[f"/ipfs/{CID}/flaky.json"] == 1


async def test_claims_are_disjoint_and_a_refreshed_claim_is_not_overwritten(world: World) -> None:
    contract = await asyncio.to_thread(mk.deploy_721, world.anvil, world.files.url("/claims/"))
    await asyncio.to_thread(mk.mint_721, world.anvil, contract, 1, 40)
    await world.mint_events(contract, list(range(1, 41)))
    store = MetadataStore(world.resources.pg)
    chains = [world.chain.caip2]
    first, second = await asyncio.gather(store.claim(25, chains, 60), store.claim(25, chains, 60))
    ids_first, ids_second = {c.id for c in first}, {c.id for c in second}
    assert not ids_first & ids_second and len(ids_first | ids_second) == 40
    assert await store.claim(10, chains, 60) == []  # leased

    claimed = first[0]
    await store.requeue_token(claimed.id, claimed.collection_id)  # a refresh while the fetch is in flight
    saved = await store.save([Outcome(claimed, "failed", error="stale", attempts=1)])
    assert claimed.id not in saved.tokens
    status = await world.resources.pg.fetchval("SELECT metadata_status FROM catalog.tokens WHERE id = $1", claimed.id)
    assert status == "pending"
    await world.resources.pg.execute("DELETE FROM catalog.collections WHERE chain_id = $1 AND contract_address = $2",
                                     world.chain.caip2, contract)  # its leased tokens would wait for later tests

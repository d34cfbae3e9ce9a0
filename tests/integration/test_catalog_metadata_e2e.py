"""End to end: mints on a real chain -> the indexer (in this process) -> RabbitMQ -> the catalog's consumer
-> the metadata worker -> GetToken shows each token's name, image and traits. Nothing is called by hand
between the chain and the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "metadata"))
import chainkit as ck
import metakit as mk
import pipeline as pl

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.catalog.v1 import catalog_pb2_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.catalog.metadata.worker import make_worker
from mintplane.catalog.server import NEEDS, build_server
from mintplane.catalog.settings import CatalogSettings
from mintplane.common.registry_client import GrpcRegistryClient
from mintplane.common.service import Resources
from mintplane.common.settings import InfraSettings
from mintplane.indexer.lane import LaneSpec, Tuning

pytestmark = pytest.mark.integration
AMQP_URL = InfraSettings().amqp_url.get_secret_value()
TOKENS = 30


async def test_minted_tokens_reach_the_api_with_their_metadata() -> None:
    assert ck.registry_answers(), "the chain-registry service must answer on its port (dev stack)"
    files = await mk.FileServer().start()
    anvil = await asyncio.to_thread(lambda: ck.Anvil().start())
    mongo = pl.mongo_client()
    settings = CatalogSettings(grpc_port=0, metadata_allow_hosts=[files.hostport], metadata_chains=[anvil.caip2],
                               metadata_idle_seconds=0.1)
    resources = await Resources.open(settings, NEEDS, name="catalog-metadata-e2e")
    built = await build_server(settings, resources)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    registry_channel = grpc.aio.insecure_channel(ck.registry_target())
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    run: pl.LaneRun | None = None
    consumer: pl.ConsumerRun | None = None
    working: asyncio.Task[None] | None = None
    changed: set[uuid.UUID] = set()

    async def on_change(collections: set[uuid.UUID], tokens: set[uuid.UUID]) -> None:
        changed.update(tokens)

    try:
        for n in range(1, TOKENS + 1):
            parity = "even" if n % 2 == 0 else "odd"
            files.json(f"/e2e/{n}", {"name": f"Demo #{n}", "image": files.url(f"/e2e/{n}.png"),
                                     "attributes": [{"trait_type": "Parity", "value": parity}]})
        contract = await asyncio.to_thread(mk.deploy_721, anvil, files.url("/e2e/"))
        start = anvil.head()
        await asyncio.to_thread(mk.mint_721, anvil, contract, 1, TOKENS)
        ck.seed_registry(ck.registry_target(), anvil.chain_id, [ck.EndpointSeed(anvil.url)],
                         [(contract, "ERC721", start)])

        consumer = await pl.ConsumerRun.start(resources.pg, anvil.caip2, AMQP_URL,
                                              queue=f"catalog.test.metadata.{uuid.uuid4().hex[:8]}")
        run = await pl.LaneRun.open(LaneSpec(chain=anvil.caip2, scope=anvil.caip2, confirmations=0),
                                    Tuning(initial_range=10, max_range=100, poll_interval=0.1), pg=resources.pg,
                                    mongo=mongo, amqp_url=AMQP_URL, registry_target=ck.registry_target())
        run.start()
        worker = make_worker(settings, resources.pg, GrpcRegistryClient(registry_channel), on_change=on_change)
        working = asyncio.create_task(worker.run())

        key = common_pb2.ContractRef(chain=common_pb2.ChainRef(caip2=anvil.caip2), address=contract)
        deadline = time.monotonic() + 90
        while len(changed) < TOKENS:
            assert time.monotonic() < deadline, f"{len(changed)} of {TOKENS} tokens got their metadata"
            assert not working.done() and not run.lane_task.done()
            await asyncio.sleep(0.2)
        for n in (1, 2, TOKENS):
            token = (await stub.GetToken(pb.GetTokenRequest(key=pb.TokenKey(contract=key, token_number=str(n))))).token
            assert token.metadata_status == pb.METADATA_STATUS_OK, token.metadata_error
            assert token.name == f"Demo #{n}" and token.image_url == files.url(f"/e2e/{n}.png")
            assert token.owner_address == ck.ACCOUNTS[1]
            assert [(t.trait_name, t.value) for t in token.traits if t.trait_name == "Parity"] == [
                ("Parity", "even" if n % 2 == 0 else "odd")]
        stats = (await stub.GetCollectionStats(pb.GetCollectionStatsRequest(collection_id=token.collection_id))).stats
        assert (stats.items_count, stats.metadata_ok, stats.metadata_pending) == (TOKENS, TOKENS, 0)
    finally:
        if working is not None:
            working.cancel()
            with contextlib.suppress(BaseException):
                await working
        if run is not None:
            await run.close()
        if consumer is not None:
            await consumer.stop()
        await pl.purge(resources.pg, mongo, anvil.caip2)
        await channel.close(None)
        await registry_channel.close(None)
        await built.server.stop(None)
        await resources.close()
        mongo.close()
        await files.stop()
        ck.disable_chain(ck.registry_target(), anvil.chain_id)
        anvil.stop()

"""End to end: mints on a real chain -> the indexer (in this process) -> RabbitMQ -> the catalog's consumer
-> the metadata worker -> GetToken shows each token's name, image and traits. Nothing is called by hand
between the chain and the API.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

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
from mintplane.catalog.settings import CatalogSettings
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
        async with mk.catalog_service(settings) as catalog:
            pg = catalog.resources.pg
            run: pl.LaneRun | None = None
            consumer: pl.ConsumerRun | None = None
            working: asyncio.Task[None] | None = None
            try:
                consumer = await pl.ConsumerRun.start(pg, anvil.caip2, AMQP_URL,
                                                      queue=f"catalog.test.metadata.{uuid.uuid4().hex[:8]}")
                run = await pl.LaneRun.open(LaneSpec(chain=anvil.caip2, scope=anvil.caip2, confirmations=0),
                                            Tuning(initial_range=10, max_range=100, poll_interval=0.1), pg=pg,
                                            mongo=mongo, amqp_url=AMQP_URL, registry_target=ck.registry_target())
                run.start()
                worker = make_worker(settings, pg, catalog.registry, on_change=on_change)
                working = asyncio.create_task(worker.run())

                deadline = time.monotonic() + 90
                while len(changed) < TOKENS:
                    assert time.monotonic() < deadline, f"{len(changed)} of {TOKENS} tokens got their metadata"
                    assert not working.done() and not run.lane_task.done()
                    await asyncio.sleep(0.2)
                await _check(catalog.stub, anvil, files, contract)
            finally:
                await mk.stop_task(working)
                if run is not None:
                    await run.close()
                if consumer is not None:
                    await consumer.stop()
                await pl.purge(pg, mongo, anvil.caip2)
    finally:
        mongo.close()
        await files.stop()
        ck.disable_chain(ck.registry_target(), anvil.chain_id)
        anvil.stop()


async def _check(stub: catalog_pb2_grpc.CatalogServiceStub, anvil: ck.Anvil, files: mk.FileServer,
                 contract: str) -> None:
    key = common_pb2.ContractRef(chain=common_pb2.ChainRef(caip2=anvil.caip2), address=contract)
    for n in (1, 2, TOKENS):
        token = (await stub.GetToken(pb.GetTokenRequest(key=pb.TokenKey(contract=key, token_number=str(n))))).token
        assert token.metadata_status == pb.METADATA_STATUS_OK, token.metadata_error
        assert token.name == f"Demo #{n}" and token.image_url == files.url(f"/e2e/{n}.png")
        assert token.owner_address == ck.ACCOUNTS[1]
        assert [(t.trait_name, t.value) for t in token.traits if t.trait_name == "Parity"] == [
            ("Parity", "even" if n % 2 == 0 else "odd")]
    stats = (await stub.GetCollectionStats(pb.GetCollectionStatsRequest(collection_id=token.collection_id))).stats
    assert (stats.items_count, stats.metadata_ok, stats.metadata_pending) == (TOKENS, TOKENS, 0)

"""Hostile metadata is refused without harm: huge bodies, a server dripping a byte a second, redirects to
loopback / cloud-metadata / private / IPv6-loopback targets from an allow-listed server, a name that
resolves to loopback, invalid JSON, a wrong content type, a JSON bomb, redirect loops. The catalog keeps
answering gRPC while the worker deals with them, every token ends failed with its reason (read back
through GetToken), and nothing the refusals protect was ever contacted.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

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
from mintplane.catalog.metadata.worker import MetadataWorker, make_worker
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.settings import CatalogSettings

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def servers() -> AsyncIterator[tuple[mk.FileServer, mk.FileServer]]:
    files, outside = await mk.FileServer().start(), await mk.FileServer().start()
    yield files, outside
    await files.stop()
    await outside.stop()


async def test_hostile_metadata_fails_with_reasons_and_the_catalog_keeps_serving(
    servers: tuple[mk.FileServer, mk.FileServer],
) -> None:
    files, outside = servers
    assert ck.registry_answers(), "the chain-registry service must answer on its port (dev stack)"
    anvil = await asyncio.to_thread(lambda: ck.Anvil().start())
    chain = ev.Chain(chain_numeric=anvil.chain_id)
    settings = CatalogSettings(
        grpc_port=0, metadata_allow_hosts=[files.hostport], metadata_chains=[chain.caip2],
        metadata_max_attempts=1, metadata_total_timeout_seconds=20.0, metadata_idle_timeout_seconds=10.0,
        metadata_min_bytes_per_second=1024, metadata_min_rate_grace_seconds=6.0, metadata_max_bytes=1024 * 1024,
        metadata_max_json_depth=32, metadata_batch_size=100,
    )
    try:
        ck.seed_registry(ck.registry_target(), anvil.chain_id, [ck.EndpointSeed(anvil.url)], [])
        cases = _hostile_routes(files, outside)
        contract = await asyncio.to_thread(mk.deploy_721, anvil, "")
        await asyncio.to_thread(mk.mint_721, anvil, contract, 1, len(cases))
        await asyncio.to_thread(mk.set_token_uris, anvil, contract, {n: uri for n, (uri, _) in cases.items()})
        unminted = len(cases) + 1  # its tokenURI reverts
        async with mk.catalog_service(settings, forget=[chain.caip2]) as catalog:
            await CatalogRepository(catalog.resources.pg).ingest([
                chain.event("transfer", contract, n, ev.ZERO, ck.ACCOUNTS[1], block=10, log=n)
                for n in [*cases, unminted]])
            worker = make_worker(settings, catalog.resources.pg, catalog.registry, pipelines=1)
            working = asyncio.create_task(worker.run())
            try:
                await _served_and_refused(catalog.stub, files, outside, worker, chain, contract, cases, unminted)
            finally:
                await mk.stop_task(working)
    finally:
        ck.disable_chain(ck.registry_target(), anvil.chain_id)
        anvil.stop()


async def _served_and_refused(stub: catalog_pb2_grpc.CatalogServiceStub, files: mk.FileServer,
                              outside: mk.FileServer, worker: MetadataWorker, chain: ev.Chain, contract: str,
                              cases: dict[int, tuple[str, str]], unminted: int) -> None:
    def key(number: int) -> pb.GetTokenRequest:
        return pb.GetTokenRequest(key=pb.TokenKey(contract=common_pb2.ContractRef(
            chain=common_pb2.ChainRef(caip2=chain.caip2), address=contract), token_number=str(number)))

    # while the worker is busy with the drip and the bodies, the catalog answers at once
    await asyncio.sleep(1.0)
    for _ in range(5):
        answer = await stub.GetToken(key(3), timeout=2.0)  # an answer, not DEADLINE_EXCEEDED
        assert answer.token.token_number == "3"
        await asyncio.sleep(0.3)
    assert files.hits["/drip"] == 1  # the slow fetch is in flight meanwhile
    assert (await stub.GetToken(key(3))).token.metadata_status == pb.METADATA_STATUS_PENDING

    deadline = time.monotonic() + 60
    while True:
        tokens = {n: (await stub.GetToken(key(n))).token for n in [*cases, unminted]}
        if all(t.metadata_status != pb.METADATA_STATUS_PENDING for t in tokens.values()):
            break
        assert time.monotonic() < deadline, {n: t.metadata_status for n, t in tokens.items()}
        await asyncio.sleep(0.25)

    for number, (_, reason) in cases.items():
        token = tokens[number]
        assert token.metadata_status == pb.METADATA_STATUS_FAILED, number
        assert reason in token.metadata_error, (number, token.metadata_error)
        assert token.name == "" and token.image_url == ""
    assert tokens[unminted].metadata_status == pb.METADATA_STATUS_FAILED
    assert tokens[unminted].metadata_error.startswith("tokenURI reverted")
    assert sum(outside.hits.values()) == 0  # no refused target was ever contacted
    stats = (await stub.GetCollectionStats(pb.GetCollectionStatsRequest(
        collection_id=tokens[1].collection_id))).stats
    assert (stats.metadata_pending, stats.metadata_ok, stats.metadata_failed) == (0, 0, len(cases) + 1)
    assert worker.stats.errors == 0 and worker.stats.failed == len(cases) + 1


def _hostile_routes(files: mk.FileServer, outside: mk.FileServer) -> dict[int, tuple[str, str]]:
    """Registers the hostile routes; token number -> (its token URI, the reason it must fail with)."""
    out = outside.port
    files.handler("/big", mk.huge_body(50, declare_length=False))
    files.handler("/big-declared", mk.huge_body(50, declare_length=True))
    files.handler("/drip", mk.drip(60))
    files.redirect("/to-loopback", f"http://127.0.0.1:{out}/secret")
    files.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/")
    files.redirect("/to-private", "http://10.0.0.1/admin")
    files.redirect("/to-v6-loopback", f"http://[::1]:{out}/secret")
    files.redirect("/to-mapped", f"https://[::ffff:127.0.0.1]:{out}/secret")
    files.redirect("/to-localhost", f"https://localhost:{out}/secret")
    files.redirect("/loop", "/loop")
    files.raw("/invalid", b'{"name": "half a document", ', content_type="application/json")
    files.raw("/html", b"<html><body>{}</body></html>", content_type="text/html; charset=utf-8")
    files.raw("/bomb", b"[" * 200_000 + b"]" * 200_000, content_type="application/json")
    outside.json("/secret", {"name": "you should never see this"})
    cases = {
        1: (files.url("/big"), "body larger than 1 MiB"),
        2: (files.url("/big-declared"), "body larger than 1 MiB (Content-Length 52428802)"),
        3: (files.url("/drip"), "127.0.0.1 is too slow"),
        4: (files.url("/to-loopback"), "refused: 127.0.0.1 is a loopback address"),
        5: (files.url("/to-metadata"), "refused: 169.254.169.254 is a cloud metadata address"),
        6: (files.url("/to-private"), "refused: 10.0.0.1 is a private address"),
        7: (files.url("/to-v6-loopback"), "refused: ::1 is a loopback address"),
        8: (files.url("/to-mapped"), "refused: ::ffff:7f00:1 is a loopback address (it embeds 127.0.0.1)"),
        9: (files.url("/to-localhost"), "refused: localhost resolves to"),
        10: (f"https://localhost:{out}/secret", "refused: localhost resolves to"),  # a name, not allow-listed
        11: (files.url("/invalid"), "not valid JSON"),
        12: (files.url("/html"), "content type text/html is not JSON"),
        13: (files.url("/bomb"), "JSON nested deeper than 32 levels"),
        14: (files.url("/loop"), "more than 3 redirects"),
        15: (files.url("/missing"), "HTTP 404 from 127.0.0.1"),
        16: ("data:image/svg+xml;base64,PHN2Zy8+", "data: URI holds image/svg+xml, not a JSON document"),
        17: (f"http://127.0.0.1:{out}/secret", "plain http to 127.0.0.1 is not allowed"),
    }
    return cases

"""Token metadata throughput: tokens/s through the worker, and where the time goes.

    .venv/bin/python bench/catalog_metadata.py                 # 5,000 tokens
    .venv/bin/python bench/catalog_metadata.py --tokens 20000 --batch 500 --pipelines 4

Real parts: a private anvil with MintplaneERC721 (baseURI pointing at a file server), the chain registry of
the dev stack, a database of its own on the dev PostgreSQL (created, migrated and dropped here, so no other
worker on the shared database can claim the bench's tokens), and an aiohttp file server in its own process
(so serving documents does not share the worker's event loop). Transfers go in through the consumer's
ingestion; then the worker runs until every token is ok. Also timed on their own: the batched tokenURI reads,
the document fetches, and a run where every URI is an on-chain data: URI (no HTTP); per worker run, the
time its batches spent in each stage (summed over concurrent batches, so it can exceed the wall time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import asyncpg
import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "indexer"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "metadata"))
import chainkit as ck
import events as ev
import metakit as mk

from mintplane.catalog.metadata.chain import ChainReader, UriRead
from mintplane.catalog.metadata.fetch import Fetcher, FetchLimits
from mintplane.catalog.metadata.worker import STAGE_SECONDS, make_worker, rules_from
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.settings import CatalogSettings
from mintplane.common.postgres import create_pool
from mintplane.common.registry_client import GrpcRegistryClient

SERVER = textwrap.dedent("""
    import json, sys
    from aiohttp import web
    async def doc(request):
        n = request.match_info["n"]
        body = json.dumps({"name": f"Bench #{n}", "description": "a benchmark token", "image": f"ipfs://QmBench/{n}.png",
                           "attributes": [{"trait_type": "Tier", "value": str(int(n) % 7)},
                                          {"trait_type": "Color", "value": ["red", "green", "blue"][int(n) % 3]},
                                          {"trait_type": "Level", "value": int(n) % 50, "display_type": "number"}]})
        return web.Response(text=body, content_type="application/json")
    app = web.Application()
    app.router.add_get("/m/{n}", doc)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
""")


BENCH_DB = "mintplane_metadata_bench"


async def bench_database() -> str:
    """A fresh, migrated database beside the dev one; returns its DSN."""
    admin = await asyncpg.connect(CatalogSettings().pg_dsn.get_secret_value())
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        await admin.execute(f"CREATE DATABASE {BENCH_DB}")
    finally:
        await admin.close()
    dsn = CatalogSettings().pg_dsn.get_secret_value().rsplit("/", 1)[0] + "/" + BENCH_DB
    migrate = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "mintplane"), "migrate", env={**os.environ, "MINTPLANE_PG_DSN": dsn},
        stdout=asyncio.subprocess.DEVNULL)
    assert await migrate.wait() == 0, "migrations failed"
    return dsn


async def drop_bench_database() -> None:
    admin = await asyncpg.connect(CatalogSettings().pg_dsn.get_secret_value())
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    finally:
        await admin.close()


def mint_all(anvil: ck.Anvil, contract: str, count: int) -> None:
    for start in range(1, count + 1, 1000):  # one ~25M-gas mint per block, mined explicitly
        ck.mine_block_with(anvil, [ck.mint_721_tx(contract, ck.ACCOUNTS[1], start, min(1000, count - start + 1))])


async def ingest(repo: CatalogRepository, chain: ev.Chain, contract: str, count: int, block: int) -> None:
    for start in range(1, count + 1, 5000):
        numbers = range(start, min(count, start + 4999) + 1)
        await repo.ingest([chain.event("transfer", contract, n, ev.ZERO, ck.ACCOUNTS[1], block=block, log=n)
                           for n in numbers])


async def run_worker(settings: CatalogSettings, pool: object, registry: GrpcRegistryClient, expected: int,
                     pipelines: int) -> float:
    worker = make_worker(settings, pool, registry, pipelines=pipelines)  # type: ignore[arg-type]
    before = stage_totals()
    started = time.perf_counter()

    async def loop() -> None:
        while await worker.run_once():
            pass

    await asyncio.gather(*(loop() for _ in range(pipelines)))
    elapsed = time.perf_counter() - started
    await worker.close()
    done = worker.stats.ok + worker.stats.failed
    assert done == expected, f"{done} of {expected} tokens settled ({worker.stats})"
    assert worker.stats.failed == 0, worker.stats.by_reason
    after = stage_totals()
    print("    stages (s): " + ", ".join(f"{k} {after[k] - before.get(k, 0):.2f}" for k in sorted(after)))
    return elapsed


def stage_totals() -> dict[str, float]:
    return {sample.labels["stage"]: sample.value for metric in STAGE_SECONDS.collect() for sample in metric.samples
            if sample.name.endswith("_total")}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--pipelines", type=int, default=2)
    args = parser.parse_args()
    n = args.tokens

    port = ck.free_port()
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVER, str(port))
    anvil = ck.Anvil().start()
    dsn = await bench_database()
    pool = await create_pool(CatalogSettings(pg_dsn=dsn, pg_pool_max=12), application_name="mintplane-bench-metadata")
    channel = grpc.aio.insecure_channel(ck.registry_target())
    registry = GrpcRegistryClient(channel)
    chain = ev.Chain(chain_numeric=anvil.chain_id)
    try:
        ck.seed_registry(ck.registry_target(), anvil.chain_id, [ck.EndpointSeed(anvil.url)], [])
        base = f"http://127.0.0.1:{port}/m/"
        contract = mk.deploy_721(anvil, base)
        data_contract = mk.deploy_721(anvil, "")
        mint_all(anvil, contract, n)
        mint_all(anvil, data_contract, n)
        for start in range(1, n + 1, 50):  # 50 setTokenURI per block
            ck.mine_block_with(anvil, [mk.set_token_uri_tx(data_contract, i, "data:application/json," + json.dumps(
                {"name": f"Inline #{i}", "attributes": [{"trait_type": "Tier", "value": str(i % 7)}]}))
                for i in range(start, min(n, start + 49) + 1)])
        settings = CatalogSettings(metadata_allow_hosts=[f"127.0.0.1:{port}"], metadata_chains=[chain.caip2],
                                   metadata_batch_size=args.batch, metadata_per_host_concurrency=32,
                                   metadata_concurrency=128, metadata_rpc_batch_size=100)

        # tokenURI reads alone
        reader = ChainReader(registry, batch_size=100, concurrency=4)
        started = time.perf_counter()
        uris = await reader.read(chain.caip2, [UriRead(contract, str(i), "ERC721") for i in range(1, n + 1)])
        read_s = time.perf_counter() - started
        await reader.close()
        assert all(isinstance(u, str) for u in uris)

        # document fetches alone (fetch + parse is what the worker does per token)
        fetcher = Fetcher(rules_from(settings), FetchLimits(per_host=32, concurrency=128))
        started = time.perf_counter()
        gate = asyncio.Semaphore(128)

        async def one(url: str) -> int:
            async with gate:
                return len((await fetcher.fetch(url)).body)

        sizes = await asyncio.gather(*(one(str(u)) for u in uris))
        fetch_s = time.perf_counter() - started
        await fetcher.close()

        repo = CatalogRepository(pool)
        await ingest(repo, chain, contract, n, 10)
        http_s = await run_worker(settings, pool, registry, n, args.pipelines)
        await ingest(repo, chain, data_contract, n, 11)
        data_s = await run_worker(settings, pool, registry, n, args.pipelines)

        print(json.dumps({"tokens": n, "batch": args.batch, "pipelines": args.pipelines}))
        print(f"tokenURI reads (eth_call batches of 100):   {n / read_s:9.0f} tokens/s  ({read_s:.2f} s)")
        print(f"document fetches (loopback aiohttp server): {n / fetch_s:9.0f} docs/s    ({fetch_s:.2f} s, "
              f"{sum(sizes) // n} B each)")
        print(f"worker, http documents (read+fetch+save):   {n / http_s:9.0f} tokens/s  ({http_s:.2f} s)")
        print(f"worker, on-chain data: URIs (read+save):    {n / data_s:9.0f} tokens/s  ({data_s:.2f} s)")
    finally:
        await pool.close()
        await drop_bench_database()
        await channel.close(None)
        ck.disable_chain(ck.registry_target(), anvil.chain_id)
        anvil.stop()
        server.terminate()
        await server.wait()


if __name__ == "__main__":
    asyncio.run(main())

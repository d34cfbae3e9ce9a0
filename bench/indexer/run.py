"""Indexer benchmark: end-to-end and stage by stage, on the fixture chains of ``fixture.py``. Prints numbers.

    .venv/bin/python bench/indexer/fixture.py            # once: builds the dumps (~1 and ~3 minutes)
    .venv/bin/python bench/indexer/run.py [dense|sparse|all] [--no-ponder] [--no-stages]

Per layout: an anvil loads the dump; the chain is registered through the chain-registry gRPC API; then

- stages, each alone on the same data: the raw ``eth_getLogs`` ceiling (sequential, and 4 in flight),
  decoding, MongoDB raw events, MongoDB outbox, the PostgreSQL batch transaction, RabbitMQ publishing with
  confirms, and catalog ingestion;
- end to end: ``python -m mintplane.indexer backfill`` over the whole range as a subprocess (everything:
  reads, both MongoDB writes, PostgreSQL, publishing with confirms), its wall time, events/s, blocks/s and
  CPU seconds, and a check against the fixture's ground truth (count and SHA-256);
- Ponder 0.16 (``bench/indexer/ponder``, install with ``npm install --prefix bench/indexer/ponder``)
  indexing the same events into its own tables on the same PostgreSQL, and the ratio.

MongoDB writes go to the database ``indexer_bench`` (dropped afterwards) and messages to the exchange
``mintplane.bench.events``, so nothing the dev stack or other tests use is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "indexer"))
import chainkit as ck
import pipeline as pl
from fixture import fixture_dir

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as rpb
from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc as rpb_grpc
from mintplane.catalog.ingest import parse_events
from mintplane.catalog.repository import CatalogRepository
from mintplane.common import amqp
from mintplane.common.jsonrpc import JsonRpcClient
from mintplane.common.postgres import create_pool
from mintplane.common.settings import InfraSettings
from mintplane.indexer.decode import TOPICS, decode_logs
from mintplane.indexer.documents import EventDocuments
from mintplane.indexer.events import Transfer
from mintplane.indexer.outbox import SeqClock, entries_for
from mintplane.indexer.publisher import _message
from mintplane.indexer.repository import IndexerRepository

HERE = Path(__file__).resolve().parent
PONDER_DIR = HERE / "ponder"
BENCH_DB = "indexer_bench"
BENCH_EXCHANGE = "mintplane.bench.events"
CHUNK = 5_000


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _stat(text: str) -> tuple[str, list[str]]:
    """The command name and the fields after it of a /proc/<pid>/stat line."""
    return text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()


def _proc_cpu(pid: int) -> float:
    _, fields = _stat(Path(f"/proc/{pid}/stat").read_text())
    return (int(fields[11]) + int(fields[12])) / _clock_ticks()


SERVERS = {"FerretDB": ("ferretdb",), "PostgreSQL": ("postgres",), "RabbitMQ": ("beam.smp",)}


def _server_cpu() -> dict[str, float]:
    """CPU seconds so far of the dev stack's servers, by server: every process of that name, plus what its
    exited children used (PostgreSQL's backends end with their connections and are reaped by the postmaster)."""
    totals = dict.fromkeys(SERVERS, 0.0)
    ticks = _clock_ticks()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = _stat(text)
        for server, names in SERVERS.items():
            if name in names:
                totals[server] += sum(int(v) for v in fields[11:15]) / ticks  # utime stime cutime cstime
    return totals


def _machine_busy() -> float:
    parts = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts) - idle) / _clock_ticks()


class Report:
    def __init__(self, layout: str, truth: dict[str, Any]) -> None:
        self.layout, self.truth = layout, truth
        self.rows: list[tuple[str, str]] = []

    def add(self, what: str, value: str) -> None:
        self.rows.append((what, value))
        print(f"  {what:<58} {value}", flush=True)


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await fn()
    return time.perf_counter() - started, result


def _rate(count: int, seconds: float, unit: str = "events/s") -> str:
    return f"{count / seconds:>12,.0f} {unit}  ({count:,} in {seconds:.2f}s)"


def _replace_endpoints(target: str, caip2: str, url: str) -> None:
    """The fixture's chain id is fixed; a previous run registered another port: keep only this one."""
    with grpc.insecure_channel(target) as channel:
        stub = rpb_grpc.ChainRegistryServiceStub(channel)
        try:
            listed = stub.ListEndpoints(rpb.ListEndpointsRequest(caip2=caip2, include_inactive=True), timeout=10)
        except grpc.RpcError:
            return
        for endpoint in listed.endpoints:
            if endpoint.url != url:
                stub.DeleteEndpoint(rpb.DeleteEndpointRequest(id=endpoint.id), timeout=10)


# ------------------------------------------------------------------------------------------------ stages


async def stage_get_logs(report: Report, url: str, addresses: list[str], first: int, last: int,
                         span: int) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        client = JsonRpcClient(session, url, timeout=300)
        ranges = [(a, min(last, a + span - 1)) for a in range(first, last + 1, span)]

        async def one(bounds: tuple[int, int]) -> list[dict[str, Any]]:
            logs: list[dict[str, Any]] = await client.call("eth_getLogs", [{
                "fromBlock": hex(bounds[0]), "toBlock": hex(bounds[1]), "address": addresses,
                "topics": [list(TOPICS)]}])
            return logs

        async def sequential() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for bounds in ranges:
                out += await one(bounds)
            return out

        seconds, logs = await timed(sequential)
        report.add(f"eth_getLogs, sequential ({len(ranges)} requests of {span} blocks)", _rate(len(logs), seconds,
                                                                                                "logs/s"))

        async def parallel() -> int:
            gate = asyncio.Semaphore(4)

            async def gated(bounds: tuple[int, int]) -> int:
                async with gate:
                    return len(await one(bounds))

            return sum(await asyncio.gather(*(gated(b) for b in ranges)))

        seconds, count = await timed(parallel)
        report.add("eth_getLogs, 4 in flight", _rate(count, seconds, "logs/s"))
    return logs


def stage_decode(report: Report, caip2: str, logs: list[dict[str, Any]], contracts: dict[str, str]) -> list[Transfer]:
    standards: dict[str, Any] = {a: s for s, a in contracts.items()}
    started = time.perf_counter()
    result = decode_logs(caip2, logs, standards, {})
    seconds = time.perf_counter() - started
    report.add("decode (topics/data -> transfers, one core)", _rate(len(result.transfers), seconds))
    return result.transfers


async def stage_sinks(report: Report, caip2: str, transfers: list[Transfer]) -> None:
    settings = InfraSettings()
    mongo = pl.mongo_client()
    documents = EventDocuments(mongo, BENCH_DB)
    await documents.ensure_indexes()
    chunks = [transfers[i : i + CHUNK] for i in range(0, len(transfers), CHUNK)]
    clock = SeqClock()
    entries = [entries_for(caip2 + "@bench", c, "transfer", 0, clock) for c in chunks]
    try:
        async def raw() -> None:
            for chunk in chunks:
                await documents.insert_raw(chunk)

        seconds, _ = await timed(raw)
        report.add(f"MongoDB raw_events insert_many ({CHUNK:,}/batch)", _rate(len(transfers), seconds))

        async def outbox() -> None:
            for chunk in entries:
                await documents.enqueue(chunk)

        seconds, _ = await timed(outbox)
        report.add(f"MongoDB processing_queue insert_many ({CHUNK:,} events/batch, 1,000 per message)",
                   _rate(len(transfers), seconds))
        await documents.queue.drop()
        await documents.ensure_indexes()

        async def outbox_cycle() -> None:  # steady state: write, confirm, range-delete every 2 batches
            deleted = 0
            for index, chunk in enumerate(entries):
                await documents.enqueue(chunk)
                if index % 2 == 1 or index == len(entries) - 1:
                    await documents.delete_published(caip2 + "@bench", deleted, chunk[-1].seq)
                    deleted = chunk[-1].seq

        seconds, _ = await timed(outbox_cycle)
        report.add("MongoDB outbox write + range clean-up cycle (steady state)", _rate(len(transfers), seconds))
    finally:
        await mongo.drop_database(BENCH_DB)

    pool = await create_pool(settings, application_name="mintplane-bench")
    try:
        repo = IndexerRepository(pool)
        scope = caip2 + "@bench"
        await pool.execute("DELETE FROM indexer.indexer_checkpoints WHERE chain_id = $1", scope)  # an aborted run's
        await repo.ensure_checkpoint(scope, last_block=0, last_block_hash=None, first_block=1, target_block=None,
                                     contracts=None)

        async def postgres() -> None:
            last = 0
            for chunk in chunks:
                top = max(t.block_number for t in chunk)
                await repo.apply_batch(scope, expected_last=last, transfers=chunk, last_block=top, last_hash="0x")
                last = top

        seconds, _ = await timed(postgres)
        report.add(f"PostgreSQL batch tx: COPY + insert + balances + checkpoint ({CHUNK:,})",
                   _rate(len(transfers), seconds))
        catalog = CatalogRepository(pool)
        events = [event for chunk in entries for e in chunk for event in parse_events(e.body)]

        async def ingest() -> None:
            for start in range(0, len(events), 5000):
                await catalog.ingest(events[start : start + 5000])

        seconds, _ = await timed(ingest)
        report.add("catalog ingestion tx (ledger, tokens, activities, stats; 5,000)", _rate(len(events), seconds))
    finally:
        await pl.purge(pool, pl.mongo_client(), caip2)
        await pool.execute("DELETE FROM indexer.indexer_checkpoints WHERE chain_id = $1", caip2 + "@bench")
        await pool.close()

    connection = await amqp.connect(settings, name="mintplane-bench")
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(BENCH_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"bench.stage.{os.getpid()}", durable=True)
        await queue.bind(exchange, f"chain.{caip2}.#")
        publisher = amqp.ConfirmingPublisher(connection, BENCH_EXCHANGE)

        async def publish() -> None:
            for chunk in entries:
                await publisher.publish_batch([_message(e) for e in chunk])

        seconds, _ = await timed(publish)
        report.add(f"RabbitMQ publish_batch with confirms ({CHUNK:,} events/batch)", _rate(len(transfers), seconds))
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


# -------------------------------------------------------------------------------------------- end to end


def _rows_checksum(rows: list[tuple[Any, ...]]) -> str:
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update("|".join(str(v) for v in row).encode() + b"\n")
    return digest.hexdigest()


async def end_to_end(report: Report, anvil: ck.Anvil, truth: dict[str, Any], registry: str) -> float:
    caip2 = anvil.caip2
    settings = InfraSettings()
    pool = await create_pool(settings, application_name="mintplane-bench")
    mongo = pl.mongo_client()
    await pl.purge(pool, mongo, caip2)
    connection = await amqp.connect(settings, name="mintplane-bench")
    channel = await connection.channel()
    exchange = await channel.declare_exchange(BENCH_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue_name = f"bench.e2e.{os.getpid()}"
    queue = await channel.declare_queue(queue_name, durable=True)
    await queue.bind(exchange, f"chain.{caip2}.#")
    env = {**os.environ, "MINTPLANE_INDEXER_CHAIN_REGISTRY_TARGET": registry, "MINTPLANE_INDEXER_CONFIRMATIONS": "0",
           "MINTPLANE_INDEXER_EVENTS_EXCHANGE": BENCH_EXCHANGE, "MINTPLANE_INDEXER_MONGO_DATABASE": BENCH_DB,
           "MINTPLANE_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "mintplane.indexer", "backfill", "--chain", caip2, "--from-block",
               str(truth["first_block"]), "--to-block", str(truth["last_block"])]
    try:
        assert anvil.process is not None
        before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        node_before, busy_before, servers_before = _proc_cpu(anvil.process.pid), _machine_busy(), _server_cpu()
        started = time.perf_counter()
        finished = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True,
                                           check=False)
        wall = time.perf_counter() - started
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        if finished.returncode != 0:
            raise RuntimeError(f"backfill failed:\n{finished.stdout[-2000:]}\n{finished.stderr[-2000:]}")
        cpu = (after_children.ru_utime - before_children.ru_utime) + (
            after_children.ru_stime - before_children.ru_stime)
        node_cpu = _proc_cpu(anvil.process.pid) - node_before
        busy = _machine_busy() - busy_before
        servers = {name: cpu - servers_before[name] for name, cpu in _server_cpu().items()}
        count = truth["transfers"]
        report.add("END TO END backfill (read, decode, 2x MongoDB, PG, publish+confirm)", _rate(count, wall))
        report.add("  blocks/s", f"{truth['blocks'] / wall:>12,.0f} blocks/s ({truth['blocks']:,} blocks)")
        report.add("  indexer process CPU seconds (user+sys)", f"{cpu:>12.1f} s  ({count / cpu:,.0f} events per CPU-s)")
        report.add("  anvil CPU seconds / whole machine busy CPU seconds", f"{node_cpu:>12.1f} s / {busy:.1f} s")
        report.add("  CPU seconds of " + ", ".join(servers), " / ".join(f"{v:.1f}" for v in servers.values()) + " s")
        report.add("  peak RSS of the indexer (max over children)", f"{after_children.ru_maxrss / 1024:>12.0f} MB")
        rows = await pool.fetch(
            """SELECT chain_id, contract, token_id, from_addr, to_addr, tx_hash, block_number, block_hash, log_index,
                      batch_index, quantity::bigint FROM indexer.ownership_transfers WHERE chain_id = $1""", caip2)
        checksum = _rows_checksum([tuple(r) for r in rows])
        ok = len(rows) == count and checksum == truth["sha256"]
        report.add("  result vs ground truth (count, sha256)", f"{'MATCH' if ok else 'MISMATCH'} ({len(rows):,} rows)")
        consumer = await pl.ConsumerRun.start(pool, caip2, settings.amqp_url.get_secret_value(), queue=queue_name,
                                              exchange=BENCH_EXCHANGE, batch_size=5000)
        started = time.perf_counter()
        await consumer.idle(quiet=1.0, timeout=1800)
        seconds = time.perf_counter() - started - 1.0
        report.add("catalog consumer draining those messages (5,000 events/tx)", _rate(count, seconds))
        applied = consumer.consumer.stats.applied
        report.add("  events on the wire applied by the catalog (vs ground truth)",
                   f"{applied:>12,} {'MATCH' if applied == count else 'MISMATCH'}")
        await consumer.stop()
        return wall
    finally:
        with contextlib.suppress(Exception):
            await channel.queue_delete(queue_name)
        await connection.close()
        await mongo.drop_database(BENCH_DB)
        await pl.purge(pool, mongo, caip2)
        await pool.close()


# ------------------------------------------------------------------------------------------------- ponder


def ponder(report: Report, anvil: ck.Anvil, truth: dict[str, Any], indexer_wall: float) -> None:
    binary = PONDER_DIR / "node_modules" / ".bin" / "ponder"
    if not binary.exists():
        report.add("Ponder 0.16", "skipped: run `npm install --prefix bench/indexer/ponder` first")
        return
    schema = f"ponder_bench_{truth['layout']}"
    dsn = InfraSettings().pg_dsn.get_secret_value()
    subprocess.run(["psql", dsn, "-qc", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=False,
                   capture_output=True)
    port = ck.free_port()
    env = {**os.environ, "DATABASE_URL": dsn, "DATABASE_SCHEMA": schema, "PONDER_RPC_URL": anvil.url,
           "PONDER_CHAIN_ID": str(truth["chain_id"]), "PONDER_ERC721": truth["contracts"]["ERC721"],
           "PONDER_ERC1155": truth["contracts"]["ERC1155"], "PONDER_START_BLOCK": str(truth["first_block"]),
           "PONDER_END_BLOCK": str(truth["last_block"]), "PONDER_TELEMETRY_DISABLED": "true", "NO_COLOR": "1"}
    shutil.rmtree(PONDER_DIR / ".ponder", ignore_errors=True)
    log = open(PONDER_DIR / "ponder.log", "w")  # noqa: SIM115 - closed below
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen([str(binary), "start", "--port", str(port), "--schema", schema], cwd=PONDER_DIR,
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ready = False
    count_sql = f"SELECT count(*) FROM {schema}.transfer"  # noqa: S608 - our own schema name
    count = 0
    try:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline and process.poll() is None:
            if not ready:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
                        ready = response.status == 200
                except OSError:
                    pass
            if ready:  # every row in PostgreSQL, not only "ready" (live blocks come after it)
                out = subprocess.run(["psql", dsn, "-Atc", count_sql], capture_output=True, text=True, check=False)
                count = int(out.stdout.strip() or 0) if out.returncode == 0 else 0
                if count >= truth["transfers"]:
                    break
            time.sleep(0.2)
        wall = time.perf_counter() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if count < truth["transfers"]:
        report.add("Ponder 0.16", f"incomplete ({count:,} rows); see {PONDER_DIR / 'ponder.log'}")
        return
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report.add("PONDER 0.16 historical sync + indexing into PG (same events)", _rate(count, wall))
    report.add("  Ponder CPU seconds (user+sys)", f"{cpu:>12.1f} s")
    report.add("  rows vs ground truth", f"{'MATCH' if count == truth['transfers'] else 'MISMATCH'} ({count:,})")
    report.add("  RATIO mintplane / Ponder (events/s, end to end)", f"{wall / indexer_wall:>12.2f}x")
    subprocess.run(["psql", dsn, "-qc", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=False,
                   capture_output=True)


# --------------------------------------------------------------------------------------------------- main


async def bench(layout: str, *, stages: bool, with_ponder: bool) -> None:
    directory = fixture_dir(layout)
    truth = json.loads((directory / "truth.json").read_text())
    print(f"\n== {layout}: {truth['transfers']:,} transfers ({truth['erc721']:,} ERC-721, {truth['erc1155']:,} "
          f"ERC-1155) in {truth['blocks']:,} blocks ({truth['blocks_with_events']:,} with events)")
    report = Report(layout, truth)
    started = time.perf_counter()
    # one-slot epochs: anvil's "finalized" block is then ~2 behind the head, so Ponder (which syncs only
    # finalized blocks historically and the rest block by block) backfills like on a real chain's history
    anvil = ck.Anvil(chain_id=truth["chain_id"], load_state=directory / "state.json",
                     extra=("--slots-in-an-epoch", "1")).start(timeout=300)
    report.add("anvil --load-state", f"{time.perf_counter() - started:>12.1f} s")
    registry = ck.registry_target()
    try:
        contracts = truth["contracts"]
        ck.seed_registry(registry, truth["chain_id"], [ck.EndpointSeed(anvil.url)],
                         [(contracts["ERC721"], "ERC721", truth["first_block"]),
                          (contracts["ERC1155"], "ERC1155", truth["first_block"])])
        _replace_endpoints(registry, anvil.caip2, anvil.url)
        if stages:
            span = 10 if layout == "dense" else 5_000
            logs = await stage_get_logs(report, anvil.url, sorted(contracts.values()), truth["first_block"],
                                        truth["last_block"], span)
            transfers = stage_decode(report, anvil.caip2, logs, contracts)
            assert len(transfers) == truth["transfers"]
            await stage_sinks(report, anvil.caip2, transfers)
        wall = await end_to_end(report, anvil, truth, registry)
        if with_ponder:
            ponder(report, anvil, truth, wall)
    finally:
        anvil.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("layout", choices=["dense", "sparse", "all"], nargs="?", default="all")
    parser.add_argument("--no-ponder", action="store_true")
    parser.add_argument("--no-stages", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; dev stack PostgreSQL, FerretDB (MongoDB wire), RabbitMQ on loopback")
    for layout in ("dense", "sparse") if args.layout == "all" else (args.layout,):
        asyncio.run(bench(layout, stages=not args.no_stages, with_ponder=not args.no_ponder))


if __name__ == "__main__":
    main()

"""The catalog's GraphQL read path at 100,000 tokens and 1,000,000 trait links, beside its floors, in one run.

    .venv/bin/python bench/gateway/run.py                       # seeds (~2 min), measures, keeps the catalog
    .venv/bin/python bench/gateway/run.py --reuse --duration 10 --profile
    .venv/bin/python bench/gateway/seed.py --drop               # remove the bench catalog afterwards

Five typical queries (a collection page, a token grid with two trait filters sorted by rarity, a token
detail, an activity feed, the facets under two filters), each at each ``--concurrency``, in four modes:

- ``uncached``: through a real gateway process (APQ over GET, the result cache off) over real catalog,
  chain-registry, user and wallet processes started here from the current tree on spare ports, against the
  dev stack's PostgreSQL (auth: the dev stack's, no query needs it);
- ``cached``: the same GET against a second gateway process with the result cache on (every request but
  the first is a hit; hits and misses are read from the gateway's /metrics). Answers that read owners' users
  (wallet/user services, no change events) are shared for 5 s here (``RESULT_CACHE_UNEVENTED_TTL_SECONDS``;
  the default 0 never shares them, so the token grid and detail would never hit);
- ``plain``: the same JSON (the gateway's own response, parsed) serialised by a plain FastAPI route with
  orjson (bench/gateway/plain.py), one uvicorn worker like the gateway;
- ``sql``: the statements the catalog sends for that query (captured from the real read path: an in-process
  catalog behind a recording pool, driven by an in-process gateway), run with asyncpg on a pool of the
  catalog's size, one request = its statements one after another on one connection.

Cores: the machine has two. The gateway and the plain server are pinned to CPU 0, the load generator (wrk,
one thread, from Debian) and this process (the asyncpg mode) to CPU 1; the upstream services, PostgreSQL and
the rest of the dev stack float over both, so in ``uncached`` the gateway shares CPU 0 with them. Also
timed: every captured statement serially (p50/p99 of ``--runs``, EXPLAIN ANALYZE of the slowest printed) and
the full rarity recompute of the collection (mintplane.catalog.rarity.recompute, scores cleared first).
With ``--profile`` the uncached cells at the highest concurrency are re-run under py-spy (gateway and
catalog processes) and the cached one for the gateway, and the samples are grouped by where they fall.
Numbers, not asserts; goals are printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import orjson

from mintplane.catalog import server as catalog_server
from mintplane.catalog.settings import CatalogSettings
from mintplane.common.postgres import create_pool
from mintplane.common.service import Resources
from mintplane.common.settings import SERVICE_PORTS, InfraSettings
from mintplane.gateway.app import create_app
from mintplane.gateway.clients import ChannelPool
from mintplane.gateway.localstack import free_port
from mintplane.gateway.settings import GatewaySettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import seed as bench_seed  # type: ignore[import-not-found]  # bench/gateway/seed.py: a script folder

SERVER_CPU = "0"
LOADGEN_CPU = "1"
ALL_CPUS = "0,1"
UNEVENTED_TTL = "5"
HERE = Path(__file__).resolve().parent
TWO_FILTERS = [{"name": "Trait A", "values": ["value A0", "value A1"]},
               {"name": "Trait C", "values": ["value C3"]}]

COLLECTION_PAGE = """query CollectionPage($slug: String!) {
  collection(slug: $slug) {
    id name description chain address standard totalSupply verified status
    stats { itemsCount ownersCount metadata { ok pending failed } rarityComputedAt }
    tokens(first: 50) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { id tokenNumber name image rarity { rank score } owner { address } lastTransferredAt } }
    }
  }
}"""
GRID_QUERY = """query TokenGrid($slug: String!, $traits: [TraitFilter!]) {
  collection(slug: $slug) {
    tokens(first: 50, sort: RARITY, traits: $traits) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { id tokenNumber name image rarity { rank score } owner { address user { username } } } }
    }
  }
}"""
DETAIL_QUERY = """query TokenDetail($chain: String!, $address: String!, $number: String!) {
  token(chain: $chain, address: $address, tokenNumber: $number) {
    id tokenNumber name description image standard burned mintedAt lastTransferredAt
    metadata { status fetchedAt }
    owner { address user { username } }
    collection { name slug stats { itemsCount ownersCount } }
    traits { name value displayType occurrences rarityScore }
    rarity { rank score explanation { trait value occurrences contribution missing meta counted } }
    activity(first: 10) { edges { node { type fromAddress toAddress txHash occurredAt } } }
  }
}"""
ACTIVITY_FEED = """query ActivityFeed($slug: String!) {
  activity(collection: {slug: $slug}, first: 50) {
    pageInfo { hasNextPage endCursor }
    edges { node { id type fromAddress toAddress txHash occurredAt token { tokenNumber name image } } }
  }
}"""
FACETS = """query Facets($slug: String!, $traits: [TraitFilter!]) {
  collection(slug: $slug) {
    traits(traits: $traits) {
      name valueType isMeta nullCount minValue maxValue values { value count filteredCount rarityScore }
    }
  }
}"""

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d, ' ..
    '"status_errors": %d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class Query:
    name: str
    text: str
    variables: dict[str, Any]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def apq_path(self, *, with_text: bool = False) -> str:
        """The APQ GET: hash (and, to register it, the text), variables as JSON in the query string."""
        params = {"operationName": self.name, "variables": orjson.dumps(self.variables).decode(),
                  "extensions": orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": self.sha256}}).decode()}
        if with_text:
            params["query"] = self.text
        return "/graphql?" + urlencode(params)


@dataclass
class Cell:
    rps: float
    p50: float  # ms
    p99: float  # ms
    errors: int = 0
    note: str = ""


@dataclass
class Piece:
    name: str
    process: asyncio.subprocess.Process
    log: Path

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    ports: dict[str, int]
    pieces: dict[str, Piece] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def pid(self, name: str) -> int:
        return self.pieces[name].process.pid


# --------------------------------------------------------------------------------------------- processes


async def _spawn(stack: Stack, name: str, argv: list[str], env: dict[str, str], cpus: str, folder: Path) -> None:
    log = folder / f"{name}.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            "taskset", "-c", cpus, *argv, env={**os.environ, **env}, stdout=sink, stderr=asyncio.subprocess.STDOUT)
    stack.pieces[name] = Piece(name, process, log)


async def _wait_port(stack: Stack, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        piece = stack.pieces[name]
        if piece.process.returncode is not None:
            raise RuntimeError(f"{name} exited with {piece.process.returncode}:\n{piece.tail()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", stack.ports[name])
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not listening after {timeout:.0f}s:\n{piece.tail()}") from None
            await asyncio.sleep(0.2)


async def _wait_http(stack: Stack, name: str, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            piece = stack.pieces[name]
            if piece.process.returncode is not None:
                raise RuntimeError(f"{name} exited with {piece.process.returncode}:\n{piece.tail()}")
            try:
                if (await client.get(stack.url(name) + path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {timeout:.0f}s:\n{piece.tail()}")
            await asyncio.sleep(0.2)


@asynccontextmanager
async def services(folder: Path) -> AsyncIterator[Stack]:
    """Upstreams (float) and two gateways (CPU 0), from the current tree; SIGTERM on exit (start_plain adds the
    plain server later)."""
    names = ("chain_registry", "user", "wallet", "catalog", "uncached", "cached", "plain")
    stack = Stack({name: free_port() for name in names})
    quiet = {"MINTPLANE_LOG_LEVEL": "WARNING", "MINTPLANE_LOG_JSON": "true", "MINTPLANE_METRICS_PORT": "0"}
    upstream = {
        "MINTPLANE_GATEWAY_CATALOG_ADDR": f"127.0.0.1:{stack.ports['catalog']}",
        "MINTPLANE_GATEWAY_CHAIN_REGISTRY_ADDR": f"127.0.0.1:{stack.ports['chain_registry']}",
        "MINTPLANE_GATEWAY_USER_ADDR": f"127.0.0.1:{stack.ports['user']}",
        "MINTPLANE_GATEWAY_WALLET_ADDR": f"127.0.0.1:{stack.ports['wallet']}",
        "MINTPLANE_GATEWAY_AUTH_ADDR": f"127.0.0.1:{SERVICE_PORTS['auth']}",
        "MINTPLANE_GATEWAY_ACCESS_LOG": "false", "MINTPLANE_GATEWAY_GRAPHIQL": "false",
        "MINTPLANE_GATEWAY_RESULT_CACHE_NAMESPACE": f"mintplane:bench-gateway:{uuid.uuid4().hex[:8]}",
    }
    try:
        for name in ("chain_registry", "user", "wallet", "catalog"):
            env = {**quiet, "MINTPLANE_GRPC_PORT": str(stack.ports[name])}
            if name == "catalog":  # serve reads only: no queue consumer, no metadata fetching
                env |= {"MINTPLANE_CATALOG_CONSUME": "false", "MINTPLANE_METADATA_WORKER": "false",
                        "MINTPLANE_RARITY_WORKER": "false"}
            await _spawn(stack, name, [sys.executable, "-m", f"mintplane.{name}"], env, ALL_CPUS, folder)
        for name in ("chain_registry", "user", "wallet", "catalog"):
            await _wait_port(stack, name)
        for name, cache in (("uncached", "false"), ("cached", "true")):
            env = {**quiet, **upstream, "MINTPLANE_GATEWAY_PORT": str(stack.ports[name]),
                   "MINTPLANE_GATEWAY_RESULT_CACHE": cache,
                   # owner.user reads wallet/user, which publish no change events: by default (0) such an
                   # answer is never shared; the bench lets it live 5 s so token pages can hit at all
                   "MINTPLANE_GATEWAY_RESULT_CACHE_UNEVENTED_TTL_SECONDS": UNEVENTED_TTL}
            await _spawn(stack, name, [sys.executable, "-m", "mintplane.gateway"], env, SERVER_CPU, folder)
        for name in ("uncached", "cached"):
            await _wait_http(stack, name, "/readyz")
        yield stack
    finally:
        for piece in stack.pieces.values():
            if piece.process.returncode is None:
                piece.process.terminate()
        for piece in stack.pieces.values():
            try:
                await asyncio.wait_for(piece.process.wait(), 15)
            except TimeoutError:
                piece.process.kill()
                await piece.process.wait()


# ------------------------------------------------------------------------------------ capturing the SQL


class _Recording:
    """An asyncpg connection or pool that remembers every statement sent through it (catalog's read path)."""

    def __init__(self, target: Any, log: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._target = target
        self._log = log

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name in ("fetch", "fetchrow", "fetchval"):
            async def recorded(query: str, *args: Any, **kwargs: Any) -> Any:
                self._log.append((query, args))
                return await attribute(query, *args, **kwargs)

            return recorded
        return attribute

    def acquire(self) -> Any:
        inner = self._target.acquire()
        log = self._log

        class Acquired:
            async def __aenter__(self) -> _Recording:
                return _Recording(await inner.__aenter__(), log)

            async def __aexit__(self, *exc: object) -> None:
                await inner.__aexit__(*exc)

        return Acquired()


Statements = list[tuple[str, tuple[Any, ...]]]


async def capture(stack: Stack, queries: list[Query]) -> tuple[dict[str, Any], dict[str, Statements]]:
    """Each query once through an in-process gateway over an in-process catalog with a recording pool (the
    other upstreams: the processes of `stack`). Returns the responses and the statements per query."""
    statements: list[tuple[str, tuple[Any, ...]]] = []
    settings = CatalogSettings(grpc_port=0, catalog_consume=False, metadata_worker=False, rarity_worker=False)
    resources = await Resources.open(settings, catalog_server.NEEDS, name="bench-gateway-capture")
    real_pool = resources.pg
    resources.pg = _Recording(real_pool, statements)
    built = await catalog_server.build_server(settings, resources)
    resources.pg = real_pool
    await built.server.start()
    gateway = GatewaySettings(
        auth_addr=f"127.0.0.1:{SERVICE_PORTS['auth']}", catalog_addr=f"127.0.0.1:{built.port}",
        chain_registry_addr=f"127.0.0.1:{stack.ports['chain_registry']}",
        user_addr=f"127.0.0.1:{stack.ports['user']}", wallet_addr=f"127.0.0.1:{stack.ports['wallet']}",
        result_cache=False, persisted_queries=False)
    app = create_app(gateway, upstreams=ChannelPool(gateway.upstream_addresses()))
    responses: dict[str, Any] = {}
    captured: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway.bench", timeout=60) as http:
                for query in queries:
                    statements.clear()
                    reply = await http.post("/graphql", json={"query": query.text, "variables": query.variables})
                    body = reply.json()
                    if reply.status_code != 200 or body.get("errors") or not body.get("data"):
                        raise RuntimeError(f"{query.name}: {reply.status_code} {reply.text[:2000]}")
                    responses[query.name] = body
                    captured[query.name] = list(statements)
    finally:
        await built.server.stop(None)
        await resources.close()
    return responses, captured


# ------------------------------------------------------------------------------------------ load


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wrk(url: str, concurrency: int, duration: float, script: Path) -> Cell:
    process = await asyncio.create_subprocess_exec(
        "taskset", "-c", LOADGEN_CPU, "wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", "--timeout", "10s",
        "-s", str(script), url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    line = next((x for x in out.decode().splitlines() if x.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.decode()}\n{err.decode()}")
    result = orjson.loads(line)
    return Cell(result["requests"] / (result["duration_us"] / 1e6), result["p50_us"] / 1000,
                result["p99_us"] / 1000, result["errors"] + result["status_errors"])


async def sql_load(pool: asyncpg.Pool[Any], statements: list[tuple[str, tuple[Any, ...]]], concurrency: int,
                   duration: float) -> Cell:
    latencies: list[float] = []
    deadline = time.monotonic() + duration

    async def worker() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with pool.acquire() as conn:
                for query, args in statements:
                    await conn.fetch(query, *args)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Cell(len(latencies) / elapsed, statistics.median(latencies), _pct(latencies, 0.99))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _cache_counts(client: httpx.AsyncClient, url: str) -> Counter[str]:
    text = (await client.get(url + "/metrics")).text
    return Counter({m[1]: float(m[2]) for m in re.finditer(
        r'^gateway_result_cache_total\{outcome="(\w+)"\} ([0-9.e+]+)$', text, re.M)})


# --------------------------------------------------------------------------------------------- profile


# py-spy names frames "function (package/module.py:line)", paths relative to site-packages or services/mintplane.
_THREADS = ("native threads (gRPC C-core poller, GIL waits)", ("(threading.py",))
_GATEWAY_GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("serialization (orjson/json)", ("orjson", "encode_json", "(json/")),
    ("protobuf", ("(google/protobuf",)),
    ("gRPC client", ("(grpc/", "grpc_", "(gateway/clients.py")),
    ("resolvers and loaders (gateway/schema, loaders)", ("(gateway/schema/", "(gateway/loaders", "(gateway/pagination",
                                                         "(gateway/context", "(gateway/errors")),
    ("GraphQL execution (graphql-core, strawberry)", ("(graphql/", "(strawberry/")),
    ("hot path (APQ, result cache)", ("(gateway/hot_path", "(gateway/result_cache", "(gateway/persisted",
                                      "(gateway/lru")),
    ("HTTP (uvicorn, starlette, fastapi, middleware)", ("(uvicorn/", "(starlette/", "(fastapi/", "httptools",
                                                        "(gateway/middleware", "(gateway/metrics",
                                                        "(prometheus_client/")),
    ("asyncio / uvloop", ("(asyncio/", "uvloop")),
    _THREADS,
]
_CATALOG_GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("SQL driver (asyncpg)", ("(asyncpg/",)),
    ("protobuf (building responses: catalog/views + protobuf)", ("(google/protobuf", "(catalog/views")),
    ("catalog read code (queries, facets, keyset, filters)", ("(catalog/",)),
    ("gRPC server", ("(grpc/", "grpc_", "(common/grpc")),
    ("asyncio", ("(asyncio/", "(selectors.py")),
    _THREADS,
]


def _group_samples(path: Path, groups: list[tuple[str, tuple[str, ...]]]) -> tuple[Counter[str], Counter[str]]:
    """py-spy raw (collapsed) stacks -> samples per group (innermost matching frame) and per leaf function."""
    by_group: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first is the thread
        leaves[frames[-1] if frames else "?"] += count
        for frame in reversed(frames):
            group = next((name for name, needles in groups if any(n in frame for n in needles)), None)
            if group is not None:
                by_group[group] += count
                break
        else:
            by_group["other"] += count
    return by_group, leaves


async def profile_cell(stack: Stack, targets: list[str], url: str, concurrency: int, duration: float,
                       script: Path, folder: Path) -> dict[str, Path]:
    outputs = {name: folder / f"profile-{name}-{uuid.uuid4().hex[:6]}.txt" for name in targets}
    spies = [await asyncio.create_subprocess_exec(
        "taskset", "-c", LOADGEN_CPU, str(Path(sys.executable).parent / "py-spy"), "record",
        "--pid", str(stack.pid(name)),
        "--duration", str(int(duration)), "--rate", "200", "--format", "raw", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE) for name, out in outputs.items()]
    await asyncio.sleep(0.5)
    await wrk(url, concurrency, duration, script)
    for spy in spies:
        await spy.wait()
    return outputs


def print_profile(title: str, path: Path, groups: list[tuple[str, tuple[str, ...]]]) -> None:
    if not path.exists():
        print(f"  {title}: no profile (py-spy failed)")
        return
    by_group, leaves = _group_samples(path, groups)
    total = sum(by_group.values()) or 1
    print(f"  {title} ({total} busy samples):")
    for name, count in by_group.most_common():
        print(f"      {100 * count / total:5.1f}%  {name}")
    print("    hottest functions (self):")
    for name, count in leaves.most_common(6):
        print(f"      {100 * count / total:5.1f}%  {name[:110]}")


# ------------------------------------------------------------------------------------------------- main


def _goal(ok: bool) -> str:
    return "met" if ok else "MISSED"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--runs", type=int, default=100, help="serial runs per statement")
    parser.add_argument("--reuse", action="store_true", help="use the bench catalog a previous run left")
    parser.add_argument("--profile", action="store_true", help="py-spy the uncached and cached paths")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LOADGEN_CPU)})
    print(f"cpus: {os.cpu_count()}; gateway and plain server on CPU {SERVER_CPU}, wrk and asyncpg client on "
          f"CPU {LOADGEN_CPU}, upstream services and PostgreSQL float; {args.duration:g} s per cell")

    infra = InfraSettings()
    pool = await create_pool(infra, application_name="mintplane-bench-gateway")
    catalog = await bench_seed.find(pool, args.tokens) if args.reuse else None
    if catalog is None:
        started = time.perf_counter()
        catalog = await bench_seed.seed(pool, args.tokens)
        print(f"seeded in {time.perf_counter() - started:.1f} s")
    print(f"catalog: {catalog.tokens:,} tokens, {catalog.links:,} trait links, {catalog.activities:,} activities "
          f"(slug {catalog.slug}, chain {catalog.chain_id})")
    print("rarity: clearing every score, then the full recompute (timed) ...", flush=True)
    full, unchanged = await bench_seed.full_recompute(pool, catalog.collection_id)
    print(f"rarity recompute of {full.tokens:,} tokens: full {full.seconds:.2f} s (goal < 10 s: "
          f"{_goal(full.seconds < 10)}), again with nothing changed {unchanged.seconds:.2f} s")
    middle = str(args.tokens // 2)
    queries = [
        Query("CollectionPage", COLLECTION_PAGE, {"slug": catalog.slug}),
        Query("TokenGrid", GRID_QUERY, {"slug": catalog.slug, "traits": TWO_FILTERS}),
        Query("TokenDetail", DETAIL_QUERY, {"chain": catalog.chain_id, "address": catalog.contract, "number": middle}),
        Query("ActivityFeed", ACTIVITY_FEED, {"slug": catalog.slug}),
        Query("Facets", FACETS, {"slug": catalog.slug, "traits": TWO_FILTERS}),
    ]

    with tempfile.TemporaryDirectory(prefix="mintplane-bench-gateway-") as tmp:
        folder = Path(tmp)
        script = folder / "report.lua"
        script.write_text(WRK_SCRIPT)
        docs = folder / "docs.json"
        async with services(folder) as stack:
            print("services up; capturing each query's SQL ...", flush=True)
            responses, captured = await capture(stack, queries)
            docs.write_bytes(orjson.dumps(responses))  # the plain server serves the gateway's own answers
            await _spawn(stack, "plain", [sys.executable, str(HERE / "plain.py"), "--docs", str(docs),
                                          "--port", str(stack.ports["plain"])], {}, SERVER_CPU, folder)
            await _wait_port(stack, "plain")
            results, cpu = await measure(stack, pool, queries, responses, captured, args, script)
            print_table(queries, responses, captured, results, cpu, args.concurrency)
            await statements_report(pool, queries, captured, args.runs)
            if args.profile:
                top = max(args.concurrency)
                print(f"\nprofiles (py-spy, 200 Hz, {args.duration:g} s at concurrency {top}; own CPU 1 beside wrk):")
                for query in queries:
                    paths = await profile_cell(stack, ["uncached", "catalog"], stack.url("uncached") + query.apq_path(),
                                               top, args.duration, script, folder)
                    print(f"\n {query.name}, uncached:")
                    print_profile("gateway", paths["uncached"], _GATEWAY_GROUPS)
                    print_profile("catalog", paths["catalog"], _CATALOG_GROUPS)
                paths = await profile_cell(stack, ["cached"], stack.url("cached") + queries[1].apq_path(), top,
                                           args.duration, script, folder)
                print(f"\n {queries[1].name}, cached:")
                print_profile("gateway", paths["cached"], _GATEWAY_GROUPS)
    await pool.close()


Results = dict[tuple[str, str, int], Cell]


async def measure(stack: Stack, pool: asyncpg.Pool[Any], queries: list[Query], responses: dict[str, Any],
                  captured: dict[str, list[tuple[str, tuple[Any, ...]]]], args: argparse.Namespace,
                  script: Path) -> tuple[Results, dict[tuple[str, int], tuple[float, float]]]:
    """Every (query, mode, concurrency) cell; CPU ms per request of gateway and catalog in the uncached ones."""
    results: Results = {}
    cpu: dict[tuple[str, int], tuple[float, float]] = {}
    sql_pool = await create_pool(InfraSettings(pg_pool_max=CatalogSettings().pg_pool_max),
                                 application_name="mintplane-bench-gateway-sql")
    async with httpx.AsyncClient(timeout=30) as client:
        for query in queries:
            expected = responses[query.name]["data"]
            for name in ("uncached", "cached"):  # register the APQ text, check the answer matches the capture
                reply = await client.get(stack.url(name) + query.apq_path(with_text=True))
                body = reply.json()
                if reply.status_code != 200 or body.get("errors") or body.get("data") != expected:
                    raise RuntimeError(f"{query.name} via {name}: {reply.status_code} {reply.text[:1500]}\n"
                                       f"{stack.pieces[name].tail(15)}\n{stack.pieces['catalog'].tail(15)}")
            plain = (await client.get(f"{stack.url('plain')}/plain/{query.name}")).json()
            if plain["data"] != expected:
                raise RuntimeError(f"{query.name}: the plain route serves something else")
            for concurrency in args.concurrency:
                before = (_cpu_seconds(stack.pid("uncached")), _cpu_seconds(stack.pid("catalog")))
                cell = await wrk(stack.url("uncached") + query.apq_path(), concurrency, args.duration, script)
                after = (_cpu_seconds(stack.pid("uncached")), _cpu_seconds(stack.pid("catalog")))
                done = cell.rps * args.duration or 1
                cpu[(query.name, concurrency)] = (1000 * (after[0] - before[0]) / done,
                                                  1000 * (after[1] - before[1]) / done)
                results[(query.name, "uncached", concurrency)] = cell
                counts_before = await _cache_counts(client, stack.url("cached"))
                cell = await wrk(stack.url("cached") + query.apq_path(), concurrency, args.duration, script)
                counts = await _cache_counts(client, stack.url("cached")) - counts_before
                hits = counts["hit_local"] + counts["hit_redis"]
                lookups = hits + counts["miss"]
                cell.note = f"hits {100 * hits / lookups:.2f}%" if lookups else "no lookups?"
                results[(query.name, "cached", concurrency)] = cell
                results[(query.name, "plain", concurrency)] = await wrk(
                    f"{stack.url('plain')}/plain/{query.name}", concurrency, args.duration, script)
                results[(query.name, "sql", concurrency)] = await sql_load(
                    sql_pool, captured[query.name], concurrency, args.duration)
                print(f"  measured {query.name} at {concurrency}", flush=True)
    await sql_pool.close()
    return results, cpu


def print_table(queries: list[Query], responses: dict[str, Any], captured: dict[str, list[Any]], results: Results,
                cpu: dict[tuple[str, int], tuple[float, float]], concurrencies: list[int]) -> None:
    print("\nreq/s and latency (p50 / p99 ms) per query, mode and concurrency")
    header = (f"{'query':<15}{'conc':>5} | {'uncached (gateway)':>26} | {'cached (gateway)':>26} | "
              f"{'plain FastAPI+orjson':>26} | {'SQL (asyncpg)':>26} | cached/plain | gw/catalog cpu ms/req uncached")
    print(header)
    print("-" * len(header))
    for query in queries:
        for c in concurrencies:
            cells = [results[(query.name, mode, c)] for mode in ("uncached", "cached", "plain", "sql")]
            text = " | ".join(f"{x.rps:8.0f}/s {x.p50:6.2f} / {x.p99:6.2f}" for x in cells)
            gw, cat = cpu[(query.name, c)]
            errors = sum(x.errors for x in cells)
            print(f"{query.name:<15}{c:>5} | {text} | {cells[1].rps / cells[2].rps:11.2f}x | {gw:6.2f} / {cat:5.2f}"
                  f"{f'  ERRORS {errors}' if errors else ''}  ({cells[1].note})")
    print("\nper query: response bytes, catalog statements")
    for query in queries:
        size = len(orjson.dumps(responses[query.name]))
        print(f"  {query.name:<15}{size:>8} B  {len(captured[query.name])} statements")
    top = max(concurrencies)
    print(f"\ngoals at concurrency {top}:")
    for query in queries:
        u, k, p = (results[(query.name, m, top)] for m in ("uncached", "cached", "plain"))
        print(f"  {query.name:<15} cached >= half plain: {k.rps:.0f} vs {p.rps / 2:.0f} ({_goal(k.rps >= p.rps / 2)}); "
              f"cached p99 < 50 ms: {k.p99:.1f} ({_goal(k.p99 < 50)}); uncached >= 185/s: {u.rps:.0f} "
              f"({_goal(u.rps >= 185)})")


async def statements_report(pool: asyncpg.Pool[Any], queries: list[Query],
                            captured: dict[str, list[tuple[str, tuple[Any, ...]]]], runs: int) -> None:
    """Every captured statement alone on one connection (no concurrency): p50/p99; the slowest explained."""
    print(f"\nSQL per statement, serial ({runs} runs each, one connection); goal: each < 10 ms p99")
    worst: tuple[float, str, str, tuple[Any, ...]] = (0.0, "", "", ())
    async with pool.acquire() as conn:
        for query in queries:
            for statement, stmt_args in captured[query.name]:
                await conn.fetch(statement, *stmt_args)
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    await conn.fetch(statement, *stmt_args)
                    samples.append((time.perf_counter() - started) * 1000)
                p99 = _pct(samples, 0.99)
                print(f"  {query.name:<15} p50 {statistics.median(samples):6.2f}  p99 {p99:6.2f} ms "
                      f"{'' if p99 < 10 else 'MISSED '} {' '.join(statement.split())[:80]}")
                if p99 > worst[0]:
                    worst = (p99, query.name, statement, stmt_args)
        print(f"\nslowest statement: p99 {worst[0]:.2f} ms ({worst[1]}; goal < 10 ms: {_goal(worst[0] < 10)})")
        print(" ".join(worst[2].split()))
        print(f"args: {[a if not isinstance(a, list) or len(a) < 8 else f'[{len(a)} items]' for a in worst[3]]}")
        for row in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + worst[2], *worst[3]):
            print("   ", row[0])


if __name__ == "__main__":
    asyncio.run(main())

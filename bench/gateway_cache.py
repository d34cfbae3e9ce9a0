"""The gateway's result cache: a cached vs an uncached 50-token page, and a plain FastAPI route as the floor.

    .venv/bin/python bench/gateway_cache.py                      # 3 s per case, concurrency 10 and 50
    .venv/bin/python bench/gateway_cache.py --seconds 5 --concurrency 50

No I/O behind the gateway (its upstreams are the in-memory fakes of mintplane.gateway.testing), so the
uncached number is the cost of GraphQL execution itself (DESIGN.md §7 measured Strawberry at ~185 req/s for
such a page) and the cached one the cost of the hot path (parse the GET, hash the key, LRU lookup, send
bytes). Two ways to drive it:

- `asgi`: requests are handed to the ASGI app in this process (no sockets, no HTTP parser): the server's own
  ceiling, comparable to the §7 numbers;
- `http`: uvicorn in a child process, httpx clients here over loopback; on a two-core machine the Python
  client shares the CPU and is itself the limit of the cached case.

Helper H7's bench/gateway/ runs the full five-query benchmark against real services; this is the quick check.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import FastAPI, Response

from mintplane.gateway.app import create_app
from mintplane.gateway.settings import GatewaySettings
from mintplane.gateway.testing import FakeBackend

PAGE = """query($slug: String!) { tokens(collection: {slug: $slug}, first: 50) { totalCount edges { cursor node {
  id tokenNumber name image burned mintedAt owner { address } rarity { rank score }
  traits { name value occurrences rarityScore } } } } }"""


def backend() -> FakeBackend:
    fake = FakeBackend()
    collection = fake.add_collection("Bench Apes", slug="bench-apes")
    for number in range(1, 51):
        fake.add_token(collection, number, owner=f"0x{number:040x}", rank=number, score=f"{100 - number}.5",
                       traits={"Background": f"b{number % 5}", "Eyes": f"e{number % 7}", "Hat": f"h{number % 3}"})
    return fake


def gateway_app(cached: bool) -> FastAPI:
    app = create_app(GatewaySettings(result_cache=cached, access_log=False, max_complexity=100000),
                     upstreams=backend())
    return app


def plain_app(body: bytes) -> FastAPI:
    app = FastAPI()

    @app.get("/graphql")
    async def page() -> Response:
        return Response(body, media_type="application/json")

    return app


def params() -> dict[str, str]:
    return {"query": PAGE, "variables": orjson.dumps({"slug": "bench-apes"}).decode()}


async def load(call: Callable[[], Awaitable[int]], seconds: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failures
        while time.perf_counter() < stop:
            started = time.perf_counter()
            status = await call()
            latencies.append(time.perf_counter() - started)
            failures += status != 200

    begun = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - begun
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "failures": failures}


async def asgi_case(app: FastAPI, seconds: float, concurrency: int, *, activate: bool) -> dict[str, float]:
    async with app.router.lifespan_context(app):
        hot = getattr(app.state, "hot_path", None)
        if activate and hot is not None and hot.cache is not None:
            hot.cache.active = True  # no broker in this bench: nothing invalidates, which is what is measured
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            query = params()
            first = await client.get("/graphql", params=query)
            assert first.status_code == 200 and "errors" not in first.json(), first.text[:300]

            async def call() -> int:
                return (await client.get("/graphql", params=query)).status_code

            for _ in range(20):
                await call()
            return await load(call, seconds, concurrency)


def _serve(kind: str, port: int) -> None:
    if kind == "plain":
        app = plain_app(_page_body())
    else:
        app = gateway_app(kind == "cached")
        if kind == "cached":
            original = app.router.lifespan_context

            async def activate(app_: FastAPI) -> Any:
                async with original(app_):
                    app_.state.hot_path.cache.active = True
                    yield

            app.router.lifespan_context = asynccontextmanager(activate)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def page_body() -> bytes:
    """The page's JSON as the gateway renders it (what the plain route serves)."""
    app = gateway_app(False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            return (await client.get("/graphql", params=params())).content


def _page_body() -> bytes:
    return asyncio.run(page_body())


async def http_case(kind: str, port: int, seconds: float, concurrency: int) -> dict[str, float]:
    process = multiprocessing.Process(target=_serve, args=(kind, port), daemon=True)
    process.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     limits=httpx.Limits(max_connections=concurrency)) as client:
            for _ in range(100):
                try:
                    if (await client.get("/graphql", params=params())).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            query = params()

            async def call() -> int:
                return (await client.get("/graphql", params=query)).status_code

            for _ in range(50):
                await call()
            return await load(call, seconds, concurrency)
    finally:
        process.terminate()
        process.join(5)


def line(name: str, result: dict[str, float]) -> str:
    return (f"  {name:<28} {result['rps']:>9.0f} req/s   p50 {result['p50_ms']:>7.2f} ms   "
            f"p99 {result['p99_ms']:>7.2f} ms   failures {result['failures']:.0f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--port", type=int, default=18931)
    args = parser.parse_args()
    body = await page_body()
    print(f"50-token page, {len(body)} bytes of JSON; {args.seconds:.0f} s per case")
    for concurrency in args.concurrency:
        print(f"asgi (in process, no sockets), concurrency {concurrency}:")
        print(line("uncached (Strawberry)", await asgi_case(gateway_app(False), args.seconds, concurrency,
                                                            activate=False)))
        print(line("cached (hot path)", await asgi_case(gateway_app(True), args.seconds, concurrency,
                                                        activate=True)))
        print(line("plain FastAPI + bytes", await asgi_case(plain_app(body), args.seconds, concurrency,
                                                            activate=False)))
        print(f"http (uvicorn, 1 worker; httpx client in this process), concurrency {concurrency}:")
        for name, kind in (("uncached (Strawberry)", "uncached"), ("cached (hot path)", "cached"),
                           ("plain FastAPI + bytes", "plain")):
            print(line(name, await http_case(kind, args.port, args.seconds, concurrency)))


if __name__ == "__main__":
    asyncio.run(main())

"""The catalog read API's SQL at 100,000 tokens and 1,000,000 trait links: every query shape, timed and explained.

    .venv/bin/python bench/catalog_browse.py                  # seeds, measures, deletes the seeded collection
    .venv/bin/python bench/catalog_browse.py --tokens 20000 --runs 100 --keep

Seeds a collection with :func:`mintplane.catalog.synthetic.seed_collection` (9 string traits + a numeric
"Level" per token), then runs each request shape of ListTokens, ListTraits, BatchGetTokens, GetToken and
ListCollections through the real read modules on a repository that records the statements they send. For
every statement it prints EXPLAIN ANALYZE's execution time and the plan's top nodes, then p50/p99 over
``--runs`` executions on one connection (the SQL alone), and p50/p99 of the whole call (all its statements
plus building the protobuf response). Numbers, not asserts: the goal is each statement under 10 ms p99.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.common.v1 import common_pb2
from mintplane.catalog.collections import Collections
from mintplane.catalog.facets import Facets
from mintplane.catalog.queries import CatalogQueries
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.synthetic import Connection, SeededCollection, seed_collection
from mintplane.common.postgres import create_pool
from mintplane.common.settings import InfraSettings


class RecordingRepository(CatalogRepository):
    """The real repository, remembering every read statement and its arguments."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        super().__init__(pool)
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        self.statements.append((query, args))
        return await super().fetch(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.statements.append((query, args))
        return await super().fetchval(query, *args)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _plan_summary(plan: list[str]) -> str:
    nodes = [line.strip().lstrip("-> ").split("  (")[0] for line in plan
             if "->" in line or line == plan[0]]
    return " | ".join(nodes[:4])


async def _explain(conn: Connection, query: str, args: tuple[Any, ...]) -> tuple[float, str, int]:
    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query, *args)
    plan = [r[0] for r in rows]
    execution = next(float(line.split(":")[1].split()[0]) for line in plan if line.startswith("Execution Time"))
    buffers = 0
    for line in plan:
        if line.strip().startswith("Buffers:") and "shared hit=" in line:
            buffers = int(line.split("shared hit=")[1].split()[0].rstrip(","))
            break
    return execution, _plan_summary(plan), buffers


async def _time_sql(conn: Connection, query: str, args: tuple[Any, ...], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await conn.fetch(query, *args)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def measure(pool: asyncpg.Pool[Any], seeded: SeededCollection, runs: int, only: str = "",
                  plans: bool = False) -> None:
    repo = RecordingRepository(pool)
    queries, facets, collections = CatalogQueries(repo), Facets(repo), Collections(repo)
    cid = str(seeded.collection_id)
    async with pool.acquire() as conn:
        middle = await conn.fetchrow(
            "SELECT token_number FROM catalog.tokens WHERE collection_id = $1 ORDER BY length(token_number), "
            "token_number OFFSET $2 LIMIT 1", seeded.collection_id, seeded.tokens // 2)
        any_token = await conn.fetchval("SELECT id FROM catalog.tokens WHERE collection_id = $1 LIMIT 1",
                                        seeded.collection_id)
        batch = [str(r["id"]) for r in await conn.fetch(
            "SELECT id FROM catalog.tokens WHERE collection_id = $1 LIMIT 50", seeded.collection_id)]
    assert middle is not None
    two_filters = [pb.TraitFilter(name="trait a", values=["value A0", "value A1"]),
                   pb.TraitFilter(name="Trait C", values=["value C3"])]
    owner = seeded.owners[0]

    page50 = common_pb2.PageRequest(page_size=50)

    async def tokens(sort: Any = 0, **kw: Any) -> Any:
        return await queries.list_tokens(pb.ListTokensRequest(collection_id=cid, sort=sort, **kw))

    next_tokens: dict[tuple[Any, bool], str] = {}

    async def second_page(sort: Any, filtered: bool = False) -> Any:
        kw: dict[str, Any] = {"trait_filters": two_filters} if filtered else {}
        if (sort, filtered) not in next_tokens:  # the first page once, outside the timings
            first = await queries.list_tokens(pb.ListTokensRequest(collection_id=cid, sort=sort, page=page50, **kw))
            next_tokens[(sort, filtered)] = first.page.next_page_token
            repo.statements.clear()
        return await queries.list_tokens(pb.ListTokensRequest(
            collection_id=cid, sort=sort, page=common_pb2.PageRequest(
                page_size=50, page_token=next_tokens[(sort, filtered)]), **kw))

    shapes: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("tokens: number asc, page 1 (+count)", lambda: tokens(page=page50)),
        ("tokens: number asc, page 2", lambda: second_page(pb.TOKEN_SORT_TOKEN_NUMBER_ASC)),
        ("tokens: number desc, page 2", lambda: second_page(pb.TOKEN_SORT_TOKEN_NUMBER_DESC)),
        ("tokens: rarity asc, page 2", lambda: second_page(pb.TOKEN_SORT_RARITY_ASC)),
        ("tokens: rarity desc, page 2", lambda: second_page(pb.TOKEN_SORT_RARITY_DESC)),
        ("tokens: minted desc, page 2", lambda: second_page(pb.TOKEN_SORT_MINTED_AT_DESC)),
        ("tokens: transferred desc, page 2", lambda: second_page(pb.TOKEN_SORT_TRANSFERRED_AT_DESC)),
        ("tokens: 2 trait filters, rarity, page 1 (+count)",
         lambda: tokens(pb.TOKEN_SORT_RARITY_ASC, trait_filters=two_filters, page=page50)),
        ("tokens: 2 trait filters, rarity, page 2",
         lambda: second_page(pb.TOKEN_SORT_RARITY_ASC, filtered=True)),
        ("tokens: 1 common trait filter, rarity, page 1 (+count)",
         lambda: tokens(pb.TOKEN_SORT_RARITY_ASC, trait_filters=two_filters[:1], page=page50)),
        ("tokens: Level 10-20, rarity, page 1 (+count)",
         lambda: tokens(pb.TOKEN_SORT_RARITY_ASC, page=page50,
                        numeric_filters=[pb.NumericTraitFilter(name="level", min="10", max="20")])),
        ("tokens: owner in collection, page 1 (+count)", lambda: tokens(owner_address=owner, page=page50)),
        ("tokens: owner's wallets, all collections (+count)",
         lambda: queries.list_tokens(pb.ListTokensRequest(owner_addresses=seeded.owners[:5], page=page50))),
        ("tokens: query by token number", lambda: tokens(query=middle["token_number"])),
        ("facets: no filters", lambda: facets.list_traits(pb.ListTraitsRequest(collection_id=cid))),
        ("facets: 2 trait filters", lambda: facets.list_traits(pb.ListTraitsRequest(
            collection_id=cid, trait_filters=two_filters))),
        ("facets: 1 trait filter", lambda: facets.list_traits(pb.ListTraitsRequest(
            collection_id=cid, trait_filters=two_filters[:1]))),
        ("facets: owner", lambda: facets.list_traits(pb.ListTraitsRequest(collection_id=cid, owner_address=owner))),
        ("token detail", lambda: queries.get_token(pb.GetTokenRequest(id=str(any_token)))),
        ("batch get 50 tokens", lambda: queries.batch_get_tokens(pb.BatchGetTokensRequest(ids=batch))),
        ("collections: newest", lambda: collections.list_collections(pb.ListCollectionsRequest())),
        ("collections: items", lambda: collections.list_collections(pb.ListCollectionsRequest(
            sort=pb.COLLECTION_SORT_ITEMS_DESC))),
        ("collection stats x1", lambda: collections.batch_stats(pb.BatchGetCollectionStatsRequest(
            collection_ids=[cid]))),
    ]
    print(f"\n{seeded.tokens:,} tokens, {seeded.links:,} trait links; {runs} runs per statement\n")
    worst: tuple[float, str, str] = (0.0, "", "")
    for label, call in shapes:
        if only and only not in label:
            continue
        repo.statements.clear()
        await call()
        statements = list(repo.statements)
        call_samples = []
        for _ in range(max(10, runs // 4)):
            started = time.perf_counter()
            await call()
            call_samples.append((time.perf_counter() - started) * 1000)
        print(f"{label}: call p50 {statistics.median(call_samples):.2f} ms, p99 {_pct(call_samples, 0.99):.2f} ms, "
              f"{len(statements)} statement(s)")
        async with pool.acquire() as conn:
            for query, args in statements:
                execution, summary, buffers = await _explain(conn, query, args)
                samples = await _time_sql(conn, query, args, runs)
                p99 = _pct(samples, 0.99)
                first_line = " ".join(query.split())[:70]
                print(f"    sql p50 {statistics.median(samples):6.2f} ms  p99 {p99:6.2f} ms  "
                      f"explain {execution:6.2f} ms  buffers {buffers:6d}  {summary}\n        {first_line}")
                if plans:
                    for line in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query, *args):
                        print("        | " + line[0])
                if p99 > worst[0]:
                    worst = (p99, label, query)
    print(f"\nslowest statement: p99 {worst[0]:.2f} ms in '{worst[1]}':\n{worst[2]}")


async def reuse_collection(pool: asyncpg.Pool[Any], chain_id: str) -> SeededCollection:
    row = await pool.fetchrow(
        """SELECT c.id, c.contract_address,
                  (SELECT count(*) FROM catalog.tokens t WHERE t.collection_id = c.id) AS tokens,
                  (SELECT count(*) FROM catalog.token_trait_links k JOIN catalog.traits tr ON tr.id = k.trait_id
                    WHERE tr.collection_id = c.id) AS links
             FROM catalog.collections c WHERE c.chain_id = $1""", chain_id)
    if row is None:
        raise SystemExit(f"no seeded collection on {chain_id}")
    owners = [r["owner_address"] for r in await pool.fetch(
        "SELECT owner_address FROM catalog.tokens WHERE collection_id = $1 GROUP BY 1 ORDER BY count(*), 1 LIMIT 20",
        row["id"])]
    return SeededCollection(row["id"], chain_id, row["contract_address"], row["tokens"], row["links"], owners)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="leave the seeded collection in place")
    parser.add_argument("--only", default="", help="measure only the shapes whose label contains this")
    parser.add_argument("--plans", action="store_true", help="print every statement's full EXPLAIN ANALYZE")
    parser.add_argument("--reuse", metavar="CHAIN", help="measure the collection a --keep run seeded on CHAIN")
    args = parser.parse_args()
    pool = await create_pool(InfraSettings(pg_pool_max=4), application_name="mintplane-bench-catalog-browse")
    started = time.perf_counter()
    if args.reuse:
        seeded = await reuse_collection(pool, args.reuse)
        args.keep = True
    else:
        seeded = await seed_collection(pool, tokens=args.tokens)
    print(f"seeded {seeded.tokens:,} tokens / {seeded.links:,} links in {time.perf_counter() - started:.1f} s "
          f"(chain {seeded.chain_id}; measure again with --reuse {seeded.chain_id})")
    try:
        await measure(pool, seeded, args.runs, args.only, args.plans)
    finally:
        if not args.keep:
            await pool.execute("DELETE FROM catalog.collections WHERE id = $1", seeded.collection_id)
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())

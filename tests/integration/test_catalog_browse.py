"""Browsing the catalog over gRPC: trait filters, sorts, keyset pages, facets, collection lists, batch gets.

The service runs in this process on an ephemeral port (as in test_catalog_api.py) against the dev stack's
PostgreSQL. Tokens come in through the same ingestion the consumer uses (mints, transfers, a burn, a
reorg retraction); their traits and ranks are written the way the metadata worker and the rarity
recompute leave them (:mod:`mintplane.catalog.synthetic`). Every expected answer is computed here in
plain Python from the generated data, never written down by hand.
"""

from __future__ import annotations

import itertools
import random
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
import events as ev
import test_catalog_api as catalog_api

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.common.v1 import common_pb2
from mintplane.catalog import rarity
from mintplane.catalog.synthetic import ranks_with_ties, set_ranks, write_traits

pytestmark = pytest.mark.integration
# the in-process service and an isolated made-up chain, exactly as test_catalog_api.py runs them
Api = catalog_api.Api
api = catalog_api.api
chain = catalog_api.chain
ZERO = ev.ZERO
TOKENS = 37


@dataclass
class Tok:
    number: int
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    owner: str = ""
    burned: bool = False
    minted: datetime | None = None
    moved: datetime | None = None
    traits: dict[str, str | Decimal] = field(default_factory=dict)
    rank: int | None = None


@dataclass
class World:
    """The generated collection as the test knows it."""

    chain: ev.Chain
    contract: str
    collection_id: str
    tokens: dict[int, Tok]
    owners: list[str]

    def live(self) -> list[Tok]:
        return [t for t in self.tokens.values() if not t.burned]


def _block_time(chain: ev.Chain, block: int) -> datetime:
    return chain.epoch_start + timedelta(seconds=12 * block)


async def _build_world(api: Api, chain: ev.Chain, seed: int = 9) -> World:
    """37 tokens: mints four to a block (equal mint times), transfers in shared blocks, one burn, traits
    (Hat missing on some), a numeric Level, ranks with ties and a few unranked tokens."""
    rng = random.Random(seed)
    contract = ev.address()
    owners = [ev.address() for _ in range(4)]
    tokens = {n: Tok(n, owner=owners[n % 3]) for n in range(1, TOKENS + 1)}
    events = []
    for n, tok in tokens.items():
        block = 1 + n // 4
        events.append(chain.event("transfer", contract, n, ZERO, tok.owner, block=block, log=n))
        tok.minted = tok.moved = _block_time(chain, block)
    for n, tok in tokens.items():
        if n % 5 == 0:
            block = 50 + n // 10
            events.append(chain.event("transfer", contract, n, tok.owner, owners[3], block=block, log=n))
            tok.owner, tok.moved = owners[3], _block_time(chain, block)
    burn_block = 70
    events.append(chain.event("transfer", contract, 13, tokens[13].owner, ZERO, block=burn_block, log=0))
    tokens[13].burned, tokens[13].moved = True, _block_time(chain, burn_block)
    await api.repo.ingest(events)
    rows = await api.resources.pg.fetch(
        """SELECT t.id, t.token_number, t.collection_id FROM catalog.tokens t JOIN catalog.collections c
             ON c.id = t.collection_id WHERE c.chain_id = $1 AND c.contract_address = $2""", chain.caip2, contract)
    for row in rows:
        tokens[int(row["token_number"])].id = row["id"]
    collection_id = rows[0]["collection_id"]
    for tok in tokens.values():
        tok.traits["Background"] = rng.choice(["Red", "Blue", "Green", "Gold"])
        tok.traits["Eyes"] = rng.choice(["Laser", "Sleepy", "Wide"])
        if rng.random() < 0.6:
            tok.traits["Hat"] = rng.choice(["Cap", "Crown"])
        tok.traits["Level"] = Decimal(rng.randint(1, 10))
    ranked = [t for t in tokens.values() if not t.burned and t.number % 9 != 4]  # 4, 13, 22, 31 stay unranked
    scores = [Decimal(rng.randint(1, 12)) for _ in ranked]  # few distinct scores: many ties
    for tok, rank in zip(ranked, ranks_with_ties(scores), strict=True):
        tok.rank = rank
    async with api.resources.pg.acquire() as conn, conn.transaction():
        await write_traits(conn, collection_id, {t.id: t.traits for t in tokens.values()})
        await set_ranks(conn, {t.id: (s, t.rank) for t, s in zip(ranked, scores, strict=True)  # type: ignore[misc]
                               if t.rank is not None})
    return World(chain, contract, str(collection_id), tokens, owners)


@pytest_asyncio.fixture
async def world(api: Api, chain: ev.Chain) -> World:
    return await _build_world(api, chain)


# ------------------------------------------------------------------------------------------- helpers

SORTS: dict[int, Callable[[Sequence[Tok]], list[Tok]]] = {
    pb.TOKEN_SORT_TOKEN_NUMBER_ASC: lambda ts: sorted(ts, key=lambda t: t.number),
    pb.TOKEN_SORT_TOKEN_NUMBER_DESC: lambda ts: sorted(ts, key=lambda t: -t.number),
    pb.TOKEN_SORT_RARITY_ASC: lambda ts: (
        sorted([t for t in ts if t.rank is not None], key=lambda t: (t.rank, t.number))
        + sorted([t for t in ts if t.rank is None], key=lambda t: t.number)),
    pb.TOKEN_SORT_RARITY_DESC: lambda ts: (
        sorted([t for t in ts if t.rank is not None], key=lambda t: (t.rank, t.number), reverse=True)
        + sorted([t for t in ts if t.rank is None], key=lambda t: t.number)),
    pb.TOKEN_SORT_MINTED_AT_DESC: lambda ts: sorted(ts, key=lambda t: (t.minted, t.id), reverse=True),
    pb.TOKEN_SORT_TRANSFERRED_AT_DESC: lambda ts: sorted(ts, key=lambda t: (t.moved, t.id), reverse=True),
}


def _matches(tok: Tok, values: dict[str, set[str]], ranges: dict[str, tuple[Decimal | None, Decimal | None]],
             skip: str = "") -> bool:
    """Whether the token passes the filters (names lowercase), leaving out those on trait `skip`."""
    traits = {name.lower(): value for name, value in tok.traits.items()}
    for name, accepted in values.items():
        if name != skip and str(traits.get(name, "")).lower() not in accepted:
            return False
    for name, (low, high) in ranges.items():
        value = traits.get(name)
        if name == skip:
            continue
        if not isinstance(value, Decimal) or (low is not None and value < low) or (high is not None and value > high):
            return False
    return True


def _request_filters(values: dict[str, set[str]], ranges: dict[str, tuple[Decimal | None, Decimal | None]],
                     ) -> dict[str, Any]:
    """The filters as a client types them: names and values in other cases and with stray spaces."""
    return {
        "trait_filters": [pb.TraitFilter(name=f"  {name.upper()} ", values=[v.title() + " " for v in sorted(accepted)])
                          for name, accepted in values.items()],
        "numeric_filters": [pb.NumericTraitFilter(name=name.lower(), min="" if low is None else str(low),
                                                  max="" if high is None else str(high))
                            for name, (low, high) in ranges.items()],
    }


async def _all_pages(api: Api, request: pb.ListTokensRequest, size: int,
                     between: Callable[[int], Any] | None = None) -> tuple[list[pb.Token], list[int], int]:
    """Every page of a listing: the tokens, each page's total_size, and the number of pages."""
    served: list[pb.Token] = []
    totals: list[int] = []
    token, pages = "", 0
    while True:
        page_request = pb.ListTokensRequest()
        page_request.CopyFrom(request)
        page_request.page.CopyFrom(common_pb2.PageRequest(page_size=size, page_token=token))
        page = await api.stub.ListTokens(page_request)
        pages += 1
        assert len(page.tokens) <= size
        served += page.tokens
        totals.append(page.page.total_size)
        token = page.page.next_page_token
        if not token:
            return served, totals, pages
        assert len(page.tokens) == size, "only the last page may be short"
        if between is not None:
            await between(pages)


async def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details() or ""


FILTER_CASES: list[tuple[dict[str, set[str]], dict[str, tuple[Decimal | None, Decimal | None]]]] = [
    ({}, {}),
    ({"background": {"red", "blue"}}, {}),  # OR within one trait
    ({"background": {"red", "gold"}, "eyes": {"laser"}}, {}),  # AND across traits
    ({"hat": {"crown"}}, {}),  # a trait some tokens lack
    ({}, {"level": (Decimal(3), Decimal(7))}),  # inclusive numeric range
    ({"eyes": {"sleepy", "wide"}}, {"level": (None, Decimal(5))}),  # open lower bound, with a value filter
]


# --------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("sort", list(SORTS))
async def test_filtered_sorted_pages_return_exactly_the_matching_tokens_in_order(
        api: Api, world: World, sort: int) -> None:
    for values, ranges in FILTER_CASES:
        expected = SORTS[sort]([t for t in world.live() if _matches(t, values, ranges)])
        assert expected, f"the generated data should match {values} {ranges}"
        divisor = next((d for d in range(2, len(expected) + 1) if len(expected) % d == 0), len(expected))
        for size in sorted({3, divisor, len(expected), 100}):
            request = pb.ListTokensRequest(collection_id=world.collection_id, sort=sort,  # type: ignore[arg-type]
                                           **_request_filters(values, ranges))
            served, totals, pages = await _all_pages(api, request, size)
            assert [t.token_number for t in served] == [str(t.number) for t in expected], (values, ranges, size)
            assert totals == [len(expected)] * pages
            assert pages == max(1, -(-len(expected) // size)), "no empty trailing page when the size divides"


async def test_tokens_carry_their_columns_and_traits(api: Api, world: World) -> None:
    tok = next(t for t in world.live() if t.rank is not None and t.number % 5 == 0)
    page = await api.stub.ListTokens(pb.ListTokensRequest(collection_id=world.collection_id, query=str(tok.number)))
    (listed,) = page.tokens
    got = (await api.stub.GetToken(pb.GetTokenRequest(id=str(tok.id)))).token
    assert listed.id == got.id == str(tok.id)
    assert got.rarity_rank == tok.rank and got.owner_address == tok.owner == world.owners[3]
    assert got.last_transferred_at.ToDatetime().replace(tzinfo=tok.moved.tzinfo) == tok.moved  # type: ignore[union-attr]
    assert got.minted_at.ToDatetime().replace(tzinfo=tok.minted.tzinfo) == tok.minted  # type: ignore[union-attr]
    assert got.metadata_status == pb.METADATA_STATUS_PENDING
    traits = {t.trait_name: t for t in got.traits}
    assert {n: (t.value_number or t.value) for n, t in traits.items()} == {
        n: (format(v, "f") if isinstance(v, Decimal) else v) for n, v in tok.traits.items()}
    assert traits["Level"].counted is False and traits["Background"].counted is True
    counts = Counter(str(t.traits["Background"]) for t in world.tokens.values())
    assert traits["Background"].occurrences == counts[str(tok.traits["Background"])]

    ids = [str(t.id) for t in list(world.tokens.values())[:10]] + [str(uuid.uuid4())]
    batch = await api.stub.BatchGetTokens(pb.BatchGetTokensRequest(ids=ids))
    assert sorted(t.id for t in batch.tokens) == sorted(ids[:10])
    assert all(len(t.traits) == len(world.tokens[int(t.token_number)].traits) for t in batch.tokens)
    by_number = {int(t.token_number): t for t in batch.tokens}
    assert all(by_number[n].burned == world.tokens[n].burned for n in by_number)


async def test_pages_neither_skip_nor_repeat_while_transfers_arrive(api: Api, world: World) -> None:
    newcomer = ev.address()
    moved: set[int] = set()
    block = iter(range(200, 400))
    # alternately from both ends of the number order, so moves land on served and on unserved pages
    candidates = itertools.cycle([n for pair in zip(range(2, TOKENS + 1, 2), range(TOKENS, 1, -2), strict=False)
                                  for n in pair if not world.tokens[n].burned])

    async def transfer_some(page: int) -> None:
        batch = []
        while len(batch) < 2:
            n = next(candidates)
            tok = world.tokens[n]
            b = next(block)
            batch.append(world.chain.event("transfer", world.contract, n, tok.owner, newcomer, block=b, log=0))
            tok.owner, tok.moved = newcomer, _block_time(world.chain, b)
            moved.add(n)
        await api.repo.ingest(batch)

    # sort keys that transfers do not touch: the listing is exact, page after page
    for sort in (pb.TOKEN_SORT_TOKEN_NUMBER_ASC, pb.TOKEN_SORT_RARITY_DESC):
        before = SORTS[sort](world.live())
        served, _, _ = await _all_pages(api, pb.ListTokensRequest(collection_id=world.collection_id, sort=sort),
                                        4, transfer_some)
        assert [t.token_number for t in served] == [str(t.number) for t in before]
        assert all(t.owner_address == world.tokens[int(t.token_number)].owner for t in served[-4:])

    # newest transfer first: tokens whose key stayed put come exactly once, in order; moved ones jump to the
    # front, which was already served, so they may be missing but never doubled
    moved.clear()
    served, _, _ = await _all_pages(
        api, pb.ListTokensRequest(collection_id=world.collection_id, sort=pb.TOKEN_SORT_TRANSFERRED_AT_DESC),
        5, transfer_some)
    numbers = [int(t.token_number) for t in served]
    assert len(numbers) == len(set(numbers))
    jumped = set(moved)
    assert jumped, "transfers must have happened during the listing"
    stayed = SORTS[pb.TOKEN_SORT_TRANSFERRED_AT_DESC]([t for t in world.live() if t.number not in jumped])
    assert [n for n in numbers if n not in jumped] == [t.number for t in stayed]

    # an owner's tokens across their wallets, after all of that
    mine = await api.stub.ListTokens(pb.ListTokensRequest(
        owner_addresses=[newcomer.upper().replace("0X", "0x"), world.owners[0]],
        page=common_pb2.PageRequest(page_size=100)))
    expected = sorted(t.number for t in world.live() if t.owner in (newcomer, world.owners[0]))
    assert [int(t.token_number) for t in mine.tokens] == expected and mine.page.total_size == len(expected)


async def test_facets_count_values_under_the_other_traits_filters(api: Api, world: World) -> None:
    names = {"Background", "Eyes", "Hat", "Level"}
    plain = await api.stub.ListTraits(pb.ListTraitsRequest(collection_id=world.collection_id))
    assert {t.name for t in plain.traits} == names
    everyone = list(world.tokens.values())
    for trait in plain.traits:
        counts = Counter(str(t.traits[trait.name]) if not isinstance(t.traits.get(trait.name), Decimal)
                         else format(t.traits[trait.name], "f") for t in everyone if trait.name in t.traits)
        assert {v.value_string: v.occurrences for v in trait.values} == dict(counts)
        assert all(v.filtered_count == v.occurrences for v in trait.values)
        assert [v.occurrences for v in trait.values] == sorted((v.occurrences for v in trait.values), reverse=True)
        assert trait.null_occurrences == sum(1 for t in everyone if trait.name not in t.traits)
        if trait.name == "Level":
            levels = [t.traits["Level"] for t in everyone]
            assert trait.value_type == pb.TRAIT_VALUE_TYPE_NUMBER
            assert (Decimal(trait.min_value), Decimal(trait.max_value)) == (min(levels), max(levels))
        else:
            assert trait.min_value == trait.max_value == ""

    cases = [*FILTER_CASES[1:], ({"background": {"red"}, "hat": {"cap", "crown"}}, {"level": (Decimal(2), None)})]
    for owner in ("", world.owners[1]):
        for values, ranges in cases + [({}, {})] * bool(owner):
            facets = await api.stub.ListTraits(pb.ListTraitsRequest(
                collection_id=world.collection_id, owner_address=owner, **_request_filters(values, ranges)))
            for trait in facets.traits:
                key = trait.name.lower()
                pool = [t for t in world.live() if _matches(t, values, ranges, skip=key)
                        and (not owner or t.owner == owner)]
                for value in trait.values:
                    expected = sum(1 for t in pool if key in {k.lower() for k in t.traits}
                                   and (format(t.traits[trait.name], "f") if isinstance(t.traits[trait.name], Decimal)
                                        else t.traits[trait.name]) == value.value_string)
                    assert value.filtered_count == expected, (owner, values, ranges, trait.name, value.value_string)

    # a filter on a value nobody has: its own trait still counts under the other filters, the rest is zero
    nobody = await api.stub.ListTraits(pb.ListTraitsRequest(
        collection_id=world.collection_id, trait_filters=[pb.TraitFilter(name="Eyes", values=["Closed"])]))
    for trait in nobody.traits:
        for value in trait.values:
            live = sum(1 for t in world.live() if str(t.traits.get(trait.name, "")) == value.value_string
                       or (isinstance(t.traits.get(trait.name), Decimal)
                           and format(t.traits[trait.name], "f") == value.value_string))
            assert value.filtered_count == (live if trait.name == "Eyes" else 0)
    empty = await api.stub.ListTokens(pb.ListTokensRequest(
        collection_id=world.collection_id, trait_filters=[pb.TraitFilter(name="Eyes", values=["Closed"])]))
    assert not empty.tokens and empty.page.total_size == 0


async def test_last_transfer_time_follows_reorgs(api: Api, chain: ev.Chain) -> None:
    contract, alice, bob, carol = ev.address(), ev.address(), ev.address(), ev.address()
    await api.repo.ingest([chain.event("transfer", contract, 1, ZERO, alice, block=3),
                           chain.event("transfer", contract, 1, alice, bob, block=8),
                           chain.event("transfer", contract, 1, bob, carol, block=12, log=2)])

    async def token() -> pb.Token:
        return (await api.stub.GetToken(pb.GetTokenRequest(key=pb.TokenKey(contract=common_pb2.ContractRef(
            chain=common_pb2.ChainRef(caip2=chain.caip2), address=contract), token_number="1")))).token

    def seconds(block: int) -> int:
        return int(_block_time(chain, block).timestamp())

    assert ((await token()).last_transferred_at.seconds, (await token()).owner_address) == (seconds(12), carol)
    await api.repo.ingest([chain.event("retraction", contract, 1, bob, carol, block=12, log=2, epoch=1)])
    assert ((await token()).last_transferred_at.seconds, (await token()).owner_address) == (seconds(8), bob)
    await api.repo.ingest([chain.event("transfer", contract, 1, bob, alice, block=13, epoch=1)])
    assert (await token()).last_transferred_at.seconds == seconds(13)


async def test_collections_list_filters_sorts_and_pages(api: Api, chain: ev.Chain) -> None:
    tag = uuid.uuid4().hex[:6]
    creator = ev.address()
    made = []
    for i, name in enumerate(["Delta", "Alpha", "Charlie", "Bravo", "Echo"]):
        contract = ev.address()
        response = await api.stub.RegisterCollection(pb.RegisterCollectionRequest(
            contract=common_pb2.ContractRef(chain=common_pb2.ChainRef(caip2=chain.caip2), address=contract),
            name=f"{name} {tag}",
            standard=common_pb2.TOKEN_STANDARD_ERC1155 if i == 4 else common_pb2.TOKEN_STANDARD_ERC721,
            creator=creator if i % 2 else ""))
        made.append((response.collection, contract))
    holders = [ev.address() for _ in range(4)]
    items = {0: 3, 1: 5, 2: 1, 3: 5}  # two collections tie on items
    events = [chain.event("transfer", contract, n, ZERO, holders[n % (i + 1)], block=i + 1, log=n)
              for i, (_, contract) in enumerate(made[:4]) for n in range(items[i])]
    await api.repo.ingest(events)
    await api.resources.pg.execute("UPDATE catalog.collections SET is_verified = true WHERE id = $1",
                                   uuid.UUID(made[2][0].id))
    await api.resources.pg.execute(
        """INSERT INTO catalog.collections (slug, name, chain_id, contract_address, status)
           VALUES ($1, $2, $3, $4, 'pending')""", f"pending-{tag}", f"Pending {tag}", chain.caip2, ev.address())
    scope = common_pb2.ChainRef(caip2=chain.caip2)

    async def listing(size: int, **kw: Any) -> list[str]:
        names, token, totals = [], "", set()
        while True:
            page = await api.stub.ListCollections(pb.ListCollectionsRequest(
                chain=scope, page=common_pb2.PageRequest(page_size=size, page_token=token), **kw))
            names += [c.name.split()[0] for c in page.collections]
            totals.add(page.page.total_size)
            token = page.page.next_page_token
            if not token:
                assert totals == {len(names)}, "every page carries the exact number of matching collections"
                return names

    batch_stats = await api.stub.BatchGetCollectionStats(pb.BatchGetCollectionStatsRequest(
        collection_ids=[m[0].id for m in made] + [str(uuid.uuid4())]))
    by_id = {s.collection_id: s for s in batch_stats.stats}
    assert len(batch_stats.stats) == len(made)
    rows = [(c.name.split()[0], c, by_id[c.id]) for c, _ in made]
    assert {r[0]: r[2].items_count for r in rows} == {"Delta": 3, "Alpha": 5, "Charlie": 1, "Bravo": 5, "Echo": 0}
    assert {r[0]: r[2].owners_count for r in rows} == {r[0]: len({holders[n % (i + 1)] for n in range(items.get(i, 0))})
                                                       for i, r in enumerate(rows)}
    newest = [r[0] for r in sorted(rows, key=lambda r: (r[1].created_at.ToDatetime(), uuid.UUID(r[1].id)),
                                   reverse=True)]
    for size in (2, 5):
        assert await listing(size) == newest
        assert await listing(size, sort=pb.COLLECTION_SORT_NAME_ASC) == sorted(r[0] for r in rows)
        assert await listing(size, sort=pb.COLLECTION_SORT_ITEMS_DESC) == [
            r[0] for r in sorted(rows, key=lambda r: (r[2].items_count, uuid.UUID(r[1].id)), reverse=True)]
        assert await listing(size, sort=pb.COLLECTION_SORT_OWNERS_DESC) == [
            r[0] for r in sorted(rows, key=lambda r: (r[2].owners_count, uuid.UUID(r[1].id)), reverse=True)]
    assert await listing(2, creator=creator) == [n for n in newest if n in ("Alpha", "Bravo")]
    assert await listing(2, verified_only=True) == ["Charlie"]
    assert await listing(2, standard=common_pb2.TOKEN_STANDARD_ERC1155) == ["Echo"]
    assert await listing(2, query="HARL") == ["Charlie"]
    assert await listing(2, query="%") == [], "LIKE wildcards in a query are literal"
    assert await listing(2, statuses=[pb.COLLECTION_STATUS_PENDING]) == ["Pending"]
    assert sorted(await listing(3, statuses=[pb.COLLECTION_STATUS_PENDING, pb.COLLECTION_STATUS_LIVE])) == sorted(
        [*newest, "Pending"])

    slug = made[1][0].slug
    by_slug = await api.stub.GetCollectionBySlug(pb.GetCollectionBySlugRequest(slug=slug.upper()))
    assert by_slug.collection == (await api.stub.GetCollection(pb.GetCollectionRequest(id=made[1][0].id))).collection
    batch = await api.stub.BatchGetCollections(pb.BatchGetCollectionsRequest(
        ids=[made[0][0].id, made[3][0].id, str(uuid.uuid4()), made[0][0].id]))
    assert sorted(c.id for c in batch.collections) == sorted([made[0][0].id, made[3][0].id])
    assert (await _code(api.stub.GetCollectionBySlug(pb.GetCollectionBySlugRequest(slug=f"nope-{tag}"))))[0] == \
        grpc.StatusCode.NOT_FOUND


async def test_bad_requests_get_clear_invalid_argument_errors(api: Api, world: World) -> None:
    cid = world.collection_id
    first = await api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, sort=pb.TOKEN_SORT_RARITY_ASC,
                                                           page=common_pb2.PageRequest(page_size=2)))
    cases: list[tuple[Any, str]] = [
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id="not-a-uuid")), "collection_id must be a UUID"),
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, sort=pb.TOKEN_SORT_PRICE_ASC)), "not supported"),
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, sort=99)), "not a TokenSort"),  # type: ignore[arg-type]
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, numeric_filters=[
            pb.NumericTraitFilter(name="level", min="7", max="3")])), "greater than max"),
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, numeric_filters=[
            pb.NumericTraitFilter(name="level", min="seven")])), "must be a decimal number"),
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, numeric_filters=[
            pb.NumericTraitFilter(name="level", max="NaN")])), "finite"),
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, trait_filters=[
            pb.TraitFilter(name="eyes", values=[" "])])), "at least one non-empty value"),
        (api.stub.ListTokens(pb.ListTokensRequest(owner_addresses=[ev.address() for _ in range(51)])), "at most 50"),
        (api.stub.ListTokens(pb.ListTokensRequest(owner_addresses=["0x12"])), "owner_addresses[0]"),
        (api.stub.ListTokens(pb.ListTokensRequest(owner_address=world.owners[0], trait_filters=[
            pb.TraitFilter(name="eyes", values=["laser"])])), "require collection_id"),
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, sort=pb.TOKEN_SORT_TOKEN_NUMBER_ASC,
                                                  page=common_pb2.PageRequest(page_token=first.page.next_page_token))),
         "different request"),
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, sort=pb.TOKEN_SORT_RARITY_ASC, trait_filters=[
            pb.TraitFilter(name="eyes", values=["laser"])], page=common_pb2.PageRequest(
                page_token=first.page.next_page_token))), "different request"),
        (api.stub.ListTokens(pb.ListTokensRequest(collection_id=cid, page=common_pb2.PageRequest(page_token="!!"))),
         "page token"),
        (api.stub.BatchGetTokens(pb.BatchGetTokensRequest(ids=[str(uuid.uuid4()) for _ in range(101)])),
         "at most 100"),
        (api.stub.BatchGetTokens(pb.BatchGetTokensRequest(ids=[str(uuid.uuid4()), "x"])), "ids[1] must be a UUID"),
        (api.stub.BatchGetCollections(pb.BatchGetCollectionsRequest(ids=["x"])), "ids[0] must be a UUID"),
        (api.stub.BatchGetCollectionStats(pb.BatchGetCollectionStatsRequest(
            collection_ids=[str(uuid.uuid4())] * 101)), "at most 100"),
        (api.stub.ListTraits(pb.ListTraitsRequest(collection_id="x")), "collection_id must be a UUID"),
        (api.stub.ListTraits(pb.ListTraitsRequest(collection_id=cid, numeric_filters=[
            pb.NumericTraitFilter(name="level")])), "needs a min, a max or both"),
        (api.stub.ListCollections(pb.ListCollectionsRequest(sort=42)), "not a CollectionSort"),  # type: ignore[arg-type]
        (api.stub.ListCollections(pb.ListCollectionsRequest(creator="bob")), "creator must be"),
        (api.stub.ListCollections(pb.ListCollectionsRequest(chain=common_pb2.ChainRef(caip2="solana:1"))), "CAIP-2"),
        (api.stub.GetCollectionBySlug(pb.GetCollectionBySlugRequest()), "slug is required"),
    ]
    for call, fragment in cases:
        code, details = await _code(call)
        assert (code, fragment in details) == (grpc.StatusCode.INVALID_ARGUMENT, True), (fragment, details)
    code, details = await _code(api.stub.ListCollections(pb.ListCollectionsRequest(creator_user_id=str(uuid.uuid4()))))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "creator address" in details
    missing = await _code(api.stub.ListTraits(pb.ListTraitsRequest(collection_id=str(uuid.uuid4()))))
    assert missing[0] == grpc.StatusCode.NOT_FOUND


async def test_token_detail_explains_its_rarity_score(api: Api, world: World) -> None:
    # rank the collection the way the rarity worker does once metadata is in
    await api.resources.pg.execute("UPDATE catalog.tokens SET metadata_status = 'ok' WHERE collection_id = $1",
                         uuid.UUID(world.collection_id))
    async with api.resources.pg.acquire() as conn:
        await rarity.recompute(conn, uuid.UUID(world.collection_id))
    for tok in [world.tokens[n] for n in (1, 2, 3, 13)]:
        got = (await api.stub.GetToken(pb.GetTokenRequest(id=str(tok.id)))).token
        lines = {line.trait_name: line for line in got.rarity_explanation}
        if tok.burned:
            assert got.rarity_rank == 0 and not any(line.missing for line in got.rarity_explanation)
            continue
        assert got.rarity_rank >= 1
        assert sum(Decimal(line.rarity_score) for line in got.rarity_explanation if line.counted) == Decimal(
            got.rarity_score)
        assert {n for n, line in lines.items() if line.counted and not line.meta} == {"Background", "Eyes", "Hat"}
        assert lines["Hat"].missing == ("Hat" not in tok.traits)
        assert not lines["Level"].counted and lines["Level"].value_number == format(tok.traits["Level"], "f")
        assert [line.meta for line in got.rarity_explanation].count(True) == 1
    listed = await api.stub.ListTokens(pb.ListTokensRequest(collection_id=world.collection_id,
                                                            sort=pb.TOKEN_SORT_RARITY_ASC))
    ranks = [t.rarity_rank for t in listed.tokens]
    assert ranks == sorted(ranks) and not listed.tokens[0].rarity_explanation, "lists carry no explanation"

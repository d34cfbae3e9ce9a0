"""Read side of the catalog API: tokens, activities and stats, as keyset-paged protobuf responses.

SQL is assembled from fixed fragments with every value bound as a parameter; the fragment set is chosen
by which filters a request uses, so each shape is served by one of the catalog's indexes.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.common.v1 import common_pb2
from mintplane.catalog import token_filters as filters
from mintplane.catalog import views
from mintplane.catalog.keyset import Key, Params, Segment, decode_cursor, encode_cursor
from mintplane.catalog.keyset import page as keyset_page
from mintplane.catalog.repository import CatalogRepository
from mintplane.common.errors import InvalidArgument, NotFound
from mintplane.common.pagination import decode_key_token, encode_key_token, page_size

_CAIP2 = re.compile(r"^eip155:[1-9][0-9]{0,18}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UINT = re.compile(r"^(0|[1-9][0-9]{0,77})$")

MAX_BATCH = 100

_NFT_COLUMNS = """t.id, t.collection_id, t.chain_id, t.contract_address, t.token_number, t.token_standard, t.name,
    t.image_url, t.metadata_url, t.owner_address, t.burned, t.minted_at, t.description, t.animation_url,
    t.external_url, t.metadata_status, t.metadata_error, t.metadata_fetched_at, t.last_transfer_at,
    t.rarity_score, t.rarity_rank, (SELECT min(l.price_native) FROM catalog.listings l
                                     WHERE l.token_id = t.id AND l.is_active) AS best_listing_price"""
_TRAITS = """
SELECT k.token_id, tr.id AS trait_id, tr.name AS trait_name, v.id AS trait_value_id, v.value_string AS value,
       tr.display_type, tr.value_type, tr.is_meta, v.value_number, v.occurrences, v.rarity_score
  FROM catalog.token_trait_links k
  JOIN catalog.traits tr ON tr.id = k.trait_id
  JOIN catalog.trait_values v ON v.id = k.trait_value_id
 WHERE k.token_id = ANY($1::uuid[])
 ORDER BY k.token_id, tr.is_meta, tr.sort_order NULLS LAST, tr.normalized_name
"""
_COUNT_TEMPLATE = "SELECT count(*) FROM catalog.tokens t WHERE {where}"
_ITEMS_COUNT = "SELECT items_count FROM catalog.collection_stats WHERE collection_id = $1"
_NUMBER = (Key("length(t.token_number)", "int"), Key("t.token_number", "text"))
_COLLECTION = (Key("t.collection_id", "uuid"),)
_RANK = Key("t.rarity_rank", "int")
_ID = Key("t.id", "uuid")
_SUPPORTED_SORTS = (pb.TOKEN_SORT_TOKEN_NUMBER_ASC, pb.TOKEN_SORT_TOKEN_NUMBER_DESC, pb.TOKEN_SORT_RARITY_ASC,
                    pb.TOKEN_SORT_RARITY_DESC, pb.TOKEN_SORT_MINTED_AT_DESC, pb.TOKEN_SORT_TRANSFERRED_AT_DESC)


# Relative costs in row fetches (about four buffers each): a filter probe is a primary-key descent into
# token_trait_links, as dear as a row; posting-list entries are read in index order, a tenth of that, and
# hashing another filter's list costs half again. Checked with bench/catalog_browse.py at 100k tokens.
PROBE_COST = 1.0
POSTING_ENTRY_COST = 0.1
HASHED_ENTRY_COST = 0.05


def _gather_first(resolved: filters.Resolved, limit: int, counting: bool) -> bool:
    """Whether to start from the shortest posting list rather than walk the sort index (see list_tokens).

    Walking visits about (limit + 1) / selectivity tokens, each probed once per filter, and a first page of
    several filters pays for its total separately (`counting`); gathering reads the shortest posting list,
    hashes the others' once, and fetches and sorts the expected matches, counting them on the way.
    Estimates come from ``occurrences``; a wrong guess costs time, never correctness.
    """
    share = resolved.selectivity()
    postings = sorted(f.postings for f in resolved.filters)
    lists = POSTING_ENTRY_COST * postings[0] + HASHED_ENTRY_COST * sum(postings[1:])
    walk = (limit + 1) / max(share, 1e-9) * (1 + PROBE_COST * len(postings))
    if counting and len(postings) > 1:
        walk += lists
    return lists + resolved.items * share < walk


def token_segments(sort: int, scoped: bool) -> list[Segment]:
    """The index-order segments of a token sort (see :mod:`mintplane.catalog.keyset`).

    `scoped`: the request names one collection, whose id is then constant and left out of the keys (a row
    comparison must follow the index's columns). Each segment's last key is unique inside the scope.
    Token numbers sort numerically as (length, text); ranks and times put tokens without one last.
    """
    number = _NUMBER if scoped else _COLLECTION + _NUMBER
    if sort == pb.TOKEN_SORT_TOKEN_NUMBER_ASC:
        return [Segment(number)]
    if sort == pb.TOKEN_SORT_TOKEN_NUMBER_DESC:
        return [Segment(number, descending=True)]
    if sort in (pb.TOKEN_SORT_RARITY_ASC, pb.TOKEN_SORT_RARITY_DESC):
        return [Segment((_RANK, *number), descending=sort == pb.TOKEN_SORT_RARITY_DESC,
                        where="t.rarity_rank IS NOT NULL"),
                Segment(number, where="t.rarity_rank IS NULL")]
    column = "t.minted_at" if sort == pb.TOKEN_SORT_MINTED_AT_DESC else "t.last_transfer_at"
    return [Segment((Key(column, "ts", nulls_last=True), _ID), descending=True, where=f"{column} IS NOT NULL"),
            Segment((_ID,), descending=True, where=f"{column} IS NULL")]


def uuid_of(value: str, field: str, *, required: bool = True) -> UUID | None:
    if not value:
        if required:
            raise InvalidArgument(f"{field} is required")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{field} must be a UUID") from None


def chain_of(ref: common_pb2.ChainRef, field: str) -> str:
    if not ref.caip2:
        raise InvalidArgument(f"{field} is required")
    if not _CAIP2.match(ref.caip2):
        raise InvalidArgument(f"{field} must be a CAIP-2 id like eip155:1, got {ref.caip2!r}")
    return ref.caip2


def address_of(value: str, field: str, *, required: bool = False) -> str | None:
    if not value:
        if required:
            raise InvalidArgument(f"{field} is required")
        return None
    if not _ADDRESS.match(value):
        raise InvalidArgument(f"{field} must be a 0x-prefixed 20-byte hex address")
    return value.lower()


def contract_of(ref: common_pb2.ContractRef, field: str) -> tuple[str, str]:
    chain = chain_of(ref.chain, f"{field}.chain.caip2")
    address = address_of(ref.address, f"{field}.address", required=True)
    assert address is not None
    return chain, address


def _instant(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgument("page.page_token is not a page token issued by this service") from None


class _Where:
    """WHERE clause fragments with positional parameters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "TRUE"


def uuids_of(values: Sequence[str], field: str) -> list[UUID]:
    """Up to MAX_BATCH ids of a batch get, deduplicated; INVALID_ARGUMENT names the first bad one."""
    if len(values) > MAX_BATCH:
        raise InvalidArgument(f"{field} holds {len(values)} ids; at most {MAX_BATCH} per call")
    ids: set[UUID] = set()
    for i, value in enumerate(values):
        try:
            ids.add(uuid.UUID(value))
        except ValueError:
            raise InvalidArgument(f"{field}[{i}] must be a UUID, got {value[:50]!r}") from None
    return sorted(ids)


class CatalogQueries:
    def __init__(self, repository: CatalogRepository) -> None:
        self._repo = repository

    @property
    def repository(self) -> CatalogRepository:
        return self._repo

    async def _traits(self, token_ids: Sequence[UUID]) -> dict[UUID, list[Any]]:
        grouped: dict[UUID, list[Any]] = defaultdict(list)
        if token_ids:
            for row in await self._repo.fetch(_TRAITS, list(token_ids)):
                grouped[row["token_id"]].append(row)
        return grouped

    async def _tokens(self, rows: Sequence[Any]) -> list[pb.Token]:
        traits = await self._traits([r["id"] for r in rows])
        return [views.token(r, traits.get(r["id"], [])) for r in rows]

    async def get_token(self, request: pb.GetTokenRequest) -> pb.GetTokenResponse:
        target = request.WhichOneof("target")
        if target == "id":
            token_id = uuid_of(request.id, "id")
            rows = await self._repo.fetch(f"SELECT {_NFT_COLUMNS} FROM catalog.tokens t WHERE t.id = $1",  # noqa: S608
                                          token_id)
            label = request.id
        elif target == "key":
            chain, address = contract_of(request.key.contract, "key.contract")
            number = request.key.token_number
            if not _UINT.match(number):
                raise InvalidArgument("key.token_number must be a base-10 uint256")
            rows = await self._repo.fetch(
                f"""SELECT {_NFT_COLUMNS} FROM catalog.tokens t
                     WHERE t.collection_id = (SELECT id FROM catalog.collections
                                               WHERE chain_id = $1 AND contract_address = $2)
                       AND t.token_number = $3""",  # noqa: S608
                chain, address, number,
            )
            label = f"{chain}/{address}/{number}"
        else:
            raise InvalidArgument("one of id and key is required")
        if not rows:
            raise NotFound(f"token {label} not found")
        (token,) = await self._tokens(rows)
        explained = await self._repo.rarity_explanation([rows[0]["id"]])
        token.rarity_explanation.extend(views.explained_trait(line) for line in explained.get(rows[0]["id"], []))
        return pb.GetTokenResponse(token=token)

    async def batch_get_tokens(self, request: pb.BatchGetTokensRequest) -> pb.BatchGetTokensResponse:
        ids = uuids_of(request.ids, "ids")
        if not ids:
            return pb.BatchGetTokensResponse()
        rows = await self._repo.fetch(
            f"SELECT {_NFT_COLUMNS} FROM catalog.tokens t WHERE t.id = ANY($1::uuid[])", ids)  # noqa: S608
        return pb.BatchGetTokensResponse(tokens=await self._tokens(rows))

    async def list_tokens(self, request: pb.ListTokensRequest) -> pb.ListTokensResponse:
        collection_id = uuid_of(request.collection_id, "collection_id", required=False)
        owners = filters.owners(request.owner_address, request.owner_addresses)
        if collection_id is None and not owners:
            raise InvalidArgument("at least one of collection_id, owner_address and owner_addresses must be set")
        values, ranges = filters.parse(request.trait_filters, request.numeric_filters)
        if (values or ranges) and collection_id is None:
            raise InvalidArgument("trait_filters and numeric_filters require collection_id")
        sort = request.sort or pb.TOKEN_SORT_TOKEN_NUMBER_ASC
        if sort not in _SUPPORTED_SORTS:
            if sort in pb.TokenSort.values():
                raise InvalidArgument(f"sort {pb.TokenSort.Name(sort)} is not supported yet (it needs marketplace "
                                      "listings); use token number, rarity, minted or transferred order")
            raise InvalidArgument(f"sort {sort} is not a TokenSort value")
        query = filters.query_text(request.query)
        limit = page_size(request.page.page_size)
        segments = token_segments(sort, scoped=collection_id is not None)
        fingerprint = ["tokens", str(collection_id), owners, request.include_burned, request.listed_only, query,
                       filters.fingerprint(values, ranges), sort]
        cursor = decode_cursor(request.page.page_token, fingerprint, segments)
        if cursor is not None and (isinstance(cursor.carried, bool) or not isinstance(cursor.carried, int)):
            raise InvalidArgument("page.page_token is not a page token issued by this service")
        resolved = (await filters.resolve(self._repo.fetch, collection_id, values, ranges)
                    if collection_id is not None else filters.Resolved())
        if resolved.impossible:
            return pb.ListTokensResponse(page=common_pb2.PageResponse(total_size=0))
        p = Params()
        scope = filters.Scope(collection_id, tuple(owners), request.include_burned, request.listed_only, query)
        where = filters.token_conditions(p, scope, resolved)
        source, cte, extra_column = "catalog.tokens t", "", ""
        if resolved.filters and not owners and _gather_first(resolved, limit, counting=cursor is None):
            # few matches: read them from the shortest posting list (probed for the other filters) once, then
            # sort just those; the first page counts them in the same statement
            p = Params()
            cte = f"f AS MATERIALIZED ({filters.matching(p, resolved.filters)})"
            source = "f JOIN catalog.tokens t ON t.id = f.token_id"
            where = filters.base_conditions(p, scope)
            if cursor is None and scope.whole_collection:  # burned ones from their partial index, no row reads
                assert collection_id is not None
                extra_column = (f"(SELECT count(*) FROM f WHERE "  # noqa: S608
                               f"{filters.not_burned(p, collection_id, 'f.token_id')}) AS _total")
            elif cursor is None:
                extra_column = (f"(SELECT count(*) FROM f JOIN catalog.tokens t ON t.id = f.token_id "  # noqa: S608
                               f"WHERE {' AND '.join(where)}) AS _total")
        rows, last_segment = await keyset_page(self._repo.fetch, select=_NFT_COLUMNS, source=source,
                                               where=where, params=p, segments=segments, cursor=cursor,
                                               limit=limit, cte=cte, extra_column=extra_column)
        if cursor is not None:
            total = cursor.carried
        elif extra_column and rows and rows[0].get("_total") is not None:
            total = int(rows[0]["_total"])
        elif extra_column and not rows:
            total = 0
        else:
            total = await self._count(scope, resolved)
        token = ("" if last_segment is None
                 else encode_cursor(last_segment, rows[-1], segments, fingerprint, total))
        return pb.ListTokensResponse(tokens=await self._tokens(rows),
                                     page=common_pb2.PageResponse(next_page_token=token, total_size=total))

    async def _count(self, scope: filters.Scope, resolved: filters.Resolved) -> int:
        """The exact number of matching tokens, the cheapest way the request's filters allow.

        A whole collection's unburned tokens are its items_count (ingestion recounts it in the transaction
        that moves them); trait filters alone are their posting lists' intersection, less the burned
        tokens in it (a partial index holds those); anything else is counted over the token rows.
        """
        p = Params()
        if scope.whole_collection and not resolved.filters:
            return int(await self._repo.fetchval(_ITEMS_COUNT, scope.collection_id) or 0)
        burned_too = filters.Scope(scope.collection_id, include_burned=True)
        if resolved.filters and (scope.whole_collection or scope == burned_too):
            if len(resolved.filters) == 1:
                # one trait's values: occurrences counts exactly the tokens carrying them (one value per trait)
                matches = f"{p(resolved.filters[0].postings)}::bigint"
            else:
                matches = f"(SELECT count(*) FROM ({filters.matching(p, resolved.filters)}) AS f)"  # noqa: S608
            if scope.include_burned and len(resolved.filters) == 1:
                return resolved.filters[0].postings
            if scope.include_burned:
                return int(await self._repo.fetchval(f"SELECT {matches}", *p.args))
            burned = " AND ".join(filters.token_conditions(p, burned_too, resolved))
            statement = (f"SELECT {matches} - (SELECT count(*) FROM catalog.tokens t "  # noqa: S608
                         f"WHERE t.burned AND {burned})")
            return int(await self._repo.fetchval(statement, *p.args))
        where = filters.token_conditions(p, scope, resolved)
        return int(await self._repo.fetchval(_COUNT_TEMPLATE.format(where=" AND ".join(where)), *p.args))

    async def list_activities(self, request: pb.ListActivitiesRequest) -> pb.ListActivitiesResponse:
        token_id = uuid_of(request.token_id, "token_id", required=False)
        collection_id = uuid_of(request.collection_id, "collection_id", required=False)
        address = address_of(request.address, "address")
        if token_id is None and collection_id is None and address is None:
            raise InvalidArgument("at least one of token_id, collection_id and address must be set")
        kinds = sorted({views.ACTIVITY_NAMES[t] for t in request.activity_types if t in views.ACTIVITY_NAMES})
        if len(kinds) != len(set(request.activity_types)):
            raise InvalidArgument("activity_types holds an unknown or unspecified type")
        where = _Where()
        if token_id is not None:
            where.add(f"a.token_id = {where.param(token_id)}")
        if collection_id is not None:
            where.add(f"a.collection_id = {where.param(collection_id)}")
        if address is not None:
            p = where.param(address)
            where.add(f"(a.from_address = {p} OR a.to_address = {p})")
        if kinds:
            where.add(f"a.type = ANY({where.param(kinds)}::text[])")
        params = ["activities", str(token_id), str(collection_id), address, kinds]
        limit = page_size(request.page.page_size)
        key = decode_key_token(request.page.page_token, params, 2)
        if key is not None:
            where.add(f'(a."timestamp", a.id) < ({where.param(_instant(key[0]))}::timestamptz, '
                      f"{where.param(uuid_of(str(key[1]), 'page_token'))}::uuid)")
        limit_param = where.param(limit + 1)
        rows = await self._repo.fetch(
            f"""SELECT a.id, a.token_id, coalesce(a.collection_id, t.collection_id) AS collection_id, a.type,
                       a.from_address, a.to_address, a.price_native, a.tx_hash, a."timestamp"
                  FROM catalog.activities a JOIN catalog.tokens t ON t.id = a.token_id
                 WHERE {where.sql()} ORDER BY a."timestamp" DESC, a.id DESC LIMIT {limit_param}""",  # noqa: S608
            *where.args,
        )
        page = rows[:limit]
        token = ""
        if len(rows) > limit:
            token = encode_key_token([page[-1]["timestamp"].isoformat(), str(page[-1]["id"])], params)
        return pb.ListActivitiesResponse(activities=[views.activity(r) for r in page],
                                         page=common_pb2.PageResponse(next_page_token=token))

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
from mintplane.catalog import views
from mintplane.catalog.repository import CatalogRepository
from mintplane.common.errors import InvalidArgument, NotFound
from mintplane.common.pagination import decode_key_token, encode_key_token, page_size

_CAIP2 = re.compile(r"^eip155:[1-9][0-9]{0,18}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UINT = re.compile(r"^(0|[1-9][0-9]{0,77})$")

_NFT_COLUMNS = """t.id, t.collection_id, t.chain_id, t.contract_address, t.token_number, t.token_standard, t.name,
    t.image_url, t.metadata_url, t.owner_address, t.burned, t.minted_at,
    (SELECT min(l.price_native) FROM catalog.listings l WHERE l.token_id = t.id AND l.is_active) AS best_listing_price,
    (SELECT sum(v.rarity_score) FROM catalog.token_trait_links k JOIN catalog.trait_values v ON v.id = k.trait_value_id
      WHERE k.token_id = t.id) AS rarity_score"""
_TRAIT_FILTER = (
    "EXISTS (SELECT 1 FROM catalog.token_trait_links k JOIN catalog.traits tr ON tr.id = k.trait_id "
    "JOIN catalog.trait_values v ON v.id = k.trait_value_id WHERE k.token_id = t.id "
    "AND lower(tr.name) = {name} AND lower(v.value_string) = ANY({values}))"
)
_TRAITS = """
SELECT k.token_id, tr.id AS trait_id, tr.name AS trait_name, v.id AS trait_value_id, v.value_string AS value,
       tr.display_type, v.occurrences, v.rarity_score
  FROM catalog.token_trait_links k
  JOIN catalog.traits tr ON tr.id = k.trait_id
  JOIN catalog.trait_values v ON v.id = k.trait_value_id
 WHERE k.token_id = ANY($1::uuid[])
 ORDER BY tr.sort_order NULLS LAST, tr.name
"""


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


class CatalogQueries:
    def __init__(self, repository: CatalogRepository) -> None:
        self._repo = repository

    async def _traits(self, token_ids: Sequence[UUID]) -> dict[UUID, list[Any]]:
        grouped: dict[UUID, list[Any]] = defaultdict(list)
        if token_ids:
            for row in await self._repo.fetch(_TRAITS, list(token_ids)):
                grouped[row["token_id"]].append(row)
        return grouped

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
        traits = await self._traits([rows[0]["id"]])
        return pb.GetTokenResponse(token=views.token(rows[0], traits.get(rows[0]["id"], [])))

    async def list_tokens(self, request: pb.ListTokensRequest) -> pb.ListTokensResponse:
        collection_id = uuid_of(request.collection_id, "collection_id", required=False)
        owner = address_of(request.owner_address, "owner_address")
        if collection_id is None and owner is None:
            raise InvalidArgument("at least one of collection_id and owner_address must be set")
        if request.trait_filters and collection_id is None:
            raise InvalidArgument("trait_filters require collection_id")
        sort = request.sort or pb.TOKEN_SORT_TOKEN_NUMBER_ASC
        if sort not in (pb.TOKEN_SORT_TOKEN_NUMBER_ASC, pb.TOKEN_SORT_MINTED_AT_DESC):
            raise InvalidArgument(f"sort {pb.TokenSort.Name(sort)} is not supported yet; use TOKEN_NUMBER_ASC or "
                                  "MINTED_AT_DESC")
        where = _Where()
        if collection_id is not None:
            where.add(f"t.collection_id = {where.param(collection_id)}")
        if owner is not None:
            where.add(f"t.owner_address = {where.param(owner)}")
        if not request.include_burned:
            where.add("NOT t.burned")
        if request.listed_only:
            where.add("EXISTS (SELECT 1 FROM catalog.listings l WHERE l.token_id = t.id AND l.is_active)")
        if request.query:
            q = where.param(request.query.strip())
            where.add(f"(t.token_number = {q} OR t.name ILIKE '%' || {q} || '%')")
        filters = []
        for trait_filter in request.trait_filters:
            name = trait_filter.name.strip().lower()
            values = sorted({v.strip().lower() for v in trait_filter.values if v.strip()})
            if not name or not values:
                raise InvalidArgument("every trait filter needs a name and at least one value")
            filters.append([name, values])
            name_param, values_param = where.param(name), where.param(values)
            where.add(_TRAIT_FILTER.format(name=name_param, values=values_param))
        params = ["tokens", str(collection_id), owner, request.include_burned, request.listed_only, request.query,
                  filters, sort]
        count_sql = f"SELECT count(*) FROM catalog.tokens t WHERE {where.sql()}"  # noqa: S608
        total = int(await self._repo.fetchval(count_sql, *where.args))
        limit = page_size(request.page.page_size)
        key = decode_key_token(request.page.page_token, params, 3)
        if sort == pb.TOKEN_SORT_TOKEN_NUMBER_ASC:
            order = "t.collection_id, length(t.token_number), t.token_number"
            if key is not None:
                where.add(f"(t.collection_id, length(t.token_number), t.token_number) > "
                          f"({where.param(uuid_of(str(key[0]), 'page_token'))}::uuid, {where.param(int(key[1]))}, "
                          f"{where.param(str(key[2]))})")
        else:
            order = "coalesce(t.minted_at, '-infinity'::timestamptz) DESC, t.id DESC"
            if key is not None:
                minted = ("'-infinity'::timestamptz" if key[0] == "-infinity"
                          else f"{where.param(_instant(key[0]))}::timestamptz")
                where.add(f"(coalesce(t.minted_at, '-infinity'::timestamptz), t.id) < "
                          f"({minted}, {where.param(uuid_of(str(key[1]), 'page_token'))}::uuid)")
        limit_param = where.param(limit + 1)
        rows = await self._repo.fetch(
            f"SELECT {_NFT_COLUMNS} FROM catalog.tokens t WHERE {where.sql()} ORDER BY {order} "  # noqa: S608
            f"LIMIT {limit_param}",
            *where.args,
        )
        page = rows[:limit]
        traits = await self._traits([r["id"] for r in page])
        token = ""
        if len(rows) > limit:
            last = page[-1]
            if sort == pb.TOKEN_SORT_TOKEN_NUMBER_ASC:
                token = encode_key_token([str(last["collection_id"]), len(last["token_number"]), last["token_number"]],
                                     params)
            else:
                minted = last["minted_at"].isoformat() if last["minted_at"] is not None else "-infinity"
                token = encode_key_token([minted, str(last["id"]), ""], params)
        return pb.ListTokensResponse(
            tokens=[views.token(r, traits.get(r["id"], [])) for r in page],
            page=common_pb2.PageResponse(next_page_token=token, total_size=total),
        )

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

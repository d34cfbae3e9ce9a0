"""Collections: registering deployed contracts (the Collection resource, imports) and reading them back.

Registration is idempotent per (chain, contract): a second call refreshes the editable fields and returns
``created=false``. A contract whose transfers reached the catalog before it was registered already has a
*discovered* collection (ingestion never drops events of unknown contracts); registering adopts that row,
with its tokens and activity, instead of creating a second one.
"""

from __future__ import annotations

import re
import unicodedata

from asyncpg import Record

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.common.v1 import common_pb2
from mintplane.catalog import token_filters as filters
from mintplane.catalog import views
from mintplane.catalog.keyset import Key, Params, Segment, decode_cursor, encode_cursor
from mintplane.catalog.keyset import page as keyset_page
from mintplane.catalog.queries import address_of, chain_of, contract_of, uuid_of, uuids_of
from mintplane.catalog.repository import CatalogRepository, NewCollection, SlugTaken
from mintplane.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from mintplane.common.pagination import page_size

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])$")
MAX_NAME = 200
# traded volume is text (wei) in the seed's schema; sorted numerically through this indexed expression
VOLUME_SQL = "(coalesce(c.volume_traded, '0'))::numeric"


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:56].strip("-")


class Collections:
    def __init__(self, repository: CatalogRepository) -> None:
        self._repo = repository

    async def register(self, request: pb.RegisterCollectionRequest) -> pb.RegisterCollectionResponse:
        chain, contract = contract_of(request.contract, "contract")
        standard = views.STANDARD_NAMES.get(request.standard)
        if standard is None:
            raise InvalidArgument("standard must be TOKEN_STANDARD_ERC721 or TOKEN_STANDARD_ERC1155")
        name = request.name.strip() or f"Collection {contract[:10]}"
        if len(name) > MAX_NAME:
            raise InvalidArgument(f"name is longer than {MAX_NAME} characters")
        creator = address_of(request.creator, "creator")
        owner = address_of(request.owner, "owner")
        existing = await self._repo.collection_by_contract(chain, contract)
        if existing is not None and existing["collection_type"] not in (None, standard):
            raise InvalidArgument(f"{chain}/{contract} is registered as {existing['collection_type']}, not {standard}")
        slug = await self._choose_slug(request.slug.strip().lower(), name, chain, contract, existing)
        new = NewCollection(chain_id=chain, contract=contract, standard=standard, name=name, slug=slug,
                            description=request.description or None, deploy_block=request.deploy_block or None,
                            creator=creator, owner=owner)
        try:
            row, created = await self._repo.register(new)
        except SlugTaken:
            raise AlreadyExists(f"slug {slug!r} is taken by another collection") from None
        return pb.RegisterCollectionResponse(collection=views.collection(row), created=created)

    async def _choose_slug(self, wanted: str, name: str, chain: str, contract: str, existing: Record | None) -> str:
        current = existing["slug"] if existing is not None and existing["registration"] != "discovered" else None
        if wanted:
            if not SLUG.match(wanted):
                raise InvalidArgument("slug must be 3-64 characters of a-z, 0-9 and inner hyphens")
            owner = await self._repo.slug_owner(wanted)
            if owner is not None and (existing is None or owner != existing["id"]):
                raise AlreadyExists(f"slug {wanted!r} is taken by another collection")
            return wanted
        if current is not None:
            return str(current)
        base = slugify(name) or "collection"
        if len(base) < 3:
            base = f"{base}-collection"
        taken = await self._repo.slugs_like(base)
        if existing is not None:
            taken.discard(existing["slug"])
        if base not in taken:
            return base
        for suffix in range(2, 1000):
            candidate = f"{base}-{suffix}"
            if candidate not in taken:
                return candidate
        return f"{base}-{contract[2:10]}-{chain.split(':')[1]}"

    async def get(self, request: pb.GetCollectionRequest) -> pb.GetCollectionResponse:
        collection_id = uuid_of(request.id, "id")
        assert collection_id is not None
        row = await self._repo.collection(collection_id)
        if row is None:
            raise NotFound(f"collection {request.id} not found")
        return pb.GetCollectionResponse(collection=views.collection(row))

    async def get_by_contract(self, request: pb.GetCollectionByContractRequest) -> pb.GetCollectionByContractResponse:
        chain, contract = contract_of(request.contract, "contract")
        row = await self._repo.collection_by_contract(chain, contract)
        if row is None:
            raise NotFound(f"no collection for contract {contract} on {chain}")
        return pb.GetCollectionByContractResponse(collection=views.collection(row))

    async def stats(self, request: pb.GetCollectionStatsRequest) -> pb.GetCollectionStatsResponse:
        collection_id = uuid_of(request.collection_id, "collection_id")
        assert collection_id is not None
        row = await self._repo.stats(collection_id)
        if row is None:
            raise NotFound(f"collection {request.collection_id} not found")
        return pb.GetCollectionStatsResponse(stats=views.stats(row))


    async def get_by_slug(self, request: pb.GetCollectionBySlugRequest) -> pb.GetCollectionBySlugResponse:
        slug = request.slug.strip().lower()
        if not slug:
            raise InvalidArgument("slug is required")
        if len(slug) > 200:
            raise InvalidArgument("slug is longer than 200 characters")
        rows = await self._repo.fetch("SELECT c.* FROM catalog.collections c WHERE c.slug = $1", slug)
        if not rows:
            raise NotFound(f"no collection with slug {slug!r}")
        return pb.GetCollectionBySlugResponse(collection=views.collection(rows[0]))

    async def batch_get(self, request: pb.BatchGetCollectionsRequest) -> pb.BatchGetCollectionsResponse:
        ids = uuids_of(request.ids, "ids")
        rows = await self._repo.fetch("SELECT c.* FROM catalog.collections c WHERE c.id = ANY($1::uuid[])",
                                      ids) if ids else []
        return pb.BatchGetCollectionsResponse(collections=[views.collection(r) for r in rows])

    async def batch_stats(self, request: pb.BatchGetCollectionStatsRequest) -> pb.BatchGetCollectionStatsResponse:
        ids = uuids_of(request.collection_ids, "collection_ids")
        rows = await self._repo.stats_many(ids) if ids else []
        return pb.BatchGetCollectionStatsResponse(stats=[views.stats(r) for r in rows])


    async def list_collections(self, request: pb.ListCollectionsRequest) -> pb.ListCollectionsResponse:
        p = Params()
        where = []
        if request.HasField("chain") and request.chain.caip2:
            where.append(f"c.chain_id = {p(chain_of(request.chain, 'chain.caip2'))}::text")
        if request.creator:
            where.append(f"c.creator = {p(address_of(request.creator, 'creator'))}::text")
        if request.creator_user_id:
            uuid_of(request.creator_user_id, "creator_user_id")
            raise FailedPrecondition("creator_user_id cannot be filtered on yet: the catalog records creators by "
                                     "address (collections created through the orchestrator will carry the user); "
                                     "filter by creator address instead")
        if request.owner:
            where.append(f"c.owner = {p(address_of(request.owner, 'owner'))}::text")
        if request.standard:
            standard = views.STANDARD_NAMES.get(request.standard)
            if standard is None:
                raise InvalidArgument("standard must be TOKEN_STANDARD_ERC721, TOKEN_STANDARD_ERC1155 or unspecified")
            where.append(f"c.collection_type = {p(standard)}::text")
        statuses = sorted({_STATUS_NAMES.get(s, "") for s in request.statuses} or {"live"})
        if "" in statuses:
            raise InvalidArgument("statuses holds an unknown or unspecified status")
        where.append(f"c.status = ANY({p(statuses)}::text[])")
        if request.verified_only:
            where.append("c.is_verified")
        query = filters.query_text(request.query)
        if query:
            pattern = p(filters.like_pattern(query))
            where.append(f"(c.name ILIKE {pattern}::text OR c.slug ILIKE {pattern}::text)")
        sort = request.sort or pb.COLLECTION_SORT_CREATED_AT_DESC
        segments = _COLLECTION_SORTS.get(sort)
        if segments is None:
            raise InvalidArgument(f"sort {sort} is not a CollectionSort value")
        fingerprint = ["collections", list(p.args), sort]
        cursor = decode_cursor(request.page.page_token, fingerprint, segments)
        carried = cursor.carried if cursor is not None else None
        if isinstance(carried, int) and not isinstance(carried, bool) and carried >= 0:
            total = carried
        else:  # counted once, on the first page, and carried by the page token ("N collections")
            filters_sql = " AND ".join(where) if where else "TRUE"
            total = int(await self._repo.fetchval(
                f"SELECT count(*) FROM {_COLLECTION_SOURCE} WHERE {filters_sql}", *p.args))  # noqa: S608
        rows, last_segment = await keyset_page(
            self._repo.fetch, select="c.*", source=_COLLECTION_SOURCE, where=where, params=p, segments=segments,
            cursor=cursor, limit=page_size(request.page.page_size))
        token = "" if last_segment is None else encode_cursor(last_segment, rows[-1], segments, fingerprint, total)
        return pb.ListCollectionsResponse(collections=[views.collection(r) for r in rows],
                                          page=common_pb2.PageResponse(next_page_token=token, total_size=total))


_STATUS_NAMES = {value: name for name, value in views.STATUSES.items()}
_COLLECTION_SOURCE = "catalog.collections c LEFT JOIN catalog.collection_stats s ON s.collection_id = c.id"
_C_ID = Key("c.id", "uuid")
_S_ID = Key("s.collection_id", "uuid")
_NO_STATS = Segment((_C_ID,), descending=True, where="s.collection_id IS NULL")


def _by_stat(column: str) -> list[Segment]:
    """Most first by a collection_stats count (its index drives); collections never counted come last."""
    return [Segment((Key(f"s.{column}", "int"), _S_ID), descending=True, where="s.collection_id IS NOT NULL"),
            _NO_STATS]


def _by_floor(descending: bool) -> list[Segment]:
    """By floor price (collection_stats.floor_price_native); collections without a floor come last."""
    return [Segment((Key("s.floor_price_native", "numeric", nulls_last=True), _S_ID), descending=descending,
                    where="s.floor_price_native IS NOT NULL"),
            Segment((_C_ID,), descending=True, where="s.floor_price_native IS NULL")]


# Each sort is served by an index of revision 0007 (ix_collections_created_at, ix_collections_name,
# ix_collections_volume, ix_collection_stats_items / _owners / _floor).
_COLLECTION_SORTS: dict[int, list[Segment]] = {
    pb.COLLECTION_SORT_CREATED_AT_DESC: [Segment((Key("c.created_at", "ts"), _C_ID), descending=True)],
    pb.COLLECTION_SORT_NAME_ASC: [Segment((Key("c.name", "text"), _C_ID))],
    pb.COLLECTION_SORT_VOLUME_DESC: [Segment((Key(VOLUME_SQL, "numeric"), _C_ID), descending=True)],
    pb.COLLECTION_SORT_ITEMS_DESC: _by_stat("items_count"),
    pb.COLLECTION_SORT_OWNERS_DESC: _by_stat("owners_count"),
    pb.COLLECTION_SORT_FLOOR_PRICE_ASC: _by_floor(False),
    pb.COLLECTION_SORT_FLOOR_PRICE_DESC: _by_floor(True),
}

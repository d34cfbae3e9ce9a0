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
from mintplane.catalog import views
from mintplane.catalog.queries import address_of, contract_of, uuid_of
from mintplane.catalog.repository import CatalogRepository, NewCollection, SlugTaken
from mintplane.common.errors import AlreadyExists, InvalidArgument, NotFound

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])$")
MAX_NAME = 200


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


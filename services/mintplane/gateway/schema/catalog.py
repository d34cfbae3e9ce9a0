"""The catalog: collections with their stats and trait facets, tokens with traits, rarity (and why), metadata
progress and owners, activity, and the metadata refresh.

Cost model: a list field is one upstream List* call; whatever its items refer to (collection, its stats, the
owner's wallet and user, an activity's token) goes through the request's DataLoaders, so a page of 50 tokens
with all of that costs the same handful of calls as a page of 10. Data a List* reply already holds (traits,
rarity, metadata status) becomes plain attributes: no resolver runs for them.

Lookups of one thing (`collection`, `token`, a `collection` argument naming an unknown slug) answer null
with a NOT_FOUND error, as `user(username)` does. Arguments are checked before any upstream call.
"""

# strawberry.field/mutation(...) with keyword arguments are typed as Any (they double as field specs).
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum

import strawberry

from mintplane.api.catalog.v1 import catalog_pb2
from mintplane.api.common.v1 import common_pb2
from mintplane.gateway.context import Info
from mintplane.gateway.errors import BadUserInput
from mintplane.gateway.pagination import page_window, paginate
from mintplane.gateway.schema.activity import ActivityConnection, ActivityType, list_activity
from mintplane.gateway.schema.chains import Chain, check_caip2, load_chain
from mintplane.gateway.schema.common import PageInfo, or_none, timestamp
from mintplane.gateway.schema.money import Price
from mintplane.gateway.schema.users import User

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TOKEN_NUMBER = re.compile(r"^(0|[1-9][0-9]{0,77})$")
MAX_FILTERS = 20  # traits or ranges per query
MAX_VALUES = 50  # values per trait filter
MAX_TEXT = 200  # trait names, values, search text


# ------------------------------------------------------------------------------------------------ enums


@strawberry.enum(description="Contract standard.")
class TokenStandard(Enum):
    UNSPECIFIED = "UNSPECIFIED"
    ERC721 = "ERC721"
    ERC1155 = "ERC1155"
    ERC20 = "ERC20"
    OTHER = "OTHER"


@strawberry.enum(description="Lifecycle of a collection.")
class CollectionStatus(Enum):
    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    LIVE = "LIVE"
    FAILED = "FAILED"


@strawberry.enum(description="Where a token's metadata fetch stands.")
class MetadataStatus(Enum):
    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    OK = "OK"
    FAILED = "FAILED"


@strawberry.enum(description="Kind of a trait's values.")
class TraitValueType(Enum):
    UNSPECIFIED = "UNSPECIFIED"
    STRING = "STRING"
    NUMBER = "NUMBER"
    DATE = "DATE"


@strawberry.enum(description="Order of `collections`.")
class CollectionSort(Enum):
    CREATED = "CREATED"
    NAME = "NAME"
    ITEMS = "ITEMS"
    OWNERS = "OWNERS"
    VOLUME = "VOLUME"


@strawberry.enum(description="Order of `tokens`.")
class TokenSort(Enum):
    # "token" as in NFT, not a credential
    TOKEN_NUMBER = "TOKEN_NUMBER"  # noqa: S105
    TOKEN_NUMBER_DESC = "TOKEN_NUMBER_DESC"  # noqa: S105
    RARITY = "RARITY"
    RARITY_DESC = "RARITY_DESC"
    RECENTLY_TRANSFERRED = "RECENTLY_TRANSFERRED"
    RECENTLY_MINTED = "RECENTLY_MINTED"


def _by_name(enum: type[Enum], values: dict[str, int], prefix: str) -> dict[int, Enum]:
    """Proto enum number -> GraphQL enum, for enums spelled the same after the proto prefix."""
    return {number: enum[name.removeprefix(prefix)] for name, number in values.items()}


_STANDARDS = _by_name(TokenStandard, dict(common_pb2.TokenStandard.items()), "TOKEN_STANDARD_")
_COLLECTION_STATUSES = _by_name(CollectionStatus, dict(catalog_pb2.CollectionStatus.items()), "COLLECTION_STATUS_")
_METADATA_STATUSES = _by_name(MetadataStatus, dict(catalog_pb2.MetadataStatus.items()), "METADATA_STATUS_")
_VALUE_TYPES = _by_name(TraitValueType, dict(catalog_pb2.TraitValueType.items()), "TRAIT_VALUE_TYPE_")
_COLLECTION_SORTS = {
    CollectionSort.CREATED: catalog_pb2.COLLECTION_SORT_CREATED_AT_DESC,
    CollectionSort.NAME: catalog_pb2.COLLECTION_SORT_NAME_ASC,
    CollectionSort.ITEMS: catalog_pb2.COLLECTION_SORT_ITEMS_DESC,
    CollectionSort.OWNERS: catalog_pb2.COLLECTION_SORT_OWNERS_DESC,
    CollectionSort.VOLUME: catalog_pb2.COLLECTION_SORT_VOLUME_DESC,
}
_TOKEN_SORTS = {
    TokenSort.TOKEN_NUMBER: catalog_pb2.TOKEN_SORT_TOKEN_NUMBER_ASC,
    TokenSort.TOKEN_NUMBER_DESC: catalog_pb2.TOKEN_SORT_TOKEN_NUMBER_DESC,
    TokenSort.RARITY: catalog_pb2.TOKEN_SORT_RARITY_ASC,
    TokenSort.RARITY_DESC: catalog_pb2.TOKEN_SORT_RARITY_DESC,
    TokenSort.RECENTLY_TRANSFERRED: catalog_pb2.TOKEN_SORT_TRANSFERRED_AT_DESC,
    TokenSort.RECENTLY_MINTED: catalog_pb2.TOKEN_SORT_MINTED_AT_DESC,
}


def _score(text: str) -> float | None:
    """A decimal-string score as a float for display; None when the service left it empty."""
    return float(text) if text else None


# ----------------------------------------------------------------------------------------------- inputs


@strawberry.input(description="Names a collection: its `id`, its `slug`, or its `chain` and contract `address`.")
class CollectionKey:
    id: strawberry.ID | None = None
    slug: str | None = None
    chain: str | None = strawberry.field(default=None, description="CAIP-2 id, with `address`.")
    address: str | None = strawberry.field(default=None, description="Contract address, with `chain`.")


@strawberry.input(description="Names a token: `chain` (CAIP-2), contract `address` and on-chain `tokenNumber`.")
class TokenKey:
    chain: str
    address: str
    token_number: str = strawberry.field(description="On-chain token id, base-10.")


@strawberry.input(description="Tokens having any of `values` for trait `name` (both case-insensitive).")
class TraitFilter:
    name: str
    values: list[str]


@strawberry.input(description="Tokens whose numeric or date trait `name` lies in [min, max]; an omitted bound is open.")
class RangeFilter:
    name: str
    min: str | None = strawberry.field(default=None, description="Decimal, inclusive.")
    max: str | None = strawberry.field(default=None, description="Decimal, inclusive.")


def check_address(value: str, what: str) -> str:
    if not _ADDRESS.match(value.strip()):
        raise BadUserInput(f"`{what}` must be a 0x-prefixed 20-byte hex address.")
    return value.strip().lower()


def _text(value: str, what: str) -> str:
    text = value.strip()
    if not text or len(text) > MAX_TEXT:
        raise BadUserInput(f"`{what}` must be 1 to {MAX_TEXT} characters.")
    return text


def _decimal(value: str | None, what: str) -> str:
    if value is None or value.strip() == "":
        return ""
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise BadUserInput(f"`{what}` must be a decimal number.") from None
    if not number.is_finite():
        raise BadUserInput(f"`{what}` must be a decimal number.")
    return str(number)


def trait_filters(filters: Sequence[TraitFilter] | None) -> list[catalog_pb2.TraitFilter]:
    filters = filters or []
    if len(filters) > MAX_FILTERS:
        raise BadUserInput(f"At most {MAX_FILTERS} trait filters.")
    out = []
    for item in filters:
        if not item.values or len(item.values) > MAX_VALUES:
            raise BadUserInput(f"Every trait filter needs 1 to {MAX_VALUES} values.")
        out.append(catalog_pb2.TraitFilter(
            name=_text(item.name, "traits.name"), values=[_text(v, "traits.values") for v in item.values]
        ))
    return out


def range_filters(ranges: Sequence[RangeFilter] | None) -> list[catalog_pb2.NumericTraitFilter]:
    ranges = ranges or []
    if len(ranges) > MAX_FILTERS:
        raise BadUserInput(f"At most {MAX_FILTERS} range filters.")
    out = []
    for item in ranges:
        low, high = _decimal(item.min, "ranges.min"), _decimal(item.max, "ranges.max")
        if not low and not high:
            raise BadUserInput("Every range filter needs `min`, `max` or both.")
        if low and high and Decimal(low) > Decimal(high):
            raise BadUserInput("A range filter's `min` must not exceed its `max`.")
        out.append(catalog_pb2.NumericTraitFilter(name=_text(item.name, "ranges.name"), min=low, max=high))
    return out


def token_key(key: TokenKey) -> catalog_pb2.TokenKey:
    if not _TOKEN_NUMBER.match(key.token_number.strip()):
        raise BadUserInput("`tokenNumber` must be a base-10 unsigned integer.")
    return catalog_pb2.TokenKey(
        contract=common_pb2.ContractRef(
            chain=common_pb2.ChainRef(caip2=check_caip2(key.chain)), address=check_address(key.address, "address")
        ),
        token_number=key.token_number.strip(),
    )


def _collection_lookup(key: CollectionKey) -> tuple[str, str | None, common_pb2.ContractRef | None]:
    """Exactly one way of naming the collection, checked: (id, slug, contract), two of them empty."""
    named = [key.id is not None, key.slug is not None, key.chain is not None or key.address is not None]
    if sum(named) != 1:
        raise BadUserInput("Name the collection by exactly one of `id`, `slug`, or `chain` with `address`.")
    if key.id is not None:
        try:
            return str(uuid.UUID(str(key.id))), None, None
        except ValueError:
            raise BadUserInput("`collection.id` is not a valid id.") from None
    if key.slug is not None:
        return "", _text(key.slug, "collection.slug"), None
    if key.chain is None or key.address is None:
        raise BadUserInput("Name the collection's `chain` and `address` together.")
    contract = common_pb2.ContractRef(
        chain=common_pb2.ChainRef(caip2=check_caip2(key.chain, "collection.chain")),
        address=check_address(key.address, "collection.address"),
    )
    return "", None, contract


async def resolve_collection(info: Info, key: CollectionKey) -> str:
    """The id of the collection a key names (NOT_FOUND when none); by-slug and by-contract reads prime the
    collection loader, so the collection's own fields cost nothing more."""
    collection_id, slug, contract = _collection_lookup(key)
    if collection_id:
        return collection_id
    catalog = info.context.clients.catalog
    if slug is not None:
        found = (await catalog.get_collection_by_slug(catalog_pb2.GetCollectionBySlugRequest(slug=slug))).collection
    else:
        found = (await catalog.get_collection_by_contract(
            catalog_pb2.GetCollectionByContractRequest(contract=contract)
        )).collection
    info.context.loaders.collections.prime(found.id, found)
    return found.id


# ------------------------------------------------------------------------------------------- collections


@strawberry.type(description="Metadata fetch progress of a collection's tokens.")
class MetadataProgress:
    pending: int
    ok: int
    failed: int


@strawberry.type(description="Aggregates of a collection.")
class CollectionStats:
    items_count: int = strawberry.field(description="Tokens minted and not burned.")
    owners_count: int = strawberry.field(description="Distinct current owners.")
    listed_count: int = strawberry.field(description="Tokens with an active listing.")
    sales_count: int
    floor_price: Price | None
    volume_traded: Price | None
    metadata: MetadataProgress
    rarity_computed_at: datetime | None = strawberry.field(description="Null before rarity was first computed.")
    updated_at: datetime | None

    @classmethod
    def from_proto(cls, stats: catalog_pb2.CollectionStats) -> CollectionStats:
        return cls(
            items_count=stats.items_count, owners_count=stats.owners_count, listed_count=stats.listed_count,
            sales_count=stats.sales_count, floor_price=Price.of(stats, "floor_price"),
            volume_traded=Price.of(stats, "volume_traded"),
            metadata=MetadataProgress(pending=stats.metadata_pending, ok=stats.metadata_ok,
                                      failed=stats.metadata_failed),
            rarity_computed_at=timestamp(stats, "rarity_computed_at"), updated_at=timestamp(stats, "updated_at"),
        )


@strawberry.type(description="A value of a trait (a facet checkbox) with its counts.")
class TraitValue:
    value: str
    value_number: str | None = strawberry.field(description="For NUMBER and DATE traits, decimal.")
    count: int = strawberry.field(description="Tokens of the collection carrying this value.")
    filtered_count: int = strawberry.field(
        description="Tokens carrying it under the filters on the *other* traits (equals count without filters)."
    )
    rarity_score: float | None = strawberry.field(description="Information content of the value; higher is rarer.")


@strawberry.type(description="A trait of a collection with its values, most frequent first.")
class Trait:
    name: str
    normalized_name: str
    value_type: TraitValueType
    display_type: str | None
    sort_order: int
    is_meta: bool = strawberry.field(description="The trait-count trait rarity adds.")
    null_count: int = strawberry.field(description="Tokens lacking the trait.")
    min_value: str | None = strawberry.field(description="Smallest value of a NUMBER/DATE trait.")
    max_value: str | None = strawberry.field(description="Largest value of a NUMBER/DATE trait.")
    values: list[TraitValue]

    @classmethod
    def from_proto(cls, trait: catalog_pb2.Trait) -> Trait:
        return cls(
            name=trait.name, normalized_name=trait.normalized_name,
            value_type=_VALUE_TYPES.get(trait.value_type, TraitValueType.UNSPECIFIED),  # type: ignore[arg-type]
            display_type=or_none(trait.display_type), sort_order=trait.sort_order, is_meta=trait.is_meta,
            null_count=trait.null_occurrences, min_value=or_none(trait.min_value), max_value=or_none(trait.max_value),
            values=[
                TraitValue(value=value.value_string, value_number=or_none(value.value_number),
                           count=value.occurrences, filtered_count=value.filtered_count,
                           rarity_score=_score(value.rarity_score))
                for value in trait.values
            ],
        )


@strawberry.type(description="An NFT collection.")
class Collection:
    id: strawberry.ID
    slug: str
    name: str
    description: str | None
    chain: str = strawberry.field(description="CAIP-2 id of the contract's chain.")
    address: str = strawberry.field(description="Contract address (predicted while PENDING).")
    creator: str | None
    owner: str | None = strawberry.field(description="Current contract owner.")
    standard: TokenStandard
    max_supply: str | None = strawberry.field(description="Base-10; null when unlimited.")
    total_supply: str = strawberry.field(description="Minted and not burned, base-10.")
    royalty_bps: int = strawberry.field(description="ERC-2981 royalty in basis points.")
    mint_price: Price | None
    floor_price: Price | None
    volume_traded: Price | None
    verified: bool
    status: CollectionStatus
    created_at: datetime | None
    live_at: datetime | None

    @classmethod
    def from_proto(cls, collection: catalog_pb2.Collection) -> Collection:
        return cls(
            id=strawberry.ID(collection.id), slug=collection.slug, name=collection.name,
            description=or_none(collection.description), chain=collection.chain.caip2,
            address=collection.contract_address, creator=or_none(collection.creator), owner=or_none(collection.owner),
            standard=_STANDARDS.get(collection.standard, TokenStandard.UNSPECIFIED),  # type: ignore[arg-type]
            max_supply=or_none(collection.max_supply) if collection.max_supply != "0" else None,
            total_supply=collection.total_supply or "0", royalty_bps=collection.royalty_bps,
            mint_price=Price.of(collection, "mint_price"), floor_price=Price.of(collection, "floor_price"),
            volume_traded=Price.of(collection, "volume_traded"), verified=collection.is_verified,
            status=_COLLECTION_STATUSES.get(collection.status, CollectionStatus.UNSPECIFIED),  # type: ignore[arg-type]
            created_at=timestamp(collection, "created_at"), live_at=timestamp(collection, "live_at"),
        )

    @strawberry.field(description="The chain (batched across the collections of a response).")
    async def network(self, info: Info) -> Chain | None:
        return await load_chain(info, self.chain)

    @strawberry.field(description="Items, owners, listings, volume and metadata progress (batched).")
    async def stats(self, info: Info) -> CollectionStats | None:
        stats = await info.context.loaders.collection_stats.load(str(self.id))
        return CollectionStats.from_proto(stats) if stats is not None else None

    @strawberry.field(description=(
        "The facets: every trait with its values and counts. With filters, each value's filteredCount counts "
        "the tokens matching the filters on the other traits."
    ))
    async def traits(
        self, info: Info, traits: list[TraitFilter] | None = None, ranges: list[RangeFilter] | None = None,
        owner: str | None = None, listed_only: bool = False,
    ) -> list[Trait]:
        request = catalog_pb2.ListTraitsRequest(
            collection_id=str(self.id), trait_filters=trait_filters(traits), numeric_filters=range_filters(ranges),
            owner_address=check_address(owner, "owner") if owner is not None else "", listed_only=listed_only,
        )
        reply = await info.context.clients.catalog.list_traits(request)
        return [Trait.from_proto(trait) for trait in reply.traits]

    @strawberry.field(description="The collection's tokens, filtered and sorted.")
    async def tokens(
        self, info: Info, traits: list[TraitFilter] | None = None, ranges: list[RangeFilter] | None = None,
        owner: str | None = None, listed_only: bool = False, query: str | None = None,
        sort: TokenSort = TokenSort.TOKEN_NUMBER, first: int = 20, after: str | None = None,
    ) -> TokenConnection:
        request = token_request(traits=traits, ranges=ranges, owner=owner, listed_only=listed_only, query=query,
                                sort=sort)
        request.collection_id = str(self.id)
        return await list_tokens(info, request, first, after)

    @strawberry.field(description="Activity of the collection, newest first.")
    async def activity(
        self, info: Info, types: list[ActivityType] | None = None, first: int = 20, after: str | None = None
    ) -> ActivityConnection:
        return await list_activity(info, collection_id=str(self.id), types=types, first=first, after=after)


@strawberry.type
class CollectionEdge:
    cursor: str
    node: Collection


@strawberry.type(description="A page of collections (Relay cursor connection).")
class CollectionConnection:
    edges: list[CollectionEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Total size when the service counts it cheaply, else 0.")


# ------------------------------------------------------------------------------------------------ tokens


@strawberry.type(description="A trait value of a token.")
class TokenTrait:
    name: str
    value: str
    display_type: str | None
    value_number: str | None = strawberry.field(description="For number and date traits, decimal.")
    occurrences: int = strawberry.field(description="Tokens of the collection carrying this value.")
    rarity_score: float | None = strawberry.field(description="The value's contribution to the token's score.")
    meta: bool = strawberry.field(description="The trait-count trait rarity adds (UIs often hide it).")
    counted: bool = strawberry.field(description="False for number and date traits, which do not score.")


@strawberry.type(description="One term of a token's rarity score.")
class RarityContribution:
    trait: str
    value: str | None = strawberry.field(description="Null when the token lacks the trait (`missing`).")
    occurrences: int = strawberry.field(description="Tokens sharing this value (or lacking the trait).")
    contribution: float = strawberry.field(description="What this term adds to the score; the terms sum to it.")
    missing: bool = strawberry.field(description="The token lacks the trait: it counts as the trait's null value.")
    meta: bool = strawberry.field(description="The trait-count term (how many traits the token has).")
    counted: bool = strawberry.field(description="False for number and date traits, which do not score.")

    @classmethod
    def from_proto(cls, term: catalog_pb2.TokenTrait) -> RarityContribution:
        return cls(
            trait=term.trait_name, value=None if term.missing else term.value, occurrences=term.occurrences,
            contribution=_score(term.rarity_score) or 0.0, missing=term.missing, meta=term.meta, counted=term.counted,
        )


@strawberry.type(description="OpenRarity information-content rarity of a token.")
class Rarity:
    score: float
    rank: int = strawberry.field(description="1 is the rarest of the collection.")
    token_id: strawberry.Private[str]
    terms: strawberry.Private[list[catalog_pb2.TokenTrait] | None]

    @strawberry.field(description=(
        "Why the token scores what it does: one term per trait of the collection (present, missing, and the "
        "trait count). A detail-page field: on a list it costs one token read per token."
    ))
    async def explanation(self, info: Info) -> list[RarityContribution]:
        terms = self.terms
        if terms is None:
            token = (await info.context.clients.catalog.get_token(catalog_pb2.GetTokenRequest(id=self.token_id))).token
            terms = list(token.rarity_explanation)
        return [RarityContribution.from_proto(term) for term in terms]


@strawberry.type(description="Where a token's metadata stands.")
class TokenMetadata:
    status: MetadataStatus
    error: str | None = strawberry.field(description="Why the fetch failed; null unless FAILED.")
    fetched_at: datetime | None
    url: str | None = strawberry.field(description="tokenURI as the contract returned it.")


@strawberry.type(description="The address holding a token, and its mintplane user when the address is linked.")
class Owner:
    address: str

    @strawberry.field(description="The mintplane user who linked this address; null when nobody did.")
    async def user(self, info: Info) -> User | None:
        wallet = await info.context.loaders.wallets_by_address.load(self.address)
        if wallet is None:
            return None
        user = await info.context.loaders.users.load(wallet.user_id)
        return User.from_proto(user) if user is not None else None


@strawberry.type(description="A token of a collection.")
class Token:
    id: strawberry.ID
    chain: str = strawberry.field(description="CAIP-2 id.")
    address: str = strawberry.field(description="Contract address.")
    token_number: str = strawberry.field(description="On-chain token id, base-10.")
    standard: TokenStandard
    name: str | None
    description: str | None
    image: str | None = strawberry.field(description="Image URL (ipfs:// rewritten to the platform gateway).")
    animation_url: str | None
    external_url: str | None
    rarity: Rarity | None = strawberry.field(description="Null until rarity was computed for the collection.")
    metadata: TokenMetadata
    owner: Owner | None = strawberry.field(description="Null for ERC-1155 tokens held by several addresses.")
    burned: bool
    minted_at: datetime | None
    last_transferred_at: datetime | None
    best_listing_price: Price | None
    collection_id: strawberry.Private[str]
    # Kept as messages: a grid page that never selects `traits` must not pay for 500 objects it drops.
    _traits: strawberry.Private[Sequence[catalog_pb2.TokenTrait]]

    @classmethod
    def from_proto(cls, token: catalog_pb2.Token, *, detailed: bool = False) -> Token:
        """`detailed`: the message came from GetToken and holds the rarity explanation."""
        rarity = None
        if token.rarity_rank:
            rarity = Rarity(score=_score(token.rarity_score) or 0.0, rank=token.rarity_rank, token_id=token.id,
                            terms=list(token.rarity_explanation) if detailed else None)
        return cls(
            id=strawberry.ID(token.id), chain=token.chain.caip2, address=token.contract_address,
            token_number=token.token_number,
            standard=_STANDARDS.get(token.token_standard, TokenStandard.UNSPECIFIED),  # type: ignore[arg-type]
            name=or_none(token.name), description=or_none(token.description), image=or_none(token.image_url),
            animation_url=or_none(token.animation_url), external_url=or_none(token.external_url),
            rarity=rarity,
            metadata=TokenMetadata(
                status=_METADATA_STATUSES.get(token.metadata_status, MetadataStatus.UNSPECIFIED),  # type: ignore[arg-type]
                error=or_none(token.metadata_error), fetched_at=timestamp(token, "metadata_fetched_at"),
                url=or_none(token.metadata_url),
            ),
            owner=Owner(address=token.owner_address) if token.owner_address else None, burned=token.burned,
            minted_at=timestamp(token, "minted_at"), last_transferred_at=timestamp(token, "last_transferred_at"),
            best_listing_price=Price.of(token, "best_listing_price"), collection_id=token.collection_id,
            _traits=token.traits,
        )

    @strawberry.field(description="In the trait's sort order.")
    def traits(self) -> list[TokenTrait]:
        return [
            TokenTrait(name=trait.trait_name, value=trait.value, display_type=or_none(trait.display_type),
                       value_number=or_none(trait.value_number), occurrences=trait.occurrences,
                       rarity_score=_score(trait.rarity_score), meta=trait.meta, counted=trait.counted)
            for trait in self._traits
        ]

    @strawberry.field(description="The token's collection (batched across the tokens of a response).")
    async def collection(self, info: Info) -> Collection | None:
        collection = await info.context.loaders.collections.load(self.collection_id)
        return Collection.from_proto(collection) if collection is not None else None

    @strawberry.field(description="The token's history, newest first.")
    async def activity(
        self, info: Info, types: list[ActivityType] | None = None, first: int = 20, after: str | None = None
    ) -> ActivityConnection:
        return await list_activity(info, token_id=str(self.id), types=types, first=first, after=after)


@strawberry.type
class TokenEdge:
    cursor: str
    node: Token


@strawberry.type(description="A page of tokens (Relay cursor connection).")
class TokenConnection:
    edges: list[TokenEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Exact number of matching tokens.")


def token_request(
    *, traits: list[TraitFilter] | None, ranges: list[RangeFilter] | None, owner: str | None, listed_only: bool,
    query: str | None, sort: TokenSort,
) -> catalog_pb2.ListTokensRequest:
    """The ListTokens filters of a `tokens` field, checked (the caller sets the collection or owners)."""
    return catalog_pb2.ListTokensRequest(
        trait_filters=trait_filters(traits), numeric_filters=range_filters(ranges),
        owner_address=check_address(owner, "owner") if owner is not None else "", listed_only=listed_only,
        query=_text(query, "query") if query is not None else "", sort=_TOKEN_SORTS[sort],
    )


async def list_tokens(
    info: Info, request: catalog_pb2.ListTokensRequest, first: int, after: str | None
) -> TokenConnection:
    window = page_window(first, after)
    request.page.CopyFrom(window.request)
    reply = await info.context.clients.catalog.list_tokens(request)
    cut = paginate(window, list(reply.tokens), reply.page)
    return TokenConnection(
        edges=[TokenEdge(cursor=cursor, node=Token.from_proto(token)) for cursor, token in cut.items],
        page_info=PageInfo.of(cut), total_count=cut.total_count,
    )


async def tokens_of_user(
    info: Info, user_id: str, first: int, after: str | None, collection: CollectionKey | None
) -> TokenConnection:
    """Tokens held by any of a user's linked wallets (Account.tokens)."""
    window = page_window(first, after)  # arguments are checked before any call
    if collection is not None:
        _collection_lookup(collection)
    wallets = await info.context.loaders.wallets.load(user_id)
    addresses = sorted({wallet.address for wallet in wallets})
    if not addresses:
        return TokenConnection(edges=[], page_info=PageInfo.of(paginate(window, [], common_pb2.PageResponse())),
                               total_count=0)
    request = catalog_pb2.ListTokensRequest(owner_addresses=addresses)
    if collection is not None:
        request.collection_id = await resolve_collection(info, collection)
    return await list_tokens(info, request, first, after)


# -------------------------------------------------------------------------------------------- root fields


@strawberry.type(description="What refreshMetadata queued.")
class RefreshMetadataPayload:
    queued: int = strawberry.field(description="Tokens queued for a refetch.")
    stats: CollectionStats | None = strawberry.field(description="The collection's metadata progress right after.")


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="Collections, newest first unless sorted otherwise; live ones only.")
    async def collections(
        self, info: Info, chain: str | None = None, verified: bool = False, creator: str | None = None,
        query: str | None = None, sort: CollectionSort = CollectionSort.CREATED, first: int = 20,
        after: str | None = None,
    ) -> CollectionConnection:
        window = page_window(first, after)
        request = catalog_pb2.ListCollectionsRequest(
            chain=common_pb2.ChainRef(caip2=check_caip2(chain) if chain is not None else ""),
            creator=check_address(creator, "creator") if creator is not None else "", verified_only=verified,
            query=_text(query, "query") if query is not None else "", sort=_COLLECTION_SORTS[sort],
            page=window.request,
        )
        reply = await info.context.clients.catalog.list_collections(request)
        for collection in reply.collections:
            info.context.loaders.collections.prime(collection.id, collection)
        cut = paginate(window, list(reply.collections), reply.page)
        return CollectionConnection(
            edges=[CollectionEdge(cursor=cursor, node=Collection.from_proto(item)) for cursor, item in cut.items],
            page_info=PageInfo.of(cut), total_count=cut.total_count,
        )

    @strawberry.field(description="One collection by `slug`, or by `chain` and contract `address`.")
    async def collection(
        self, info: Info, slug: str | None = None, chain: str | None = None, address: str | None = None
    ) -> Collection | None:
        collection_id = await resolve_collection(info, CollectionKey(slug=slug, chain=chain, address=address))
        found = await info.context.loaders.collections.load(collection_id)
        return Collection.from_proto(found) if found is not None else None

    @strawberry.field(description=(
        "Tokens of a collection and/or an owner: trait filters AND across traits and OR within one, ranges on "
        "numeric and date traits (both need `collection`)."
    ))
    async def tokens(
        self, info: Info, collection: CollectionKey | None = None, owner: str | None = None,
        traits: list[TraitFilter] | None = None, ranges: list[RangeFilter] | None = None, listed_only: bool = False,
        query: str | None = None, sort: TokenSort = TokenSort.TOKEN_NUMBER, first: int = 20,
        after: str | None = None,
    ) -> TokenConnection:
        if collection is None and owner is None:
            raise BadUserInput("Name a `collection`, an `owner`, or both.")
        if collection is None and (traits or ranges):
            raise BadUserInput("Trait and range filters need a `collection`.")
        page_window(first, after)  # a bad `first` or cursor is refused before any upstream call
        request = token_request(traits=traits, ranges=ranges, owner=owner, listed_only=listed_only, query=query,
                                sort=sort)
        if collection is not None:
            request.collection_id = await resolve_collection(info, collection)
        return await list_tokens(info, request, first, after)

    @strawberry.field(description="One token by chain, contract address and token number.")
    async def token(self, info: Info, chain: str, address: str, token_number: str) -> Token | None:
        key = token_key(TokenKey(chain=chain, address=address, token_number=token_number))
        reply = await info.context.clients.catalog.get_token(catalog_pb2.GetTokenRequest(key=key))
        info.context.loaders.tokens.prime(reply.token.id, reply.token)
        return Token.from_proto(reply.token, detailed=True)

    @strawberry.field(description="Activity of a collection, a token or an address (sender or recipient).")
    async def activity(
        self, info: Info, collection: CollectionKey | None = None, token: TokenKey | None = None,
        address: str | None = None, types: list[ActivityType] | None = None, first: int = 20,
        after: str | None = None,
    ) -> ActivityConnection:
        if collection is None and token is None and address is None:
            raise BadUserInput("Name a `collection`, a `token` or an `address`.")
        if types and ActivityType.UNSPECIFIED in types:
            raise BadUserInput("`types` must not hold UNSPECIFIED.")
        page_window(first, after)
        wallet = check_address(address, "address") if address is not None else ""
        key = token_key(token) if token is not None else None
        if collection is not None:
            _collection_lookup(collection)  # checked before the token lookup below may call upstream
        collection_id = await resolve_collection(info, collection) if collection is not None else ""
        token_id = ""
        if key is not None:
            found = (await info.context.clients.catalog.get_token(catalog_pb2.GetTokenRequest(key=key))).token
            info.context.loaders.tokens.prime(found.id, found)
            token_id = found.id
        return await list_activity(info, token_id=token_id, collection_id=collection_id, address=wallet, types=types,
                                   first=first, after=after)


@strawberry.type
class CatalogMutation:
    @strawberry.mutation(description=(
        "Queues a metadata refetch of one token or of every token of a collection (by slug). Signed-in users "
        "only; rate limited (RATE_LIMITED says how long to wait)."
    ))
    async def refresh_metadata(
        self, info: Info, token: TokenKey | None = None, collection_slug: str | None = None
    ) -> RefreshMetadataPayload:
        if (token is None) == (collection_slug is None):
            raise BadUserInput("Name exactly one of `token` and `collectionSlug`.")
        request = catalog_pb2.RefreshMetadataRequest()
        if token is not None:
            request.token_key.CopyFrom(token_key(token))
        slug = _text(collection_slug, "collectionSlug") if collection_slug is not None else None
        await info.context.viewer()
        if slug is not None:
            request.collection_id = await resolve_collection(info, CollectionKey(slug=slug))
        reply = await info.context.clients.catalog.refresh_metadata(request)
        stats = reply.stats if reply.HasField("stats") else None
        if stats is not None and stats.collection_id:
            with contextlib.suppress(KeyError):  # DataLoader.clear raises for keys it never loaded
                info.context.loaders.collection_stats.clear(stats.collection_id)
            info.context.loaders.collection_stats.prime(stats.collection_id, stats)
        return RefreshMetadataPayload(
            queued=reply.queued, stats=CollectionStats.from_proto(stats) if stats is not None else None
        )

"""Activity: mints, transfers, listings, offers, sales and burns of a token, a collection or an address,
newest first. Each event's token and collection come through the request's DataLoaders."""

# strawberry.field/mutation(...) with keyword arguments are typed as Any (they double as field specs).
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from mintplane.api.catalog.v1 import catalog_pb2
from mintplane.gateway.context import Info
from mintplane.gateway.pagination import page_window, paginate
from mintplane.gateway.schema.common import PageInfo, or_none, timestamp
from mintplane.gateway.schema.money import Price

if TYPE_CHECKING:
    from mintplane.gateway.schema.catalog import Collection, Token

_CATALOG = "mintplane.gateway.schema.catalog"


@strawberry.enum(description="Kind of an activity.")
class ActivityType(Enum):
    UNSPECIFIED = "UNSPECIFIED"
    MINT = "MINT"
    TRANSFER = "TRANSFER"
    LIST = "LIST"
    DELIST = "DELIST"
    OFFER = "OFFER"
    CANCEL_OFFER = "CANCEL_OFFER"
    SALE = "SALE"
    BURN = "BURN"


# Same names on both sides: ACTIVITY_TYPE_<NAME> is ActivityType.<NAME>.
_TYPES = {
    number: ActivityType[name.removeprefix("ACTIVITY_TYPE_")] for name, number in catalog_pb2.ActivityType.items()
}
_TYPES_TO_PROTO = {value: key for key, value in _TYPES.items()}


@strawberry.type(description="One event in a token's history.")
class Activity:
    id: strawberry.ID
    type: ActivityType
    from_address: str | None = strawberry.field(description="Sender, seller or bidder; null for mints.")
    to_address: str | None = strawberry.field(description="Recipient or buyer; null for burns.")
    price: Price | None = strawberry.field(description="For LIST, OFFER and SALE.")
    tx_hash: str | None
    occurred_at: datetime | None
    token_id: strawberry.Private[str]
    collection_id: strawberry.Private[str]

    @classmethod
    def from_proto(cls, activity: catalog_pb2.Activity) -> Activity:
        return cls(
            id=strawberry.ID(activity.id), type=_TYPES.get(activity.activity_type, ActivityType.UNSPECIFIED),
            from_address=or_none(activity.from_address), to_address=or_none(activity.to_address),
            price=Price.of(activity, "price"), tx_hash=or_none(activity.tx_hash),
            occurred_at=timestamp(activity, "occurred_at"), token_id=activity.token_id,
            collection_id=activity.collection_id,
        )

    @strawberry.field(description="The token (batched across the events of a response).")
    async def token(self, info: Info) -> Annotated[Token, strawberry.lazy(_CATALOG)] | None:
        from mintplane.gateway.schema.catalog import Token

        token = await info.context.loaders.tokens.load(self.token_id) if self.token_id else None
        return Token.from_proto(token) if token is not None else None

    @strawberry.field(description="The token's collection (batched across the events of a response).")
    async def collection(self, info: Info) -> Annotated[Collection, strawberry.lazy(_CATALOG)] | None:
        from mintplane.gateway.schema.catalog import Collection

        collection = await info.context.loaders.collections.load(self.collection_id) if self.collection_id else None
        return Collection.from_proto(collection) if collection is not None else None


@strawberry.type
class ActivityEdge:
    cursor: str
    node: Activity


@strawberry.type(description="A page of activity, newest first (Relay cursor connection).")
class ActivityConnection:
    edges: list[ActivityEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Total size when the service counts it cheaply, else 0.")


async def list_activity(
    info: Info, *, token_id: str = "", collection_id: str = "", address: str = "",
    types: list[ActivityType] | None = None, first: int, after: str | None,
) -> ActivityConnection:
    """One page of ListActivities as a connection; the caller has checked that one scope is set."""
    window = page_window(first, after)
    reply = await info.context.clients.catalog.list_activities(catalog_pb2.ListActivitiesRequest(
        token_id=token_id, collection_id=collection_id, address=address,
        activity_types=[_TYPES_TO_PROTO[kind] for kind in types or () if kind is not ActivityType.UNSPECIFIED],
        page=window.request,
    ))
    cut = paginate(window, list(reply.activities), reply.page)
    return ActivityConnection(
        edges=[ActivityEdge(cursor=cursor, node=Activity.from_proto(item)) for cursor, item in cut.items],
        page_info=PageInfo.of(cut), total_count=cut.total_count,
    )

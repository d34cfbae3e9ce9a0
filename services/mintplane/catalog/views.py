"""Catalog rows as protobuf messages (common.v1 conventions: lowercase addresses, decimal strings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from asyncpg import Record

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.common.v1 import common_pb2
from mintplane.common.timestamps import timestamp

STANDARDS = {"ERC721": common_pb2.TOKEN_STANDARD_ERC721, "ERC1155": common_pb2.TOKEN_STANDARD_ERC1155}
STANDARD_NAMES = {value: name for name, value in STANDARDS.items()}
STATUSES = {"pending": pb.COLLECTION_STATUS_PENDING, "live": pb.COLLECTION_STATUS_LIVE,
            "failed": pb.COLLECTION_STATUS_FAILED}
ACTIVITY_TYPES = {
    "mint": pb.ACTIVITY_TYPE_MINT, "transfer": pb.ACTIVITY_TYPE_TRANSFER, "list": pb.ACTIVITY_TYPE_LIST,
    "delist": pb.ACTIVITY_TYPE_DELIST, "offer": pb.ACTIVITY_TYPE_OFFER, "cancel_offer": pb.ACTIVITY_TYPE_CANCEL_OFFER,
    "sale": pb.ACTIVITY_TYPE_SALE, "burn": pb.ACTIVITY_TYPE_BURN,
}
ACTIVITY_NAMES = {value: name for name, value in ACTIVITY_TYPES.items()}
NATIVE = ("ETH", 18)
Row = Record | Mapping[str, Any]


def price(amount: Any) -> common_pb2.Price | None:
    if amount is None or amount == "":
        return None
    wei = amount if isinstance(amount, int | Decimal) else Decimal(str(amount))
    return common_pb2.Price(amount_wei=str(int(wei)), currency_symbol=NATIVE[0], decimals=NATIVE[1])


def collection(row: Row) -> pb.Collection:
    message = pb.Collection(
        id=str(row["id"]), slug=row["slug"], name=row["name"], description=row["description"] or "",
        chain=common_pb2.ChainRef(caip2=row["chain_id"]), contract_address=row["contract_address"] or "",
        creator=row["creator"] or "", owner=row["owner"] or "",
        standard=STANDARDS.get(row["collection_type"] or "", common_pb2.TOKEN_STANDARD_UNSPECIFIED),
        max_supply=row["max_supply"] if row["max_supply"] not in (None, "0") else "",
        total_supply=row["total_supply"] or "0",
        royalty_bps=(row["royalty_percentage"] or 0) * 100, is_verified=row["is_verified"],
        status=STATUSES.get(row["status"], pb.COLLECTION_STATUS_UNSPECIFIED),
        deploy_block=row["deploy_block"] or 0,
    )
    for field, value in (("mint_price", row["mint_price"]), ("floor_price", row["floor_price"]),
                         ("volume_traded", row["volume_traded"])):
        if (amount := price(value)) is not None:
            getattr(message, field).CopyFrom(amount)
    for field, value in (("created_at", row["created_at"]), ("live_at", row["live_at"])):
        if (stamp := timestamp(value)) is not None:
            getattr(message, field).CopyFrom(stamp)
    return message


def stats(row: Row) -> pb.CollectionStats:
    message = pb.CollectionStats(
        collection_id=str(row["collection_id"]), items_count=row["items_count"], owners_count=row["owners_count"],
        listed_count=row["listed_count"], sales_count=row["sales_count"],
        metadata_pending=row.get("metadata_pending") or 0, metadata_ok=row.get("metadata_ok") or 0,
        metadata_failed=row.get("metadata_failed") or 0,
    )
    if (computed := timestamp(row.get("rarity_computed_at"))) is not None:
        message.rarity_computed_at.CopyFrom(computed)
    if (floor := price(row["floor_price_native"])) is not None:
        message.floor_price.CopyFrom(floor)
    message.volume_traded.CopyFrom(price(row["volume_traded"] or 0) or common_pb2.Price())
    if (stamp := timestamp(row["updated_at"])) is not None:
        message.updated_at.CopyFrom(stamp)
    return message


METADATA_STATUSES = {"pending": pb.METADATA_STATUS_PENDING, "ok": pb.METADATA_STATUS_OK,
                     "failed": pb.METADATA_STATUS_FAILED}
UNCOUNTED_VALUE_TYPES = frozenset({"number", "date"})  # OpenRarity leaves numeric and date traits out


def decimal_text(value: Any) -> str:
    """A numeric column as the proto's decimal string (empty for NULL), without exponent notation."""
    if value is None:
        return ""
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    return text


def token_trait(trait: Row) -> pb.TokenTrait:
    return pb.TokenTrait(
        trait_id=str(trait["trait_id"]), trait_name=trait["trait_name"], trait_value_id=str(trait["trait_value_id"]),
        value=trait["value"] or "", display_type=trait["display_type"] or "", occurrences=trait["occurrences"],
        rarity_score=decimal_text(trait["rarity_score"]), value_number=decimal_text(trait.get("value_number")),
        meta=bool(trait.get("is_meta")), counted=trait.get("value_type") not in UNCOUNTED_VALUE_TYPES,
    )


def token(row: Row, traits: Sequence[Row] = ()) -> pb.Token:
    message = pb.Token(
        id=str(row["id"]), collection_id=str(row["collection_id"]),
        chain=common_pb2.ChainRef(caip2=row["chain_id"] or ""), contract_address=row["contract_address"] or "",
        token_number=row["token_number"],
        token_standard=STANDARDS.get(row["token_standard"] or "", common_pb2.TOKEN_STANDARD_UNSPECIFIED),
        name=row["name"] or "", image_url=row["image_url"] or "", metadata_url=row["metadata_url"] or "",
        owner_address=row["owner_address"] or "", burned=row["burned"],
        rarity_score=decimal_text(row.get("rarity_score")), rarity_rank=row.get("rarity_rank") or 0,
        description=row.get("description") or "", animation_url=row.get("animation_url") or "",
        external_url=row.get("external_url") or "",
        metadata_status=METADATA_STATUSES.get(row.get("metadata_status") or "", pb.METADATA_STATUS_UNSPECIFIED),
        metadata_error=row.get("metadata_error") or "",
    )
    for field, value in (("minted_at", row["minted_at"]), ("metadata_fetched_at", row.get("metadata_fetched_at")),
                         ("last_transferred_at", row.get("last_transfer_at"))):
        if (stamp := timestamp(value)) is not None:
            getattr(message, field).CopyFrom(stamp)
    if (best := price(row.get("best_listing_price"))) is not None:
        message.best_listing_price.CopyFrom(best)
    message.traits.extend(token_trait(trait) for trait in traits)
    return message


def explained_trait(line: Any) -> pb.TokenTrait:
    """One line of a rarity explanation (:class:`mintplane.catalog.rarity.ExplainedTrait`)."""
    return pb.TokenTrait(
        trait_id=str(line.trait_id), trait_name=line.trait_name,
        trait_value_id=str(line.trait_value_id) if line.trait_value_id is not None else "",
        value=line.value or "", display_type=line.display_type or "", occurrences=line.occurrences,
        rarity_score=decimal_text(line.contribution), value_number=decimal_text(line.value_number),
        missing=line.missing, meta=line.meta, counted=line.counted,
    )


def activity(row: Row) -> pb.Activity:
    message = pb.Activity(
        id=str(row["id"]), token_id=str(row["token_id"]),
        collection_id=str(row["collection_id"]) if row["collection_id"] is not None else "",
        activity_type=ACTIVITY_TYPES.get(row["type"], pb.ACTIVITY_TYPE_UNSPECIFIED),
        from_address=row["from_address"] or "", to_address=row["to_address"] or "", tx_hash=row["tx_hash"] or "",
    )
    if (amount := price(row["price_native"])) is not None:
        message.price.CopyFrom(amount)
    if (stamp := timestamp(row["timestamp"])) is not None:
        message.occurred_at.CopyFrom(stamp)
    return message

"""Rows of the `wallet` schema to API messages, and the API's enums to the strings stored in the rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from mintplane.api.common.v1 import common_pb2
from mintplane.api.wallet.v1 import wallet_pb2
from mintplane.wallet import addresses

TYPE_FROM_DB = {"eoa": wallet_pb2.WALLET_TYPE_EOA, "contract": wallet_pb2.WALLET_TYPE_CONTRACT}
ACTION_FROM_DB = {
    "linked": wallet_pb2.WALLET_ACTION_LINKED,
    "unlinked": wallet_pb2.WALLET_ACTION_UNLINKED,
    "set_primary": wallet_pb2.WALLET_ACTION_SET_PRIMARY,
    "label_changed": wallet_pb2.WALLET_ACTION_LABEL_CHANGED,
    "verified": wallet_pb2.WALLET_ACTION_VERIFIED,
    "verification_failed": wallet_pb2.WALLET_ACTION_VERIFICATION_FAILED,
    "signed_in": wallet_pb2.WALLET_ACTION_SIGNED_IN,
}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def wallet(row: Any) -> wallet_pb2.Wallet:
    address = row["address"]
    return wallet_pb2.Wallet(
        wallet_id=str(row["wallet_id"]),
        user_id=str(row["user_id"]),
        account_id=row["account_id"] or addresses.account_id(row["chain_id"], address),
        address=address,
        checksum_address=addresses.checksum(address),
        chain=common_pb2.ChainRef(caip2=row["chain_id"]),
        is_primary=row["is_primary"],
        wallet_type=TYPE_FROM_DB.get(row["type"], wallet_pb2.WALLET_TYPE_UNSPECIFIED),
        connector=row["connector"] or "",
        label=row["label"] or "",
        verified_at=timestamp(row["verified_at"]),
        created_at=timestamp(row["created_at"]),
        updated_at=timestamp(row["updated_at"]),
    )


def activity(row: Any) -> wallet_pb2.WalletActivity:
    metadata = Struct()
    metadata.update(row["metadata"] or {})
    return wallet_pb2.WalletActivity(
        id=str(row["id"]),
        wallet_id=str(row["wallet_id"]) if row["wallet_id"] else "",
        user_id=str(row["user_id"]) if row["user_id"] else "",
        action=ACTION_FROM_DB.get(row["action"], wallet_pb2.WALLET_ACTION_UNSPECIFIED),
        metadata=metadata,
        ip_address=str(row["ip_address"]) if row["ip_address"] is not None else "",
        user_agent=row["user_agent"] or "",
        created_at=timestamp(row["created_at"]),
    )

"""Types and helpers every domain module of the schema shares."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import strawberry

from mintplane.gateway.errors import BadUserInput
from mintplane.gateway.pagination import Page

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@strawberry.type(description="Relay page information of a connection (forward pagination only).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page, has_previous_page=False,
            start_cursor=page.start_cursor, end_cursor=page.end_cursor,
        )


def timestamp(message: Any, field: str) -> datetime | None:
    """A google.protobuf.Timestamp field as an aware datetime, None when unset."""
    if not message.HasField(field):
        return None
    value: datetime = getattr(message, field).ToDatetime(tzinfo=UTC)
    return value


def or_none(value: str) -> str | None:
    """Proto3 strings are '' when unset; GraphQL says null."""
    return value or None


def parse_id(value: str, what: str) -> str:
    """A lowercase UUID, or BAD_USER_INPUT naming the argument (before any upstream call)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise BadUserInput(f"`{what}` is not a valid id.") from None


def caip2_reference(caip2: str) -> int | None:
    """The numeric chain id of an `eip155:<n>` CAIP-2 id."""
    namespace, _, reference = caip2.partition(":")
    return int(reference) if namespace == "eip155" and reference.isdigit() else None


def check_address(address: str) -> str:
    if not _ADDRESS.match(address):
        raise BadUserInput("`address` must be a 0x-prefixed 20-byte hex address.")
    return address


def check_chain_id(chain_id: int) -> str:
    """The CAIP-2 id of a positive EIP-155 chain id."""
    if chain_id <= 0:
        raise BadUserInput("`chainId` must be a positive EIP-155 chain id.")
    return f"eip155:{chain_id}"

"""Relay-style cursors over the services' opaque page tokens.

Upstream List* RPCs hand out one token per page, while Relay wants a cursor per edge. A cursor here is
(page token, number of items to skip after it): any edge's cursor can be passed back as `after`, and the
gateway re-reads from that page token and drops the skipped items. The last edge of a page points at the
next page token directly, so following `endCursor` never skips anything.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mintplane.api.common.v1 import common_pb2
from mintplane.gateway.errors import BadUserInput

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
T = TypeVar("T")


def encode_cursor(page_token: str, skip: int) -> str:
    return base64.urlsafe_b64encode(f"{skip}:{page_token}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """(page token, skip) of a cursor; BAD_USER_INPUT for anything we did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        skip_text, page_token = raw.split(":", 1)
        skip = int(skip_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadUserInput("`after` is not a cursor returned by this API.") from None
    if not 0 <= skip <= MAX_PAGE_SIZE:
        raise BadUserInput("`after` is not a cursor returned by this API.")
    return page_token, skip


@dataclass(frozen=True)
class PageWindow:
    """What to ask upstream for `first` items after `after`, and how many leading items to drop."""

    request: common_pb2.PageRequest
    page_token: str
    skip: int
    first: int


def page_window(first: int | None, after: str | None) -> PageWindow:
    size = DEFAULT_PAGE_SIZE if first is None else first
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadUserInput(f"`first` must be between 1 and {MAX_PAGE_SIZE}.")
    page_token, skip = decode_cursor(after) if after else ("", 0)
    request = common_pb2.PageRequest(page_size=min(skip + size, MAX_PAGE_SIZE), page_token=page_token)
    return PageWindow(request=request, page_token=page_token, skip=skip, first=size)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of items with a cursor each, ready to become a GraphQL connection."""

    items: list[tuple[str, T]]
    has_next_page: bool
    total_count: int

    @property
    def start_cursor(self) -> str | None:
        return self.items[0][0] if self.items else None

    @property
    def end_cursor(self) -> str | None:
        return self.items[-1][0] if self.items else None


def paginate(window: PageWindow, items: Sequence[T], response: common_pb2.PageResponse) -> Page[T]:
    """Cut the upstream page to the requested window and give every item its cursor."""
    kept = list(items[window.skip : window.skip + window.first])
    consumed_all = window.skip + len(kept) == len(items)
    next_token = response.next_page_token
    cursors = [encode_cursor(window.page_token, window.skip + index + 1) for index in range(len(kept))]
    if kept and consumed_all and next_token:
        cursors[-1] = encode_cursor(next_token, 0)
    has_next = bool(next_token) or not consumed_all
    return Page(
        items=list(zip(cursors, kept, strict=True)), has_next_page=has_next, total_count=int(response.total_size)
    )

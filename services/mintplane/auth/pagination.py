"""Cursor pagination for ListSessions and ListLoginEvents (common.v1.PageRequest semantics).

A page token is an opaque keyset position (timestamp and id of the last item) plus a fingerprint of the
request's filters, so a token is refused (INVALID_ARGUMENT) when replayed with other parameters instead of
silently paging a different list. Keyset rather than offset: pages stay stable while new rows arrive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import datetime

from mintplane.api.common.v1 import common_pb2
from mintplane.auth.repository import Cursor
from mintplane.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TOKEN_CHARS = 512


def page_size(page: common_pb2.PageRequest) -> int:
    if page.page_size < 0:
        raise InvalidArgument("page.page_size must not be negative")
    return min(page.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]


def encode_token(cursor: Cursor, request_fingerprint: str) -> str:
    payload = json.dumps({"t": cursor.at.isoformat(), "i": cursor.id, "f": request_fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_token(token: str, request_fingerprint: str) -> Cursor | None:
    """The cursor of a page token ('' -> first page); INVALID_ARGUMENT when it is not one of ours for this request."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument("page.page_token is not valid")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = Cursor(at=datetime.fromisoformat(data["t"]), id=str(uuid.UUID(data["i"])))
        matches = data["f"] == request_fingerprint
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument("page.page_token is not valid") from None
    if not matches or cursor.at.tzinfo is None:
        raise InvalidArgument("page.page_token was issued for a different request")
    return cursor

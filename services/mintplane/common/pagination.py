"""Opaque keyset cursors on (created_at, id), the pagination List* RPCs over time-ordered rows use.

Keyset rather than offset: pages stay stable while rows are added at the head (new followers arrive all
the time), and each page is one index range scan whatever its depth. The token is base64url JSON; it names
the list it came from (`kind` + `scope`, e.g. followers of one user), so a token replayed against another
list is refused (common.proto: a token is only valid for the request that produced it). Tampering can only
move the cursor, which reveals nothing a caller could not page to anyway, so tokens are not signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mintplane.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TOKEN_CHARS = 512
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    key: uuid.UUID


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page.page_size may not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def scope_of(*parts: object) -> str:
    """A short fingerprint of a request's filters, to bind its tokens to them without echoing them."""
    return hashlib.sha256(json.dumps([str(part) for part in parts]).encode()).hexdigest()[:16]


def encode(kind: str, scope: str, cursor: Cursor) -> str:
    micros = (cursor.created_at - _EPOCH) // timedelta(microseconds=1)
    payload = json.dumps({"k": kind, "s": scope, "t": micros, "i": str(cursor.key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(token: str, kind: str, scope: str) -> Cursor | None:
    """The cursor in `token` (None for an empty token); INVALID_ARGUMENT if it is not one of this list's."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument("page.page_token is malformed")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data["k"] != kind or data["s"] != scope:
            raise InvalidArgument("page.page_token belongs to a different request")
        return Cursor(_EPOCH + timedelta(microseconds=int(data["t"])), uuid.UUID(str(data["i"])))
    except InvalidArgument:
        raise
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError) as exc:
        raise InvalidArgument("page.page_token is malformed") from exc

"""Opaque keyset page tokens for List* RPCs (common.v1 PageRequest).

Two kinds: cursors on (created_at, id) for time-ordered rows (:func:`encode`/:func:`decode`), and tokens
over any sort key (:func:`encode_key_token`/:func:`decode_key_token`) bound to a fingerprint of the
request's filters, for lists ordered by other columns (tokens, balances, transfers, checkpoints).

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
from typing import Any

from mintplane.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TOKEN_CHARS = 512
MAX_KEY_TOKEN_CHARS = 1024  # sort keys may hold uint256 token ids as decimal strings
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


def _fingerprint(params: Any) -> str:
    raw = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_key_token(key: list[Any], params: Any) -> str:
    """A token continuing after the item whose sort key is `key`, valid only for requests with `params`."""
    body = json.dumps({"k": key, "f": _fingerprint(params)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_key_token(token: str, params: Any, arity: int) -> list[Any] | None:
    """The key to continue after; None for the first page. INVALID_ARGUMENT for a foreign token."""
    if not token:
        return None
    if len(token) > MAX_KEY_TOKEN_CHARS:
        raise InvalidArgument("page.page_token is not a page token issued by this service")
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key, fingerprint = body["k"], body["f"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument("page.page_token is not a page token issued by this service") from None
    if not isinstance(key, list) or len(key) != arity or fingerprint != _fingerprint(params):
        raise InvalidArgument("page.page_token was issued for different request parameters; start without it")
    return key

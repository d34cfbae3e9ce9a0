"""Opaque keyset page tokens bound to the request parameters that produced them (common.v1 PageRequest).

A token carries the sort key of the last item served and a fingerprint of the request's filters: reused
with other filters it is refused (INVALID_ARGUMENT) instead of silently paging another list. Keyset, not
offset, so pages stay correct and cheap while rows are added.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from mintplane.api.common.v1 import common_pb2
from mintplane.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_MAX_TOKEN_CHARS = 1024


def page_size(page: common_pb2.PageRequest) -> int:
    if page.page_size < 0:
        raise InvalidArgument("page.page_size must not be negative")
    return min(page.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(params: Any) -> str:
    raw = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_token(key: list[Any], params: Any) -> str:
    body = json.dumps({"k": key, "f": _fingerprint(params)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_token(token: str, params: Any, arity: int) -> list[Any] | None:
    """The key to continue after; None for the first page. INVALID_ARGUMENT for a foreign token."""
    if not token:
        return None
    if len(token) > _MAX_TOKEN_CHARS:
        raise InvalidArgument("page.page_token is not a page token issued by this service")
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key, fingerprint = body["k"], body["f"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument("page.page_token is not a page token issued by this service") from None
    if not isinstance(key, list) or len(key) != arity or fingerprint != _fingerprint(params):
        raise InvalidArgument("page.page_token was issued for different request parameters; start without it")
    return key

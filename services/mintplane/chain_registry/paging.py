"""Opaque keyset page tokens, bound to the request parameters that produced them.

A token carries the sort key of the last item served and a fingerprint of the list's filters; reusing it
with other filters is INVALID_ARGUMENT (common.v1.PageRequest) instead of silently skipping rows.
Keyset rather than offset: pages stay correct and cheap while rows are added or removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from mintplane.chain_registry.validation import Problems


def _fingerprint(scope: str, params: object) -> str:
    raw = json.dumps([scope, params], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode(scope: str, params: object, after: int) -> str:
    body = json.dumps({"a": after, "f": _fingerprint(scope, params)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(problems: Problems, field: str, token: str, scope: str, params: object) -> int | None:
    """The key to continue after, or None for the first page (empty token) or a refused token."""
    if not token:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, fingerprint = body["a"], body["f"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        problems.add(field, "is not a page token issued by this service")
        return None
    if not isinstance(after, int) or fingerprint != _fingerprint(scope, params):
        problems.add(field, "was issued for different request parameters; start again without a page_token")
        return None
    return after

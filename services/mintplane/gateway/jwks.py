"""The public keys that verify access tokens, served at /.well-known/jwks.json from auth.GetJwks.

Verifiers fetch this often and the keys change rarely, so it is cached for `ttl` seconds; when the auth
service is briefly down, the last good copy is served rather than failing every verifier at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mintplane.api.auth.v1 import auth_pb2
from mintplane.gateway.clients import AuthClient

_MEMBERS = ("kid", "kty", "alg", "use", "crv", "x", "y", "n", "e")


def jwk_dict(key: auth_pb2.JsonWebKey) -> dict[str, str]:
    """RFC 7517 members of one key; members that don't apply to its type are left out, not empty."""
    return {name: value for name in _MEMBERS if (value := getattr(key, name))}


class JwksCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._value: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, auth: AuthClient) -> dict[str, Any]:
        if self._value is not None and time.monotonic() - self._fetched_at < self.ttl:
            return self._value
        async with self._lock:  # one upstream call when many requests find the cache stale together
            if self._value is not None and time.monotonic() - self._fetched_at < self.ttl:
                return self._value
            try:
                reply = await auth.get_jwks(auth_pb2.GetJwksRequest())
            except Exception:
                if self._value is None:
                    raise
                return self._value
            self._value = {"keys": [jwk_dict(key) for key in reply.keys]}
            self._fetched_at = time.monotonic()
            return self._value

"""The per-request context every resolver receives: upstream clients, DataLoaders, who is asking.

The viewer is resolved lazily and at most once per request: a public query never calls the auth service,
and a query touching the viewer from ten fields calls ValidateSession once.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from urllib.parse import urlsplit

from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from mintplane.api.auth.v1 import auth_pb2
from mintplane.gateway.clients import Clients
from mintplane.gateway.errors import GatewayError, Unauthenticated
from mintplane.gateway.loaders import Loaders
from mintplane.gateway.settings import GatewaySettings

_BEARER = re.compile(r"^\s*Bearer\s+(?P<token>[A-Za-z0-9\-._~+/]+=*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Identity:
    """Who the access token belongs to (auth.ValidateSession)."""

    user_id: str
    session_id: str
    address: str
    chain: str
    expires_at: datetime | None


@dataclass(frozen=True)
class ClientInfo:
    """What the gateway forwards about the caller to the services (sessions, login events, audit logs)."""

    ip_address: str = ""
    user_agent: str = ""
    origin: str = ""


def parse_bearer(header: str | None) -> str | None:
    """The access token of an `Authorization: Bearer` header; UNAUTHENTICATED when the header is malformed."""
    if header is None or not header.strip():
        return None
    match = _BEARER.match(header)
    if match is None:
        raise Unauthenticated("The Authorization header must be `Bearer <access token>`.")
    return match.group("token")


class GatewayContext(BaseContext):
    def __init__(
        self, *, clients: Clients, settings: GatewaySettings, authorization: str | None, client: ClientInfo
    ) -> None:
        super().__init__()
        self.clients = clients
        self.settings = settings
        self.client = client
        self._authorization = authorization
        self._viewer_lock = asyncio.Lock()
        self._viewer: Identity | GatewayError | None = None

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.clients)

    @property
    def has_credentials(self) -> bool:
        return bool(self._authorization and self._authorization.strip())

    async def viewer(self) -> Identity:
        """The signed-in caller, or UNAUTHENTICATED (no, malformed, expired or revoked token)."""
        async with self._viewer_lock:
            if self._viewer is None:
                self._viewer = await self._resolve_viewer()
        if isinstance(self._viewer, GatewayError):
            raise type(self._viewer)(self._viewer.message)
        return self._viewer

    async def viewer_or_none(self) -> Identity | None:
        """The caller when signed in with a valid token; None otherwise (for public fields)."""
        if not self.has_credentials:
            return None
        try:
            return await self.viewer()
        except Unauthenticated:
            return None

    async def _resolve_viewer(self) -> Identity | GatewayError:
        try:
            token = parse_bearer(self._authorization)
            if token is None:
                return Unauthenticated("Sign in required.")
            reply = await self.clients.auth.validate_session(auth_pb2.ValidateSessionRequest(access_token=token))
        except Unauthenticated as exc:
            return exc
        return Identity(
            user_id=reply.user_id,
            session_id=reply.session_id,
            address=reply.address,
            chain=reply.chain.caip2,
            expires_at=reply.expires_at.ToDatetime(tzinfo=UTC) if reply.HasField("expires_at") else None,
        )

    def signing_origin(self, domain: str | None, uri: str | None) -> tuple[str, str]:
        """EIP-4361 `domain` and `URI` for a message to sign: the client's, else the browser's Origin, else
        the configured default. The auth and wallet services decide whether they are allowed."""
        origin = _origin_parts(self.client.origin)
        if not domain:
            domain = origin[1] if origin else self.settings.siwe_domain
        if not uri:
            uri = f"{origin[0]}://{origin[1]}" if origin and origin[1] == domain else f"https://{domain}"
        return domain, uri


def _origin_parts(origin: str) -> tuple[str, str] | None:
    """(scheme, host[:port]) of an Origin header, when it is a usable one."""
    if not origin or origin == "null":
        return None
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.scheme, parts.netloc


Info = StrawberryInfo[GatewayContext, None]

"""What auth asks other services: who owns an address (wallet), create users (user), chain RPC (registry).

The sign-in flow depends on the :class:`Identity` and :class:`RpcEndpoints` protocols, not on gRPC, so unit
tests can swap in fakes of these interfaces. The gRPC implementations map transport failures to UNAVAILABLE
(retryable) with the name of the service that failed.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Protocol

import grpc

from mintplane.api.chain_registry.v1 import chain_registry_pb2, chain_registry_pb2_grpc
from mintplane.api.user.v1 import user_pb2, user_pb2_grpc
from mintplane.api.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from mintplane.auth.errors import Outcome, SignInRejected
from mintplane.auth.settings import DEV_CHAIN
from mintplane.common.errors import Unavailable
from mintplane.common.log import get_logger

log = get_logger(__name__)


class UserState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"
    MISSING = "missing"


class Identity(Protocol):
    async def user_for_address(self, address: str) -> str | None:
        """Id of the user the address is linked to, or None."""

    async def user_state(self, user_id: str) -> UserState: ...

    async def create_user(self, user_id: str) -> None:
        """Create (idempotently, by id) an empty user."""

    async def link_wallet(
        self, *, user_id: str, message: str, signature: str, ip_address: str, user_agent: str
    ) -> bool:
        """Link the message's signer to the user; False when the address is already another user's."""


class RpcEndpoints(Protocol):
    """Where to send JSON-RPC for a chain (contract-wallet signature checks); None when none is known."""

    async def rpc_url(self, caip2: str) -> str | None: ...


def _unavailable(service: str, exc: grpc.aio.AioRpcError) -> Unavailable:
    log.warning("dependency call failed", dependency=service, code=exc.code().name)
    return Unavailable(f"the {service} service is unavailable ({exc.code().name}); try again")


_USER_STATE = {
    user_pb2.USER_STATUS_ACTIVE: UserState.ACTIVE,
    user_pb2.USER_STATUS_SUSPENDED: UserState.SUSPENDED,
    user_pb2.USER_STATUS_DELETED: UserState.DELETED,
}


class GrpcIdentity:
    """Identity over the user (50052) and wallet (50053) services."""

    def __init__(self, user_channel: grpc.aio.Channel, wallet_channel: grpc.aio.Channel, timeout: float) -> None:
        self._users = user_pb2_grpc.UserServiceStub(user_channel)
        self._wallets = wallet_pb2_grpc.WalletServiceStub(wallet_channel)
        self._timeout = timeout

    async def user_for_address(self, address: str) -> str | None:
        try:
            response = await self._wallets.GetWalletByAddress(
                wallet_pb2.GetWalletByAddressRequest(address=address), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise _unavailable("wallet", exc) from None
        return response.wallet.user_id or None

    async def user_state(self, user_id: str) -> UserState:
        try:
            response = await self._users.GetUser(user_pb2.GetUserRequest(user_id=user_id), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return UserState.MISSING
            raise _unavailable("user", exc) from None
        return _USER_STATE.get(response.user.status, UserState.ACTIVE)

    async def create_user(self, user_id: str) -> None:
        try:
            await self._users.CreateUser(user_pb2.CreateUserRequest(user_id=user_id), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _unavailable("user", exc) from None

    async def link_wallet(
        self, *, user_id: str, message: str, signature: str, ip_address: str, user_agent: str
    ) -> bool:
        request = wallet_pb2.LinkWalletRequest(
            user_id=user_id, message=message, signature=signature, make_primary=True, ip_address=ip_address,
            user_agent=user_agent,
        )
        try:
            await self._wallets.LinkWallet(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return False
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                raise SignInRejected(
                    Outcome.BAD_SIGNATURE, f"the wallet service refused the sign-in proof: {exc.details()}"
                ) from None
            raise _unavailable("wallet", exc) from None
        return True


class RegistryRpcEndpoints:
    """Chain RPC URLs from the chain registry's GetChainConfig, cached briefly per chain.

    Only endpoints without credentials are used (credentials live in Kubernetes Secrets the auth service
    does not read). While the registry knows no endpoint for the dev chain ``eip155:31337`` (or does not
    answer), ``fallback_url`` (settings ``eth_rpc_url``) serves it, so local sign-ins with contract
    wallets work against anvil; no other chain ever falls back.
    """

    def __init__(
        self, channel: grpc.aio.Channel, *, timeout: float, fallback_url: str | None, ttl_seconds: float = 60.0
    ) -> None:
        self._registry = chain_registry_pb2_grpc.ChainRegistryServiceStub(channel)
        self._timeout = timeout
        self._fallback_url = fallback_url
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def rpc_url(self, caip2: str) -> str | None:
        cached = self._cache.get(caip2)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        url, ttl = await self._lookup(caip2)
        if url is None and caip2 == DEV_CHAIN and self._fallback_url:
            log.info("using the dev RPC fallback", chain=caip2)
            url = self._fallback_url
        self._cache[caip2] = (time.monotonic() + ttl, url)
        return url

    async def _lookup(self, caip2: str) -> tuple[str | None, float]:
        try:
            config = await self._registry.GetChainConfig(
                chain_registry_pb2.GetChainConfigRequest(caip2=caip2), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            log.info("chain registry lookup failed", chain=caip2, code=exc.code().name)
            return None, min(self._ttl, 5.0)
        for endpoint in config.endpoints:
            if endpoint.auth_type in (
                chain_registry_pb2.ENDPOINT_AUTH_TYPE_UNSPECIFIED, chain_registry_pb2.ENDPOINT_AUTH_TYPE_NONE
            ) and endpoint.url.startswith(("http://", "https://")):
                return endpoint.url, self._ttl
        return None, self._ttl

"""The gateway's view of its upstream services: one small typed interface per service.

Resolvers depend on these Protocols, never on gRPC: tests pass fakes, production passes the gRPC-backed
implementations below. Those share one channel per upstream (HTTP/2 multiplexes every request of the
process over it), put a deadline and the request id on every call, and turn a failed status into the
error the client should see (errors.from_status).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mintplane.api.auth.v1 import auth_pb2, auth_pb2_grpc
from mintplane.api.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from mintplane.api.chain_registry.v1 import chain_registry_pb2, chain_registry_pb2_grpc
from mintplane.api.media.v1 import media_pb2, media_pb2_grpc
from mintplane.api.user.v1 import user_pb2, user_pb2_grpc
from mintplane.api.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from mintplane.gateway.errors import from_status

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# Set per HTTP request by the app's middleware; forwarded to upstreams so one id ties the logs together.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class AuthClient(Protocol):
    async def create_nonce(self, request: auth_pb2.CreateNonceRequest) -> auth_pb2.CreateNonceResponse: ...
    async def sign_in(self, request: auth_pb2.SignInRequest) -> auth_pb2.SignInResponse: ...
    async def refresh(self, request: auth_pb2.RefreshRequest) -> auth_pb2.RefreshResponse: ...
    async def sign_out(self, request: auth_pb2.SignOutRequest) -> auth_pb2.SignOutResponse: ...
    async def validate_session(
        self, request: auth_pb2.ValidateSessionRequest
    ) -> auth_pb2.ValidateSessionResponse: ...
    async def list_sessions(self, request: auth_pb2.ListSessionsRequest) -> auth_pb2.ListSessionsResponse: ...
    async def revoke_session(self, request: auth_pb2.RevokeSessionRequest) -> auth_pb2.RevokeSessionResponse: ...
    async def list_login_events(
        self, request: auth_pb2.ListLoginEventsRequest
    ) -> auth_pb2.ListLoginEventsResponse: ...
    async def get_jwks(self, request: auth_pb2.GetJwksRequest) -> auth_pb2.GetJwksResponse: ...


class UserClient(Protocol):
    async def get_user(self, request: user_pb2.GetUserRequest) -> user_pb2.GetUserResponse: ...
    async def get_user_by_username(
        self, request: user_pb2.GetUserByUsernameRequest
    ) -> user_pb2.GetUserByUsernameResponse: ...
    async def batch_get_users(self, request: user_pb2.BatchGetUsersRequest) -> user_pb2.BatchGetUsersResponse: ...
    async def update_profile(self, request: user_pb2.UpdateProfileRequest) -> user_pb2.UpdateProfileResponse: ...
    async def get_preferences(self, request: user_pb2.GetPreferencesRequest) -> user_pb2.GetPreferencesResponse: ...
    async def update_preferences(
        self, request: user_pb2.UpdatePreferencesRequest
    ) -> user_pb2.UpdatePreferencesResponse: ...
    async def batch_get_stats(self, request: user_pb2.BatchGetStatsRequest) -> user_pb2.BatchGetStatsResponse: ...
    async def follow(self, request: user_pb2.FollowRequest) -> user_pb2.FollowResponse: ...
    async def unfollow(self, request: user_pb2.UnfollowRequest) -> user_pb2.UnfollowResponse: ...
    async def list_followers(self, request: user_pb2.ListFollowersRequest) -> user_pb2.ListFollowersResponse: ...
    async def list_following(self, request: user_pb2.ListFollowingRequest) -> user_pb2.ListFollowingResponse: ...
    async def is_following(self, request: user_pb2.IsFollowingRequest) -> user_pb2.IsFollowingResponse: ...


class WalletClient(Protocol):
    async def create_link_challenge(
        self, request: wallet_pb2.CreateLinkChallengeRequest
    ) -> wallet_pb2.CreateLinkChallengeResponse: ...
    async def link_wallet(self, request: wallet_pb2.LinkWalletRequest) -> wallet_pb2.LinkWalletResponse: ...
    async def unlink_wallet(self, request: wallet_pb2.UnlinkWalletRequest) -> wallet_pb2.UnlinkWalletResponse: ...
    async def set_primary_wallet(
        self, request: wallet_pb2.SetPrimaryWalletRequest
    ) -> wallet_pb2.SetPrimaryWalletResponse: ...
    async def update_wallet_label(
        self, request: wallet_pb2.UpdateWalletLabelRequest
    ) -> wallet_pb2.UpdateWalletLabelResponse: ...
    async def list_wallets(self, request: wallet_pb2.ListWalletsRequest) -> wallet_pb2.ListWalletsResponse: ...
    async def batch_list_wallets(
        self, request: wallet_pb2.BatchListWalletsRequest
    ) -> wallet_pb2.BatchListWalletsResponse: ...
    async def batch_get_wallets_by_address(
        self, request: wallet_pb2.BatchGetWalletsByAddressRequest
    ) -> wallet_pb2.BatchGetWalletsByAddressResponse: ...


class CatalogClient(Protocol):
    """The catalog's read side (collections, tokens, traits, activity) and the metadata refresh."""

    async def list_collections(
        self, request: catalog_pb2.ListCollectionsRequest
    ) -> catalog_pb2.ListCollectionsResponse: ...
    async def get_collection_by_slug(
        self, request: catalog_pb2.GetCollectionBySlugRequest
    ) -> catalog_pb2.GetCollectionBySlugResponse: ...
    async def get_collection_by_contract(
        self, request: catalog_pb2.GetCollectionByContractRequest
    ) -> catalog_pb2.GetCollectionByContractResponse: ...
    async def batch_get_collections(
        self, request: catalog_pb2.BatchGetCollectionsRequest
    ) -> catalog_pb2.BatchGetCollectionsResponse: ...
    async def batch_get_collection_stats(
        self, request: catalog_pb2.BatchGetCollectionStatsRequest
    ) -> catalog_pb2.BatchGetCollectionStatsResponse: ...
    async def get_token(self, request: catalog_pb2.GetTokenRequest) -> catalog_pb2.GetTokenResponse: ...
    async def batch_get_tokens(
        self, request: catalog_pb2.BatchGetTokensRequest
    ) -> catalog_pb2.BatchGetTokensResponse: ...
    async def list_tokens(self, request: catalog_pb2.ListTokensRequest) -> catalog_pb2.ListTokensResponse: ...
    async def list_traits(self, request: catalog_pb2.ListTraitsRequest) -> catalog_pb2.ListTraitsResponse: ...
    async def refresh_metadata(
        self, request: catalog_pb2.RefreshMetadataRequest
    ) -> catalog_pb2.RefreshMetadataResponse: ...
    async def list_activities(
        self, request: catalog_pb2.ListActivitiesRequest
    ) -> catalog_pb2.ListActivitiesResponse: ...


class ChainRegistryClient(Protocol):
    """What the public API shows of the registry: chains and their endpoints' probed heads (never URLs)."""

    async def list_chains(
        self, request: chain_registry_pb2.ListChainsRequest
    ) -> chain_registry_pb2.ListChainsResponse: ...
    async def get_chain(self, request: chain_registry_pb2.GetChainRequest) -> chain_registry_pb2.GetChainResponse: ...
    async def list_endpoints(
        self, request: chain_registry_pb2.ListEndpointsRequest
    ) -> chain_registry_pb2.ListEndpointsResponse: ...


class MediaClient(Protocol):
    """Uploads and content bytes (POST/GET /media): streaming calls, so not part of Clients, whose calls the
    result cache wraps one request -> one response."""

    async def create_upload(self, request: media_pb2.CreateUploadRequest) -> media_pb2.CreateUploadResponse: ...
    async def upload_chunk(
        self, requests: AsyncIterable[media_pb2.UploadChunkRequest]
    ) -> media_pb2.UploadChunkResponse: ...
    def read_media(
        self, request: media_pb2.ReadMediaRequest
    ) -> AsyncGenerator[media_pb2.ReadMediaResponse, None]: ...


@dataclass(frozen=True)
class Clients:
    """Everything a request may call upstream."""

    auth: AuthClient
    user: UserClient
    wallet: WalletClient
    catalog: CatalogClient
    chain_registry: ChainRegistryClient


class _Caller:
    """Calls one upstream with a deadline and the request id, and maps a failed status to a client error."""

    def __init__(self, service: str, timeout: float) -> None:
        self._service = service
        self._timeout = timeout

    async def __call__(self, method: Callable[..., Awaitable[Resp]], name: str, request: Any) -> Resp:
        rid = request_id.get()
        metadata = (("x-request-id", rid),) if rid else None
        try:
            return await method(request, timeout=self._timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_status(exc.code(), exc.details() or "", service=self._service, method=name) from None


class GrpcAuthClient:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._call = _Caller("auth", timeout)

    async def create_nonce(self, request: auth_pb2.CreateNonceRequest) -> auth_pb2.CreateNonceResponse:
        return await self._call(self._stub.CreateNonce, "CreateNonce", request)

    async def sign_in(self, request: auth_pb2.SignInRequest) -> auth_pb2.SignInResponse:
        return await self._call(self._stub.SignIn, "SignIn", request)

    async def refresh(self, request: auth_pb2.RefreshRequest) -> auth_pb2.RefreshResponse:
        return await self._call(self._stub.Refresh, "Refresh", request)

    async def sign_out(self, request: auth_pb2.SignOutRequest) -> auth_pb2.SignOutResponse:
        return await self._call(self._stub.SignOut, "SignOut", request)

    async def validate_session(self, request: auth_pb2.ValidateSessionRequest) -> auth_pb2.ValidateSessionResponse:
        return await self._call(self._stub.ValidateSession, "ValidateSession", request)

    async def list_sessions(self, request: auth_pb2.ListSessionsRequest) -> auth_pb2.ListSessionsResponse:
        return await self._call(self._stub.ListSessions, "ListSessions", request)

    async def revoke_session(self, request: auth_pb2.RevokeSessionRequest) -> auth_pb2.RevokeSessionResponse:
        return await self._call(self._stub.RevokeSession, "RevokeSession", request)

    async def list_login_events(self, request: auth_pb2.ListLoginEventsRequest) -> auth_pb2.ListLoginEventsResponse:
        return await self._call(self._stub.ListLoginEvents, "ListLoginEvents", request)

    async def get_jwks(self, request: auth_pb2.GetJwksRequest) -> auth_pb2.GetJwksResponse:
        return await self._call(self._stub.GetJwks, "GetJwks", request)


class GrpcUserClient:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._stub = user_pb2_grpc.UserServiceStub(channel)
        self._call = _Caller("user", timeout)

    async def get_user(self, request: user_pb2.GetUserRequest) -> user_pb2.GetUserResponse:
        return await self._call(self._stub.GetUser, "GetUser", request)

    async def get_user_by_username(
        self, request: user_pb2.GetUserByUsernameRequest
    ) -> user_pb2.GetUserByUsernameResponse:
        return await self._call(self._stub.GetUserByUsername, "GetUserByUsername", request)

    async def batch_get_users(self, request: user_pb2.BatchGetUsersRequest) -> user_pb2.BatchGetUsersResponse:
        return await self._call(self._stub.BatchGetUsers, "BatchGetUsers", request)

    async def update_profile(self, request: user_pb2.UpdateProfileRequest) -> user_pb2.UpdateProfileResponse:
        return await self._call(self._stub.UpdateProfile, "UpdateProfile", request)

    async def get_preferences(self, request: user_pb2.GetPreferencesRequest) -> user_pb2.GetPreferencesResponse:
        return await self._call(self._stub.GetPreferences, "GetPreferences", request)

    async def update_preferences(
        self, request: user_pb2.UpdatePreferencesRequest
    ) -> user_pb2.UpdatePreferencesResponse:
        return await self._call(self._stub.UpdatePreferences, "UpdatePreferences", request)

    async def batch_get_stats(self, request: user_pb2.BatchGetStatsRequest) -> user_pb2.BatchGetStatsResponse:
        return await self._call(self._stub.BatchGetStats, "BatchGetStats", request)

    async def follow(self, request: user_pb2.FollowRequest) -> user_pb2.FollowResponse:
        return await self._call(self._stub.Follow, "Follow", request)

    async def unfollow(self, request: user_pb2.UnfollowRequest) -> user_pb2.UnfollowResponse:
        return await self._call(self._stub.Unfollow, "Unfollow", request)

    async def list_followers(self, request: user_pb2.ListFollowersRequest) -> user_pb2.ListFollowersResponse:
        return await self._call(self._stub.ListFollowers, "ListFollowers", request)

    async def list_following(self, request: user_pb2.ListFollowingRequest) -> user_pb2.ListFollowingResponse:
        return await self._call(self._stub.ListFollowing, "ListFollowing", request)

    async def is_following(self, request: user_pb2.IsFollowingRequest) -> user_pb2.IsFollowingResponse:
        return await self._call(self._stub.IsFollowing, "IsFollowing", request)


class GrpcWalletClient:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._stub = wallet_pb2_grpc.WalletServiceStub(channel)
        self._call = _Caller("wallet", timeout)

    async def create_link_challenge(
        self, request: wallet_pb2.CreateLinkChallengeRequest
    ) -> wallet_pb2.CreateLinkChallengeResponse:
        return await self._call(self._stub.CreateLinkChallenge, "CreateLinkChallenge", request)

    async def link_wallet(self, request: wallet_pb2.LinkWalletRequest) -> wallet_pb2.LinkWalletResponse:
        return await self._call(self._stub.LinkWallet, "LinkWallet", request)

    async def unlink_wallet(self, request: wallet_pb2.UnlinkWalletRequest) -> wallet_pb2.UnlinkWalletResponse:
        return await self._call(self._stub.UnlinkWallet, "UnlinkWallet", request)

    async def set_primary_wallet(
        self, request: wallet_pb2.SetPrimaryWalletRequest
    ) -> wallet_pb2.SetPrimaryWalletResponse:
        return await self._call(self._stub.SetPrimaryWallet, "SetPrimaryWallet", request)

    async def update_wallet_label(
        self, request: wallet_pb2.UpdateWalletLabelRequest
    ) -> wallet_pb2.UpdateWalletLabelResponse:
        return await self._call(self._stub.UpdateWalletLabel, "UpdateWalletLabel", request)

    async def list_wallets(self, request: wallet_pb2.ListWalletsRequest) -> wallet_pb2.ListWalletsResponse:
        return await self._call(self._stub.ListWallets, "ListWallets", request)

    async def batch_list_wallets(
        self, request: wallet_pb2.BatchListWalletsRequest
    ) -> wallet_pb2.BatchListWalletsResponse:
        return await self._call(self._stub.BatchListWallets, "BatchListWallets", request)

    async def batch_get_wallets_by_address(
        self, request: wallet_pb2.BatchGetWalletsByAddressRequest
    ) -> wallet_pb2.BatchGetWalletsByAddressResponse:
        return await self._call(self._stub.BatchGetWalletsByAddress, "BatchGetWalletsByAddress", request)


class GrpcCatalogClient:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        self._call = _Caller("catalog", timeout)

    async def list_collections(
        self, request: catalog_pb2.ListCollectionsRequest
    ) -> catalog_pb2.ListCollectionsResponse:
        return await self._call(self._stub.ListCollections, "ListCollections", request)

    async def get_collection_by_slug(
        self, request: catalog_pb2.GetCollectionBySlugRequest
    ) -> catalog_pb2.GetCollectionBySlugResponse:
        return await self._call(self._stub.GetCollectionBySlug, "GetCollectionBySlug", request)

    async def get_collection_by_contract(
        self, request: catalog_pb2.GetCollectionByContractRequest
    ) -> catalog_pb2.GetCollectionByContractResponse:
        return await self._call(self._stub.GetCollectionByContract, "GetCollectionByContract", request)

    async def batch_get_collections(
        self, request: catalog_pb2.BatchGetCollectionsRequest
    ) -> catalog_pb2.BatchGetCollectionsResponse:
        return await self._call(self._stub.BatchGetCollections, "BatchGetCollections", request)

    async def batch_get_collection_stats(
        self, request: catalog_pb2.BatchGetCollectionStatsRequest
    ) -> catalog_pb2.BatchGetCollectionStatsResponse:
        return await self._call(self._stub.BatchGetCollectionStats, "BatchGetCollectionStats", request)

    async def get_token(self, request: catalog_pb2.GetTokenRequest) -> catalog_pb2.GetTokenResponse:
        return await self._call(self._stub.GetToken, "GetToken", request)

    async def batch_get_tokens(self, request: catalog_pb2.BatchGetTokensRequest) -> catalog_pb2.BatchGetTokensResponse:
        return await self._call(self._stub.BatchGetTokens, "BatchGetTokens", request)

    async def list_tokens(self, request: catalog_pb2.ListTokensRequest) -> catalog_pb2.ListTokensResponse:
        return await self._call(self._stub.ListTokens, "ListTokens", request)

    async def list_traits(self, request: catalog_pb2.ListTraitsRequest) -> catalog_pb2.ListTraitsResponse:
        return await self._call(self._stub.ListTraits, "ListTraits", request)

    async def refresh_metadata(
        self, request: catalog_pb2.RefreshMetadataRequest
    ) -> catalog_pb2.RefreshMetadataResponse:
        return await self._call(self._stub.RefreshMetadata, "RefreshMetadata", request)

    async def list_activities(
        self, request: catalog_pb2.ListActivitiesRequest
    ) -> catalog_pb2.ListActivitiesResponse:
        return await self._call(self._stub.ListActivities, "ListActivities", request)


class GrpcChainRegistryClient:
    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._stub = chain_registry_pb2_grpc.ChainRegistryServiceStub(channel)
        self._call = _Caller("chain_registry", timeout)

    async def list_chains(
        self, request: chain_registry_pb2.ListChainsRequest
    ) -> chain_registry_pb2.ListChainsResponse:
        return await self._call(self._stub.ListChains, "ListChains", request)

    async def get_chain(self, request: chain_registry_pb2.GetChainRequest) -> chain_registry_pb2.GetChainResponse:
        return await self._call(self._stub.GetChain, "GetChain", request)

    async def list_endpoints(
        self, request: chain_registry_pb2.ListEndpointsRequest
    ) -> chain_registry_pb2.ListEndpointsResponse:
        return await self._call(self._stub.ListEndpoints, "ListEndpoints", request)


class GrpcMediaClient:
    """`timeout` bounds a whole transfer (an upload stream, a download), so it is the media timeout, longer
    than the one of ordinary calls."""

    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._stub = media_pb2_grpc.MediaServiceStub(channel)
        self._call = _Caller("media", timeout)
        self._timeout = timeout

    async def create_upload(self, request: media_pb2.CreateUploadRequest) -> media_pb2.CreateUploadResponse:
        return await self._call(self._stub.CreateUpload, "CreateUpload", request)

    async def upload_chunk(
        self, requests: AsyncIterable[media_pb2.UploadChunkRequest]
    ) -> media_pb2.UploadChunkResponse:
        return await self._call(self._stub.UploadChunk, "UploadChunk", requests)

    async def read_media(
        self, request: media_pb2.ReadMediaRequest
    ) -> AsyncGenerator[media_pb2.ReadMediaResponse, None]:
        """The stream's messages; leaving the iteration early (a 304, a client gone) cancels the call."""
        rid = request_id.get()
        call = self._stub.ReadMedia(request, timeout=self._timeout,
                                    metadata=(("x-request-id", rid),) if rid else None)
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as exc:
            raise from_status(exc.code(), exc.details() or "", service="media", method="ReadMedia") from None
        finally:
            call.cancel()


# Full proto service names, for per-service readiness checks.
UPSTREAM_SERVICES: dict[str, str] = {
    "auth": auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
    "user": user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,
    "wallet": wallet_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name,
    "catalog": catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
    "chain_registry": chain_registry_pb2.DESCRIPTOR.services_by_name["ChainRegistryService"].full_name,
    "media": media_pb2.DESCRIPTOR.services_by_name["MediaService"].full_name,
}

_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
)


class ChannelPool:
    """One long-lived channel per upstream, opened at startup and closed at shutdown.

    `interceptors` (grpc.aio client interceptors) see every call of every channel: tests count calls with
    one, and tracing or metrics can hook in the same way."""

    def __init__(
        self, addresses: dict[str, str], *, interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None
    ) -> None:
        self.addresses = dict(addresses)
        self.channels: dict[str, grpc.aio.Channel] = {
            name: grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS, interceptors=interceptors)
            for name, address in addresses.items()
        }

    def clients(self, timeout: float) -> Clients:
        return Clients(
            auth=GrpcAuthClient(self.channels["auth"], timeout),
            user=GrpcUserClient(self.channels["user"], timeout),
            wallet=GrpcWalletClient(self.channels["wallet"], timeout),
            catalog=GrpcCatalogClient(self.channels["catalog"], timeout),
            chain_registry=GrpcChainRegistryClient(self.channels["chain_registry"], timeout),
        )

    def media(self, timeout: float) -> GrpcMediaClient | None:
        """The media client when a media address is configured (the upload and content routes need it)."""
        channel = self.channels.get("media")
        return GrpcMediaClient(channel, timeout) if channel is not None else None

    async def health(self, timeout: float) -> dict[str, str]:
        """grpc.health.v1 status of each upstream's service (SERVING, NOT_SERVING, or why it failed)."""
        async def check(name: str) -> tuple[str, str]:
            stub = health_pb2_grpc.HealthStub(self.channels[name])
            try:
                request = health_pb2.HealthCheckRequest(service=UPSTREAM_SERVICES[name])
                reply = await stub.Check(request, timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                return name, exc.code().name
            return name, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

        return dict(await asyncio.gather(*(check(name) for name in self.channels)))

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)

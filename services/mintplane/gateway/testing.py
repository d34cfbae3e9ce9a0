"""In-memory fakes of the gateway's client interfaces, for tests that need no running service.

They keep the contracts the resolvers rely on (ownership checks, NOT_FOUND for unknown ids, opaque page
tokens, batch RPCs omitting unknown ids) and count every call, so tests can assert how many upstream round
trips a query costs. They do not verify signatures: that is the auth and wallet services' job, tested there
and end to end.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from mintplane.api.auth.v1 import auth_pb2
from mintplane.api.catalog.v1 import catalog_pb2
from mintplane.api.chain_registry.v1 import chain_registry_pb2
from mintplane.api.common.v1 import common_pb2
from mintplane.api.user.v1 import user_pb2
from mintplane.api.wallet.v1 import wallet_pb2
from mintplane.gateway.clients import Clients
from mintplane.gateway.context import ClientInfo, GatewayContext
from mintplane.gateway.errors import from_status
from mintplane.gateway.settings import GatewaySettings


def _fail(status: grpc.StatusCode, details: str) -> Exception:
    return from_status(status, details, service="fake", method="fake")


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _page(items: list[Any], page: common_pb2.PageRequest) -> tuple[list[Any], common_pb2.PageResponse]:
    size = min(page.page_size or 20, 100)
    start = int(page.page_token or 0)
    chunk = items[start : start + size]
    next_token = str(start + size) if start + size < len(items) else ""
    return chunk, common_pb2.PageResponse(next_page_token=next_token, total_size=len(items))


@dataclass
class FakeBackend:
    """State shared by the fake services; `calls` counts RPCs by name (e.g. calls["BatchGetUsers"])."""

    users: dict[str, user_pb2.User] = field(default_factory=dict)
    stats: dict[str, user_pb2.UserStats] = field(default_factory=dict)
    preferences: dict[str, user_pb2.Preferences] = field(default_factory=dict)
    follows: list[user_pb2.FollowEdge] = field(default_factory=list)
    wallets: dict[str, list[wallet_pb2.Wallet]] = field(default_factory=dict)
    sessions: dict[str, auth_pb2.Session] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> session id
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> session id
    chains: dict[str, chain_registry_pb2.Chain] = field(default_factory=dict)
    endpoints: dict[str, list[chain_registry_pb2.Endpoint]] = field(default_factory=dict)
    collections: dict[str, catalog_pb2.Collection] = field(default_factory=dict)
    collection_stats: dict[str, catalog_pb2.CollectionStats] = field(default_factory=dict)
    catalog_tokens: dict[str, catalog_pb2.Token] = field(default_factory=dict)
    traits: dict[str, list[catalog_pb2.Trait]] = field(default_factory=dict)  # by collection id
    activities: list[catalog_pb2.Activity] = field(default_factory=list)  # newest first
    refresh_wait_seconds: int = 0  # > 0: RefreshMetadata answers RESOURCE_EXHAUSTED
    calls: Counter[str] = field(default_factory=Counter)
    requests: dict[str, list[Any]] = field(default_factory=dict)  # catalog requests by RPC name, for assertions
    health_status: dict[str, str] = field(default_factory=lambda: {
        "auth": "SERVING", "user": "SERVING", "wallet": "SERVING", "catalog": "SERVING", "chain_registry": "SERVING",
    })
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    # ---- setup helpers -------------------------------------------------------------------------------------
    def add_user(self, username: str = "", address: str = "") -> str:
        user_id = str(uuid.uuid4())
        self.users[user_id] = user_pb2.User(
            user_id=user_id, status=user_pb2.USER_STATUS_ACTIVE, profile=user_pb2.Profile(username=username),
            created_at=_now(),
        )
        self.stats[user_id] = user_pb2.UserStats(user_id=user_id, volume_sold="0", volume_purchased="0")
        self.preferences[user_id] = user_pb2.Preferences(theme=user_pb2.THEME_SYSTEM, language="en")
        if address:
            self.add_wallet(user_id, address)
        return user_id

    def add_wallet(self, user_id: str, address: str) -> wallet_pb2.Wallet:
        owned = self.wallets.setdefault(user_id, [])
        wallet = wallet_pb2.Wallet(
            wallet_id=str(uuid.uuid4()), user_id=user_id, address=address.lower(),
            account_id=f"eip155:1:{address.lower()}", chain=common_pb2.ChainRef(caip2="eip155:1"),
            is_primary=not owned, wallet_type=wallet_pb2.WALLET_TYPE_EOA, connector="metamask", created_at=_now(),
            checksum_address=address,
        )
        owned.append(wallet)
        return wallet

    def sign_in_as(self, user_id: str) -> str:
        """Open a session for a user and return its access token."""
        session_id = str(uuid.uuid4())
        self.sessions[session_id] = auth_pb2.Session(
            session_id=session_id, user_id=user_id, state=auth_pb2.SESSION_STATE_ACTIVE, created_at=_now(),
            address=self.wallets.get(user_id, [wallet_pb2.Wallet(address="0x" + "0" * 40)])[0].address,
        )
        token = f"access-{next(self._counter)}"
        self.tokens[token] = session_id
        return token

    def add_follow(self, follower_id: str, following_id: str) -> None:
        self.follows.insert(0, user_pb2.FollowEdge(
            follower_id=follower_id, following_id=following_id, created_at=_now()
        ))
        self.stats[follower_id].following_count += 1
        self.stats[following_id].followers_count += 1

    def add_chain(
        self, caip2: str, name: str = "", *, heads: tuple[tuple[int, bool], ...] = (), enabled: bool = True
    ) -> chain_registry_pb2.Chain:
        """A chain whose endpoints' last probes saw `heads` ((head block, healthy) per endpoint)."""
        chain = chain_registry_pb2.Chain(
            id=len(self.chains) + 1, caip2=caip2, chain_numeric=int(caip2.split(":")[1]), name=name or caip2,
            native_symbol="ETH", decimals=18, explorer_url="https://explorer.example", enabled=enabled,
            features=["eip1559"],
        )
        self.chains[caip2] = chain
        self.endpoints[caip2] = [
            chain_registry_pb2.Endpoint(
                id=index + 1, caip2=caip2, url=f"https://rpc{index}.example", priority=index, active=healthy,
                health=chain_registry_pb2.EndpointHealth(healthy=healthy, head_block=head),
            )
            for index, (head, healthy) in enumerate(heads)
        ]
        return chain

    def add_collection(self, name: str, *, chain: str = "eip155:31337", slug: str = "",
                       address: str = "") -> catalog_pb2.Collection:
        collection_id = str(uuid.uuid4())
        collection = catalog_pb2.Collection(
            id=collection_id, slug=slug or name.lower().replace(" ", "-"), name=name,
            chain=common_pb2.ChainRef(caip2=chain), contract_address=address or f"0x{len(self.collections) + 1:040x}",
            standard=common_pb2.TOKEN_STANDARD_ERC721, status=catalog_pb2.COLLECTION_STATUS_LIVE, created_at=_now(),
            total_supply="0",
        )
        self.collections[collection_id] = collection
        self.collection_stats[collection_id] = catalog_pb2.CollectionStats(collection_id=collection_id)
        return collection

    def add_token(
        self, collection: catalog_pb2.Collection, number: int, *, owner: str = "",
        traits: dict[str, str] | None = None, rank: int = 0, score: str = "",
    ) -> catalog_pb2.Token:
        """A token with string traits; its rarity explanation has one term per trait (what GetToken returns)."""
        terms = [
            catalog_pb2.TokenTrait(trait_name=name, value=value, occurrences=1, rarity_score="1.5", counted=True)
            for name, value in (traits or {}).items()
        ]
        token = catalog_pb2.Token(
            id=str(uuid.uuid4()), collection_id=collection.id, chain=collection.chain,
            contract_address=collection.contract_address, token_number=str(number),
            token_standard=common_pb2.TOKEN_STANDARD_ERC721, name=f"{collection.name} #{number}",
            image_url=f"https://img.example/{number}.png", owner_address=owner.lower(), minted_at=_now(),
            traits=terms, rarity_rank=rank, rarity_score=score, metadata_status=catalog_pb2.METADATA_STATUS_OK,
            rarity_explanation=terms,
        )
        self.catalog_tokens[token.id] = token
        stats = self.collection_stats[collection.id]
        stats.items_count += 1
        stats.metadata_ok += 1
        stats.owners_count = len({t.owner_address for t in self.catalog_tokens.values()
                                  if t.collection_id == collection.id and t.owner_address})
        collection.total_supply = str(stats.items_count)
        return token

    def add_activity(self, token: catalog_pb2.Token, kind: catalog_pb2.ActivityType.ValueType, from_address: str = "",
                     to_address: str = "") -> catalog_pb2.Activity:
        activity = catalog_pb2.Activity(
            id=str(uuid.uuid4()), token_id=token.id, collection_id=token.collection_id, activity_type=kind,
            from_address=from_address, to_address=to_address, occurred_at=_now(),
        )
        self.activities.insert(0, activity)
        return activity

    def clients(self, timeout: float = 0) -> Clients:
        return Clients(
            auth=FakeAuth(self), user=FakeUser(self), wallet=FakeWallet(self), catalog=FakeCatalog(self),
            chain_registry=FakeChainRegistry(self),
        )

    async def health(self, timeout: float) -> dict[str, str]:
        return dict(self.health_status)

    async def close(self) -> None:
        return None

    def _user(self, user_id: str) -> user_pb2.User:
        user = self.users.get(user_id)
        if user is None:
            raise _fail(grpc.StatusCode.NOT_FOUND, "user not found")
        return user

    def _tokens(self, session: auth_pb2.Session) -> auth_pb2.TokenPair:
        access, refresh = f"access-{next(self._counter)}", f"refresh-{next(self._counter)}"
        self.tokens[access] = session.session_id
        self.refresh_tokens[refresh] = session.session_id
        return auth_pb2.TokenPair(access_token=access, refresh_token=refresh, token_type="Bearer")  # noqa: S106


class FakeAuth:
    def __init__(self, backend: FakeBackend) -> None:
        self.b = backend

    async def create_nonce(self, request: auth_pb2.CreateNonceRequest) -> auth_pb2.CreateNonceResponse:
        self.b.calls["CreateNonce"] += 1
        nonce = uuid.uuid4().hex[:16]
        message = (
            f"{request.domain} wants you to sign in with your Ethereum account:\n{request.address}\n\n"
            f"Sign in to mintplane.\n\nURI: {request.uri}\nVersion: 1\n"
            f"Chain ID: {request.chain.caip2.split(':')[1]}\nNonce: {nonce}\nIssued At: 2026-01-01T00:00:00Z"
        )
        return auth_pb2.CreateNonceResponse(nonce=nonce, message=message, issued_at=_now(), expires_at=_now())

    async def sign_in(self, request: auth_pb2.SignInRequest) -> auth_pb2.SignInResponse:
        self.b.calls["SignIn"] += 1
        lines = request.message.split("\n")
        if len(lines) < 2 or not lines[1].startswith("0x"):
            raise _fail(grpc.StatusCode.INVALID_ARGUMENT, "message is not an EIP-4361 message")
        address = lines[1].lower()
        owner = next((uid for uid, ws in self.b.wallets.items() if any(w.address == address for w in ws)), None)
        is_new = owner is None
        user_id = owner or self.b.add_user(address=address)
        session_id = str(uuid.uuid4())
        session = auth_pb2.Session(
            session_id=session_id, user_id=user_id, address=address, state=auth_pb2.SESSION_STATE_ACTIVE,
            ip_address=request.ip_address, user_agent=request.user_agent, created_at=_now(),
        )
        self.b.sessions[session_id] = session
        return auth_pb2.SignInResponse(
            tokens=self.b._tokens(session), session=session, user_id=user_id, is_new_user=is_new
        )

    async def refresh(self, request: auth_pb2.RefreshRequest) -> auth_pb2.RefreshResponse:
        self.b.calls["Refresh"] += 1
        session_id = self.b.refresh_tokens.pop(request.refresh_token, None)
        if session_id is None or self.b.sessions[session_id].state != auth_pb2.SESSION_STATE_ACTIVE:
            raise _fail(grpc.StatusCode.UNAUTHENTICATED, "refresh token is invalid or was already used")
        session = self.b.sessions[session_id]
        return auth_pb2.RefreshResponse(tokens=self.b._tokens(session), session=session)

    async def sign_out(self, request: auth_pb2.SignOutRequest) -> auth_pb2.SignOutResponse:
        self.b.calls["SignOut"] += 1
        session = self.b.sessions[request.session_id]
        targets = [s for s in self.b.sessions.values() if s.user_id == session.user_id] if request.all_sessions \
            else [session]
        revoked = 0
        for target in targets:
            if target.state == auth_pb2.SESSION_STATE_ACTIVE:
                target.state = auth_pb2.SESSION_STATE_REVOKED
                target.revoked_at.CopyFrom(_now())
                revoked += 1
        return auth_pb2.SignOutResponse(revoked_count=revoked)

    async def validate_session(self, request: auth_pb2.ValidateSessionRequest) -> auth_pb2.ValidateSessionResponse:
        self.b.calls["ValidateSession"] += 1
        session_id = self.b.tokens.get(request.access_token)
        session = self.b.sessions.get(session_id or "")
        if session is None or session.state != auth_pb2.SESSION_STATE_ACTIVE:
            raise _fail(grpc.StatusCode.UNAUTHENTICATED, "access token is invalid, expired or revoked")
        return auth_pb2.ValidateSessionResponse(
            user_id=session.user_id, session_id=session.session_id, address=session.address,
            chain=common_pb2.ChainRef(caip2="eip155:1"),
        )

    async def list_sessions(self, request: auth_pb2.ListSessionsRequest) -> auth_pb2.ListSessionsResponse:
        self.b.calls["ListSessions"] += 1
        mine = [
            s for s in reversed(self.b.sessions.values())
            if s.user_id == request.user_id and (request.include_inactive or s.state == auth_pb2.SESSION_STATE_ACTIVE)
        ]
        chunk, page = _page(mine, request.page)
        return auth_pb2.ListSessionsResponse(sessions=chunk, page=page)

    async def revoke_session(self, request: auth_pb2.RevokeSessionRequest) -> auth_pb2.RevokeSessionResponse:
        self.b.calls["RevokeSession"] += 1
        session = self.b.sessions.get(request.session_id)
        if session is None:
            raise _fail(grpc.StatusCode.NOT_FOUND, "session not found")
        if session.user_id != request.user_id:
            raise _fail(grpc.StatusCode.PERMISSION_DENIED, "session belongs to another user")
        session.state = auth_pb2.SESSION_STATE_REVOKED
        return auth_pb2.RevokeSessionResponse(session=session)

    async def list_login_events(self, request: auth_pb2.ListLoginEventsRequest) -> auth_pb2.ListLoginEventsResponse:
        self.b.calls["ListLoginEvents"] += 1
        return auth_pb2.ListLoginEventsResponse(page=common_pb2.PageResponse())

    async def get_jwks(self, request: auth_pb2.GetJwksRequest) -> auth_pb2.GetJwksResponse:
        self.b.calls["GetJwks"] += 1
        return auth_pb2.GetJwksResponse(keys=[auth_pb2.JsonWebKey(
            kid="k1", kty="EC", alg="ES256", use="sig", crv="P-256", x="eA", y="eQ"
        )])


class FakeUser:
    def __init__(self, backend: FakeBackend) -> None:
        self.b = backend

    @staticmethod
    def _actor(actor_user_id: str, user_id: str) -> None:
        if not actor_user_id:
            raise _fail(grpc.StatusCode.UNAUTHENTICATED, "actor_user_id is required")
        if actor_user_id != user_id:
            raise _fail(grpc.StatusCode.PERMISSION_DENIED, "you may only change your own data")

    async def get_user(self, request: user_pb2.GetUserRequest) -> user_pb2.GetUserResponse:
        self.b.calls["GetUser"] += 1
        return user_pb2.GetUserResponse(user=self.b._user(request.user_id))

    async def get_user_by_username(
        self, request: user_pb2.GetUserByUsernameRequest
    ) -> user_pb2.GetUserByUsernameResponse:
        self.b.calls["GetUserByUsername"] += 1
        wanted = request.username.lower()
        for user in self.b.users.values():
            if user.profile.username and user.profile.username == wanted:
                return user_pb2.GetUserByUsernameResponse(user=user)
        raise _fail(grpc.StatusCode.NOT_FOUND, "no user with that username")

    async def batch_get_users(self, request: user_pb2.BatchGetUsersRequest) -> user_pb2.BatchGetUsersResponse:
        self.b.calls["BatchGetUsers"] += 1
        if len(request.user_ids) > 100:
            raise _fail(grpc.StatusCode.INVALID_ARGUMENT, "at most 100 ids")
        return user_pb2.BatchGetUsersResponse(users=[self.b.users[i] for i in request.user_ids if i in self.b.users])

    async def update_profile(self, request: user_pb2.UpdateProfileRequest) -> user_pb2.UpdateProfileResponse:
        self.b.calls["UpdateProfile"] += 1
        self._actor(request.actor_user_id, request.user_id)
        user = self.b._user(request.user_id)
        for path in request.update_mask.paths:
            if path == "socials":
                user.profile.socials.clear()
                user.profile.socials.update(request.profile.socials)
            elif path == "username" and request.profile.username and len(request.profile.username) < 3:
                raise _fail(grpc.StatusCode.INVALID_ARGUMENT, "username must be 3-30 characters of [a-z0-9_]")
            else:
                setattr(user.profile, path, getattr(request.profile, path))
        return user_pb2.UpdateProfileResponse(user=user)

    async def get_preferences(self, request: user_pb2.GetPreferencesRequest) -> user_pb2.GetPreferencesResponse:
        self.b.calls["GetPreferences"] += 1
        self._actor(request.actor_user_id, request.user_id)
        self.b._user(request.user_id)
        return user_pb2.GetPreferencesResponse(preferences=self.b.preferences[request.user_id])

    async def update_preferences(
        self, request: user_pb2.UpdatePreferencesRequest
    ) -> user_pb2.UpdatePreferencesResponse:
        self.b.calls["UpdatePreferences"] += 1
        self._actor(request.actor_user_id, request.user_id)
        prefs = self.b.preferences[request.user_id]
        for path in request.update_mask.paths:
            setattr(prefs, path, getattr(request.preferences, path))
        return user_pb2.UpdatePreferencesResponse(preferences=prefs)

    async def batch_get_stats(self, request: user_pb2.BatchGetStatsRequest) -> user_pb2.BatchGetStatsResponse:
        self.b.calls["BatchGetStats"] += 1
        return user_pb2.BatchGetStatsResponse(stats=[self.b.stats[i] for i in request.user_ids if i in self.b.stats])

    async def follow(self, request: user_pb2.FollowRequest) -> user_pb2.FollowResponse:
        self.b.calls["Follow"] += 1
        self._actor(request.actor_user_id, request.follower_id)
        self.b._user(request.following_id)
        existing = [f for f in self.b.follows
                    if f.follower_id == request.follower_id and f.following_id == request.following_id]
        if existing:
            return user_pb2.FollowResponse(follow=existing[0], created=False)
        self.b.add_follow(request.follower_id, request.following_id)
        return user_pb2.FollowResponse(follow=self.b.follows[0], created=True)

    async def unfollow(self, request: user_pb2.UnfollowRequest) -> user_pb2.UnfollowResponse:
        self.b.calls["Unfollow"] += 1
        self._actor(request.actor_user_id, request.follower_id)
        before = len(self.b.follows)
        self.b.follows = [f for f in self.b.follows
                          if not (f.follower_id == request.follower_id and f.following_id == request.following_id)]
        removed = len(self.b.follows) < before
        if removed:
            self.b.stats[request.follower_id].following_count -= 1
            self.b.stats[request.following_id].followers_count -= 1
        return user_pb2.UnfollowResponse(removed=removed)

    async def list_followers(self, request: user_pb2.ListFollowersRequest) -> user_pb2.ListFollowersResponse:
        self.b.calls["ListFollowers"] += 1
        chunk, page = _page([f for f in self.b.follows if f.following_id == request.user_id], request.page)
        return user_pb2.ListFollowersResponse(follows=chunk, page=page)

    async def list_following(self, request: user_pb2.ListFollowingRequest) -> user_pb2.ListFollowingResponse:
        self.b.calls["ListFollowing"] += 1
        chunk, page = _page([f for f in self.b.follows if f.follower_id == request.user_id], request.page)
        return user_pb2.ListFollowingResponse(follows=chunk, page=page)

    async def is_following(self, request: user_pb2.IsFollowingRequest) -> user_pb2.IsFollowingResponse:
        self.b.calls["IsFollowing"] += 1
        wanted = set(request.following_ids)
        return user_pb2.IsFollowingResponse(follows=[
            f for f in self.b.follows if f.follower_id == request.follower_id and f.following_id in wanted
        ])


class FakeWallet:
    def __init__(self, backend: FakeBackend) -> None:
        self.b = backend

    async def create_link_challenge(
        self, request: wallet_pb2.CreateLinkChallengeRequest
    ) -> wallet_pb2.CreateLinkChallengeResponse:
        self.b.calls["CreateLinkChallenge"] += 1
        nonce = uuid.uuid4().hex[:16]
        message = (
            f"{request.domain} wants you to sign in with your Ethereum account:\n{request.address}\n\n"
            f"Link this wallet.\n\nURI: {request.uri}\nVersion: 1\nChain ID: {request.chain.caip2.split(':')[1]}\n"
            f"Nonce: {nonce}\nIssued At: 2026-01-01T00:00:00Z\nResources:\n- urn:mintplane:user:{request.user_id}"
        )
        return wallet_pb2.CreateLinkChallengeResponse(message=message, nonce=nonce, issued_at=_now(), expires_at=_now())

    def _owned(self, user_id: str, wallet_id: str) -> wallet_pb2.Wallet:
        for owner, wallets in self.b.wallets.items():
            for wallet in wallets:
                if wallet.wallet_id == wallet_id:
                    if owner != user_id:
                        raise _fail(grpc.StatusCode.PERMISSION_DENIED, "wallet belongs to another user")
                    return wallet
        raise _fail(grpc.StatusCode.NOT_FOUND, "wallet not found")

    async def link_wallet(self, request: wallet_pb2.LinkWalletRequest) -> wallet_pb2.LinkWalletResponse:
        self.b.calls["LinkWallet"] += 1
        lines = request.message.split("\n")
        if len(lines) < 2:
            raise _fail(grpc.StatusCode.UNAUTHENTICATED, "invalid proof")
        wallet = self.b.add_wallet(request.user_id, lines[1])
        wallet.label = request.label
        return wallet_pb2.LinkWalletResponse(wallet=wallet, created=True)

    async def unlink_wallet(self, request: wallet_pb2.UnlinkWalletRequest) -> wallet_pb2.UnlinkWalletResponse:
        self.b.calls["UnlinkWallet"] += 1
        wallet = self._owned(request.user_id, request.wallet_id)
        owned = self.b.wallets[request.user_id]
        if len(owned) == 1:
            raise _fail(grpc.StatusCode.FAILED_PRECONDITION, "cannot unlink the last wallet")
        owned.remove(wallet)
        if wallet.is_primary:
            owned[0].is_primary = True
            return wallet_pb2.UnlinkWalletResponse(new_primary=owned[0])
        return wallet_pb2.UnlinkWalletResponse()

    async def set_primary_wallet(
        self, request: wallet_pb2.SetPrimaryWalletRequest
    ) -> wallet_pb2.SetPrimaryWalletResponse:
        self.b.calls["SetPrimaryWallet"] += 1
        wallet = self._owned(request.user_id, request.wallet_id)
        for other in self.b.wallets[request.user_id]:
            other.is_primary = other.wallet_id == wallet.wallet_id
        return wallet_pb2.SetPrimaryWalletResponse(wallet=wallet)

    async def update_wallet_label(
        self, request: wallet_pb2.UpdateWalletLabelRequest
    ) -> wallet_pb2.UpdateWalletLabelResponse:
        self.b.calls["UpdateWalletLabel"] += 1
        wallet = self._owned(request.user_id, request.wallet_id)
        wallet.label = request.label
        return wallet_pb2.UpdateWalletLabelResponse(wallet=wallet)

    async def list_wallets(self, request: wallet_pb2.ListWalletsRequest) -> wallet_pb2.ListWalletsResponse:
        self.b.calls["ListWallets"] += 1
        return wallet_pb2.ListWalletsResponse(wallets=self.b.wallets.get(request.user_id, []))

    async def batch_list_wallets(
        self, request: wallet_pb2.BatchListWalletsRequest
    ) -> wallet_pb2.BatchListWalletsResponse:
        self.b.calls["BatchListWallets"] += 1
        return wallet_pb2.BatchListWalletsResponse(users=[
            wallet_pb2.UserWallets(user_id=user_id, wallets=self.b.wallets[user_id])
            for user_id in request.user_ids if self.b.wallets.get(user_id)
        ])

    async def batch_get_wallets_by_address(
        self, request: wallet_pb2.BatchGetWalletsByAddressRequest
    ) -> wallet_pb2.BatchGetWalletsByAddressResponse:
        self.b.calls["BatchGetWalletsByAddress"] += 1
        if len(request.addresses) > 100:
            raise _fail(grpc.StatusCode.INVALID_ARGUMENT, "at most 100 addresses")
        wanted = {address.lower() for address in request.addresses}
        return wallet_pb2.BatchGetWalletsByAddressResponse(wallets=[
            wallet for wallets in self.b.wallets.values() for wallet in wallets if wallet.address in wanted
        ])


def _listed(token: catalog_pb2.Token) -> catalog_pb2.Token:
    """A token as List*/Batch* RPCs return it: the rarity explanation is GetToken's only."""
    copy = catalog_pb2.Token()
    copy.CopyFrom(token)
    del copy.rarity_explanation[:]
    return copy


class FakeCatalog:
    """The catalog's read side over the backend's collections and tokens. Trait filters AND across traits and
    OR within one, case-insensitively, as the real service does; only number and rarity sorts are modelled."""

    def __init__(self, backend: FakeBackend) -> None:
        self.b = backend

    def _record(self, name: str, request: Any) -> None:
        self.b.calls[name] += 1
        self.b.requests.setdefault(name, []).append(request)

    def _collection(self, found: catalog_pb2.Collection | None) -> catalog_pb2.Collection:
        if found is None:
            raise _fail(grpc.StatusCode.NOT_FOUND, "collection not found")
        return found

    async def list_collections(
        self, request: catalog_pb2.ListCollectionsRequest
    ) -> catalog_pb2.ListCollectionsResponse:
        self._record("ListCollections", request)
        items = [c for c in reversed(self.b.collections.values())
                 if (not request.chain.caip2 or c.chain.caip2 == request.chain.caip2)
                 and (not request.verified_only or c.is_verified)
                 and (not request.query or request.query.lower() in (c.name + c.slug).lower())]
        if request.sort == catalog_pb2.COLLECTION_SORT_NAME_ASC:
            items.sort(key=lambda c: c.name)
        chunk, page = _page(items, request.page)
        return catalog_pb2.ListCollectionsResponse(collections=chunk, page=page)

    async def get_collection_by_slug(
        self, request: catalog_pb2.GetCollectionBySlugRequest
    ) -> catalog_pb2.GetCollectionBySlugResponse:
        self._record("GetCollectionBySlug", request)
        found = next((c for c in self.b.collections.values() if c.slug == request.slug), None)
        return catalog_pb2.GetCollectionBySlugResponse(collection=self._collection(found))

    async def get_collection_by_contract(
        self, request: catalog_pb2.GetCollectionByContractRequest
    ) -> catalog_pb2.GetCollectionByContractResponse:
        self._record("GetCollectionByContract", request)
        contract = request.contract
        found = next((c for c in self.b.collections.values()
                      if c.chain.caip2 == contract.chain.caip2 and c.contract_address == contract.address), None)
        return catalog_pb2.GetCollectionByContractResponse(collection=self._collection(found))

    async def batch_get_collections(
        self, request: catalog_pb2.BatchGetCollectionsRequest
    ) -> catalog_pb2.BatchGetCollectionsResponse:
        self._record("BatchGetCollections", request)
        return catalog_pb2.BatchGetCollectionsResponse(
            collections=[self.b.collections[i] for i in request.ids if i in self.b.collections]
        )

    async def batch_get_collection_stats(
        self, request: catalog_pb2.BatchGetCollectionStatsRequest
    ) -> catalog_pb2.BatchGetCollectionStatsResponse:
        self._record("BatchGetCollectionStats", request)
        return catalog_pb2.BatchGetCollectionStatsResponse(
            stats=[self.b.collection_stats[i] for i in request.collection_ids if i in self.b.collection_stats]
        )

    def _by_key(self, key: catalog_pb2.TokenKey) -> catalog_pb2.Token | None:
        return next((t for t in self.b.catalog_tokens.values()
                     if t.chain.caip2 == key.contract.chain.caip2 and t.contract_address == key.contract.address
                     and t.token_number == key.token_number), None)

    async def get_token(self, request: catalog_pb2.GetTokenRequest) -> catalog_pb2.GetTokenResponse:
        self._record("GetToken", request)
        found = self.b.catalog_tokens.get(request.id) if request.WhichOneof("target") == "id" \
            else self._by_key(request.key)
        if found is None:
            raise _fail(grpc.StatusCode.NOT_FOUND, "token not found")
        return catalog_pb2.GetTokenResponse(token=found)

    async def batch_get_tokens(self, request: catalog_pb2.BatchGetTokensRequest) -> catalog_pb2.BatchGetTokensResponse:
        self._record("BatchGetTokens", request)
        return catalog_pb2.BatchGetTokensResponse(
            tokens=[_listed(self.b.catalog_tokens[i]) for i in request.ids if i in self.b.catalog_tokens]
        )

    async def list_tokens(self, request: catalog_pb2.ListTokensRequest) -> catalog_pb2.ListTokensResponse:
        self._record("ListTokens", request)
        owners = {a.lower() for a in [request.owner_address, *request.owner_addresses] if a}
        if not request.collection_id and not owners:
            raise _fail(grpc.StatusCode.INVALID_ARGUMENT, "collection_id or owner_address is required")

        def matches(token: catalog_pb2.Token) -> bool:
            if request.collection_id and token.collection_id != request.collection_id:
                return False
            if owners and token.owner_address not in owners:
                return False
            held = {(t.trait_name.lower(), t.value.lower()) for t in token.traits}
            return all(any((f.name.lower(), v.lower()) in held for v in f.values) for f in request.trait_filters)

        items = [_listed(t) for t in self.b.catalog_tokens.values() if matches(t)]
        if request.sort in (catalog_pb2.TOKEN_SORT_RARITY_ASC, catalog_pb2.TOKEN_SORT_RARITY_DESC):
            items.sort(key=lambda t: t.rarity_rank, reverse=request.sort == catalog_pb2.TOKEN_SORT_RARITY_DESC)
        else:
            items.sort(key=lambda t: int(t.token_number),
                       reverse=request.sort == catalog_pb2.TOKEN_SORT_TOKEN_NUMBER_DESC)
        chunk, page = _page(items, request.page)
        return catalog_pb2.ListTokensResponse(tokens=chunk, page=page)

    async def list_traits(self, request: catalog_pb2.ListTraitsRequest) -> catalog_pb2.ListTraitsResponse:
        self._record("ListTraits", request)
        stats = self.b.collection_stats.get(request.collection_id)
        return catalog_pb2.ListTraitsResponse(
            traits=self.b.traits.get(request.collection_id, []), items_count=stats.items_count if stats else 0
        )

    async def refresh_metadata(
        self, request: catalog_pb2.RefreshMetadataRequest
    ) -> catalog_pb2.RefreshMetadataResponse:
        self._record("RefreshMetadata", request)
        if self.b.refresh_wait_seconds:
            raise _fail(grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"refreshed recently; try again in {self.b.refresh_wait_seconds}s")
        if request.WhichOneof("target") == "collection_id":
            tokens = [t for t in self.b.catalog_tokens.values() if t.collection_id == request.collection_id]
            collection_id = request.collection_id
        else:
            token = self._by_key(request.token_key)
            if token is None:
                raise _fail(grpc.StatusCode.NOT_FOUND, "token not found")
            tokens, collection_id = [token], token.collection_id
        stats = self.b.collection_stats[collection_id]
        for token in tokens:
            if token.metadata_status != catalog_pb2.METADATA_STATUS_PENDING:
                token.metadata_status = catalog_pb2.METADATA_STATUS_PENDING
                stats.metadata_ok -= 1
                stats.metadata_pending += 1
        return catalog_pb2.RefreshMetadataResponse(queued=len(tokens), stats=stats)

    async def list_activities(
        self, request: catalog_pb2.ListActivitiesRequest
    ) -> catalog_pb2.ListActivitiesResponse:
        self._record("ListActivities", request)
        kinds = set(request.activity_types)
        items = [a for a in self.b.activities
                 if (not request.token_id or a.token_id == request.token_id)
                 and (not request.collection_id or a.collection_id == request.collection_id)
                 and (not request.address or request.address in (a.from_address, a.to_address))
                 and (not kinds or a.activity_type in kinds)]
        chunk, page = _page(items, request.page)
        return catalog_pb2.ListActivitiesResponse(activities=chunk, page=page)


class FakeChainRegistry:
    def __init__(self, backend: FakeBackend) -> None:
        self.b = backend

    async def list_chains(
        self, request: chain_registry_pb2.ListChainsRequest
    ) -> chain_registry_pb2.ListChainsResponse:
        self.b.calls["ListChains"] += 1
        items = sorted((c for c in self.b.chains.values() if c.enabled or request.include_disabled),
                       key=lambda c: c.chain_numeric)
        chunk, page = _page(items, request.page)
        return chain_registry_pb2.ListChainsResponse(chains=chunk, page=page)

    async def get_chain(self, request: chain_registry_pb2.GetChainRequest) -> chain_registry_pb2.GetChainResponse:
        self.b.calls["GetChain"] += 1
        chain = self.b.chains.get(request.caip2)
        if chain is None:
            raise _fail(grpc.StatusCode.NOT_FOUND, "chain not found")
        return chain_registry_pb2.GetChainResponse(chain=chain)

    async def list_endpoints(
        self, request: chain_registry_pb2.ListEndpointsRequest
    ) -> chain_registry_pb2.ListEndpointsResponse:
        self.b.calls["ListEndpoints"] += 1
        if request.caip2 not in self.b.chains:
            raise _fail(grpc.StatusCode.NOT_FOUND, "chain not found")
        return chain_registry_pb2.ListEndpointsResponse(endpoints=[
            e for e in self.b.endpoints.get(request.caip2, []) if e.active or request.include_inactive
        ])


@functools.cache
def _default_settings() -> GatewaySettings:
    return GatewaySettings()


async def execute(
    schema: Any, backend: FakeBackend, query: str, *, token: str | None = None,
    variables: dict[str, Any] | None = None, origin: str = "", settings: GatewaySettings | None = None,
) -> Any:
    """Run one operation through the schema with a context over `backend`, as the HTTP route would."""
    context = GatewayContext(
        clients=backend.clients(), settings=settings or _default_settings(),
        authorization=f"Bearer {token}" if token else None,
        client=ClientInfo(ip_address="127.0.0.1", user_agent="pytest", origin=origin),
    )
    return await schema.execute(query, variable_values=variables, context_value=context)

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
    """State shared by the three fake services; `calls` counts RPCs by name (e.g. calls["BatchGetUsers"])."""

    users: dict[str, user_pb2.User] = field(default_factory=dict)
    stats: dict[str, user_pb2.UserStats] = field(default_factory=dict)
    preferences: dict[str, user_pb2.Preferences] = field(default_factory=dict)
    follows: list[user_pb2.FollowEdge] = field(default_factory=list)
    wallets: dict[str, list[wallet_pb2.Wallet]] = field(default_factory=dict)
    sessions: dict[str, auth_pb2.Session] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> session id
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> session id
    calls: Counter[str] = field(default_factory=Counter)
    health_status: dict[str, str] = field(
        default_factory=lambda: {"auth": "SERVING", "user": "SERVING", "wallet": "SERVING"}
    )
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

    def clients(self, timeout: float = 0) -> Clients:
        return Clients(auth=FakeAuth(self), user=FakeUser(self), wallet=FakeWallet(self))

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

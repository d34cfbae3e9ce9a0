"""Sign-In with Ethereum through the gateway: nonce → sign → signIn → refresh → signOut, and the viewer's
sessions and sign-in history."""

# strawberry.field/mutation(...) with keyword arguments are typed as Any (they double as field specs).
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum

import strawberry

from mintplane.api.auth.v1 import auth_pb2
from mintplane.api.common.v1 import common_pb2
from mintplane.gateway.context import Identity, Info
from mintplane.gateway.errors import BadUserInput
from mintplane.gateway.pagination import page_window, paginate
from mintplane.gateway.schema.common import (
    PageInfo,
    check_address,
    check_chain_id,
    or_none,
    parse_id,
    timestamp,
)
from mintplane.gateway.schema.users import Viewer, load_viewer
from mintplane.gateway.siwe_text import parse_message_fields

_SIGNATURE = re.compile(r"^0x(?:[0-9a-fA-F]{2})+$")


@strawberry.enum(description="Lifecycle state of a session.")
class SessionState(Enum):
    UNSPECIFIED = "UNSPECIFIED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@strawberry.enum(description="Outcome of a sign-in attempt.")
class LoginResult(Enum):
    UNSPECIFIED = "UNSPECIFIED"
    SUCCESS = "SUCCESS"
    MALFORMED_MESSAGE = "MALFORMED_MESSAGE"
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    INVALID_NONCE = "INVALID_NONCE"
    NONCE_EXPIRED = "NONCE_EXPIRED"
    DOMAIN_MISMATCH = "DOMAIN_MISMATCH"
    CHAIN_MISMATCH = "CHAIN_MISMATCH"
    MESSAGE_NOT_VALID_NOW = "MESSAGE_NOT_VALID_NOW"
    RATE_LIMITED = "RATE_LIMITED"
    USER_BLOCKED = "USER_BLOCKED"


_SESSION_STATES = {
    auth_pb2.SESSION_STATE_ACTIVE: SessionState.ACTIVE,
    auth_pb2.SESSION_STATE_EXPIRED: SessionState.EXPIRED,
    auth_pb2.SESSION_STATE_REVOKED: SessionState.REVOKED,
}
# Same names on both sides: LOGIN_RESULT_<NAME> is LoginResult.<NAME>.
_LOGIN_RESULTS = {
    number: LoginResult[name.removeprefix("LOGIN_RESULT_")]
    for name, number in auth_pb2.LoginResult.items()
}


@strawberry.type(description="A signed-in session of the viewer.")
class Session:
    id: strawberry.ID
    device_id: str | None
    ip_address: str | None
    user_agent: str | None
    address: str | None
    chain: str | None = strawberry.field(description="CAIP-2 id of the chain of the sign-in message.")
    state: SessionState
    created_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    current: bool = strawberry.field(description="True for the session of the presented access token.")

    @classmethod
    def from_proto(cls, session: auth_pb2.Session, current_session_id: str = "") -> Session:
        return cls(
            id=strawberry.ID(session.session_id), device_id=or_none(session.device_id),
            ip_address=or_none(session.ip_address), user_agent=or_none(session.user_agent),
            address=or_none(session.address), chain=or_none(session.chain.caip2),
            state=_SESSION_STATES.get(session.state, SessionState.UNSPECIFIED),
            created_at=timestamp(session, "created_at"), expires_at=timestamp(session, "expires_at"),
            last_used_at=timestamp(session, "last_used_at"), revoked_at=timestamp(session, "revoked_at"),
            current=bool(current_session_id) and session.session_id == current_session_id,
        )


@strawberry.type(description="One sign-in attempt.")
class LoginEvent:
    id: strawberry.ID
    address: str | None
    ip_address: str | None
    user_agent: str | None
    result: LoginResult
    error_message: str | None
    chain: str | None
    domain: str | None
    occurred_at: datetime | None

    @classmethod
    def from_proto(cls, event: auth_pb2.LoginEvent) -> LoginEvent:
        return cls(
            id=strawberry.ID(event.id), address=or_none(event.address), ip_address=or_none(event.ip_address),
            user_agent=or_none(event.user_agent), result=_LOGIN_RESULTS.get(event.result, LoginResult.UNSPECIFIED),
            error_message=or_none(event.error_message), chain=or_none(event.chain.caip2),
            domain=or_none(event.domain), occurred_at=timestamp(event, "occurred_at"),
        )


@strawberry.type
class SessionEdge:
    cursor: str
    node: Session


@strawberry.type
class SessionConnection:
    edges: list[SessionEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class LoginEventEdge:
    cursor: str
    node: LoginEvent


@strawberry.type
class LoginEventConnection:
    edges: list[LoginEventEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type(description="A nonce and the EIP-4361 message to sign with it.")
class NoncePayload:
    nonce: str
    message: str = strawberry.field(description="The exact text to sign (personal_sign / EIP-191).")
    issued_at: datetime | None
    expires_at: datetime | None = strawberry.field(description="After this instant signIn rejects the nonce.")
    domain: str
    address: str
    uri: str | None
    version: str | None
    chain_id: int
    statement: str | None
    expiration_time: str | None = strawberry.field(description="The message's own `Expiration Time`, if any.")


@strawberry.type(description="Tokens of a session. Send the access token as `Authorization: Bearer <token>`.")
class AuthPayload:
    access_token: str
    refresh_token: str = strawberry.field(description="Single use: each refresh returns a new one.")
    token_type: str
    expires_at: datetime | None = strawberry.field(description="Expiry of the access token.")
    refresh_token_expires_at: datetime | None
    is_new_user: bool
    session: Session
    _identity: strawberry.Private[Identity]

    @classmethod
    def of(cls, tokens: auth_pb2.TokenPair, session: auth_pb2.Session, is_new_user: bool) -> AuthPayload:
        identity = Identity(
            user_id=session.user_id, session_id=session.session_id, address=session.address,
            chain=session.chain.caip2, expires_at=timestamp(tokens, "access_token_expires_at"),
        )
        return cls(
            access_token=tokens.access_token, refresh_token=tokens.refresh_token,
            token_type=tokens.token_type or "Bearer", expires_at=timestamp(tokens, "access_token_expires_at"),
            refresh_token_expires_at=timestamp(tokens, "refresh_token_expires_at"), is_new_user=is_new_user,
            session=Session.from_proto(session, session.session_id), _identity=identity,
        )

    @strawberry.field(description="The signed-in user.")
    async def viewer(self, info: Info) -> Viewer:
        return await load_viewer(info, self._identity)


@strawberry.type
class SignOutPayload:
    revoked_count: int = strawberry.field(description="Sessions revoked by this call (0 if already revoked).")


def _check_signed(message: str, signature: str) -> None:
    if not message.strip():
        raise BadUserInput("`message` is empty.")
    if not _SIGNATURE.match(signature):
        raise BadUserInput("`signature` must be 0x-prefixed hex.")


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The viewer's sessions, newest first.")
    async def sessions(
        self, info: Info, first: int = 20, after: str | None = None, include_inactive: bool = False
    ) -> SessionConnection:
        viewer = await info.context.viewer()
        window = page_window(first, after)
        reply = await info.context.clients.auth.list_sessions(auth_pb2.ListSessionsRequest(
            user_id=viewer.user_id, include_inactive=include_inactive, page=window.request,
        ))
        page = paginate(window, list(reply.sessions), reply.page)
        return SessionConnection(
            edges=[SessionEdge(cursor=c, node=Session.from_proto(s, viewer.session_id)) for c, s in page.items],
            page_info=PageInfo.of(page), total_count=page.total_count,
        )

    @strawberry.field(description="The viewer's sign-in attempts, newest first.")
    async def login_events(self, info: Info, first: int = 20, after: str | None = None) -> LoginEventConnection:
        viewer = await info.context.viewer()
        window = page_window(first, after)
        reply = await info.context.clients.auth.list_login_events(
            auth_pb2.ListLoginEventsRequest(user_id=viewer.user_id, page=window.request)
        )
        page = paginate(window, list(reply.events), reply.page)
        return LoginEventConnection(
            edges=[LoginEventEdge(cursor=c, node=LoginEvent.from_proto(e)) for c, e in page.items],
            page_info=PageInfo.of(page), total_count=page.total_count,
        )


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description=(
        "Starts a sign-in: issues a single-use nonce and the EIP-4361 message to sign. "
        "`domain` defaults to the browser's Origin, `uri` to that origin."
    ))
    async def nonce(
        self, info: Info, address: str, chain_id: int, domain: str | None = None, uri: str | None = None,
        statement: str | None = None,
    ) -> NoncePayload:
        chain = check_chain_id(chain_id)
        domain, uri = info.context.signing_origin(domain, uri)
        reply = await info.context.clients.auth.create_nonce(auth_pb2.CreateNonceRequest(
            address=check_address(address), domain=domain, chain=common_pb2.ChainRef(caip2=chain), uri=uri,
            statement=statement or "",
        ))
        fields = parse_message_fields(reply.message)
        return NoncePayload(
            nonce=reply.nonce, message=reply.message, issued_at=timestamp(reply, "issued_at"),
            expires_at=timestamp(reply, "expires_at"), domain=fields.domain or domain,
            address=fields.address or address, uri=fields.uri or uri, version=fields.version,
            chain_id=fields.chain_id or chain_id,
            statement=fields.statement, expiration_time=fields.expiration_time,
        )

    @strawberry.mutation(description="Completes a sign-in with the signed nonce message; opens a session.")
    async def sign_in(
        self, info: Info, message: str, signature: str, device_id: strawberry.ID | None = None
    ) -> AuthPayload:
        _check_signed(message, signature)
        client = info.context.client
        reply = await info.context.clients.auth.sign_in(auth_pb2.SignInRequest(
            message=message, signature=signature, ip_address=client.ip_address, user_agent=client.user_agent,
            device_id=parse_id(device_id, "deviceId") if device_id else "",
        ))
        return AuthPayload.of(reply.tokens, reply.session, reply.is_new_user)

    @strawberry.mutation(description="Exchanges a refresh token for new tokens. Reusing a refresh token revokes "
                                     "its session.")
    async def refresh(self, info: Info, refresh_token: str) -> AuthPayload:
        if not refresh_token.strip():
            raise BadUserInput("`refreshToken` is empty.")
        client = info.context.client
        reply = await info.context.clients.auth.refresh(auth_pb2.RefreshRequest(
            refresh_token=refresh_token, ip_address=client.ip_address, user_agent=client.user_agent,
        ))
        return AuthPayload.of(reply.tokens, reply.session, False)

    @strawberry.mutation(description="Ends the viewer's session, or all their sessions.")
    async def sign_out(self, info: Info, all_sessions: bool = False) -> SignOutPayload:
        viewer = await info.context.viewer()
        reply = await info.context.clients.auth.sign_out(
            auth_pb2.SignOutRequest(session_id=viewer.session_id, all_sessions=all_sessions)
        )
        return SignOutPayload(revoked_count=reply.revoked_count)

    @strawberry.mutation(description="Revokes one of the viewer's sessions (e.g. a lost device).")
    async def revoke_session(self, info: Info, id: strawberry.ID) -> Session:
        viewer = await info.context.viewer()
        reply = await info.context.clients.auth.revoke_session(
            auth_pb2.RevokeSessionRequest(user_id=viewer.user_id, session_id=parse_id(id, "id"))
        )
        return Session.from_proto(reply.session, viewer.session_id)

"""gRPC servicer of the auth service: thin, it translates messages and calls domain code.

Expected failures are DomainErrors raised below this layer; the server interceptor turns them into status
codes. Nothing here decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from mintplane.api.auth.v1 import auth_pb2, auth_pb2_grpc
from mintplane.auth import convert
from mintplane.auth.keys import KeySet
from mintplane.auth.nonces import NonceIssuer
from mintplane.auth.sessions import SessionService
from mintplane.auth.signin import Clock, SignInFlow, utc_now
from mintplane.common.grpc_server import Context


@dataclass(frozen=True, slots=True)
class AuthDomain:
    """The domain objects one servicer delegates to."""

    nonces: NonceIssuer
    sign_in: SignInFlow
    sessions: SessionService
    keys: KeySet
    clock: Clock = utc_now


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, domain: AuthDomain) -> None:
        self._d = domain

    async def CreateNonce(self, request: auth_pb2.CreateNonceRequest, context: Context) -> auth_pb2.CreateNonceResponse:
        issued = await self._d.nonces.create(
            address=request.address, domain=request.domain, caip2=request.chain.caip2, uri=request.uri,
            statement=request.statement,
        )
        return auth_pb2.CreateNonceResponse(
            nonce=issued.nonce, issued_at=convert.timestamp(issued.issued_at),
            expires_at=convert.timestamp(issued.expires_at), message=issued.message,
        )

    async def SignIn(self, request: auth_pb2.SignInRequest, context: Context) -> auth_pb2.SignInResponse:
        result = await self._d.sign_in.sign_in(
            message=request.message, signature=request.signature, ip_address=request.ip_address,
            user_agent=request.user_agent, device_id=request.device_id,
        )
        return auth_pb2.SignInResponse(
            tokens=convert.token_pair(result.tokens), session=convert.session(result.session, self._d.clock()),
            user_id=result.user_id, is_new_user=result.is_new_user,
        )

    async def Refresh(self, request: auth_pb2.RefreshRequest, context: Context) -> auth_pb2.RefreshResponse:
        session, tokens = await self._d.sessions.refresh(request.refresh_token)
        return auth_pb2.RefreshResponse(
            tokens=convert.token_pair(tokens), session=convert.session(session, self._d.clock())
        )

    async def SignOut(self, request: auth_pb2.SignOutRequest, context: Context) -> auth_pb2.SignOutResponse:
        count = await self._d.sessions.sign_out(request.session_id, all_sessions=request.all_sessions)
        return auth_pb2.SignOutResponse(revoked_count=count)

    async def ValidateSession(
        self, request: auth_pb2.ValidateSessionRequest, context: Context
    ) -> auth_pb2.ValidateSessionResponse:
        valid = await self._d.sessions.validate(request.access_token)
        claims = valid.claims
        response = auth_pb2.ValidateSessionResponse(
            user_id=claims.user_id, session_id=claims.session_id, address=claims.address,
            session_expires_at=convert.timestamp(valid.session_expires_at),
        )
        response.chain.caip2 = claims.chain
        response.expires_at.FromSeconds(claims.expires_at)
        return response

    async def ListSessions(
        self, request: auth_pb2.ListSessionsRequest, context: Context
    ) -> auth_pb2.ListSessionsResponse:
        page = await self._d.sessions.list_sessions(
            request.user_id, include_inactive=request.include_inactive, page=request.page
        )
        now = self._d.clock()
        response = auth_pb2.ListSessionsResponse(sessions=[convert.session(s, now) for s in page.items])
        response.page.next_page_token = page.next_page_token
        response.page.total_size = page.total_size
        return response

    async def RevokeSession(
        self, request: auth_pb2.RevokeSessionRequest, context: Context
    ) -> auth_pb2.RevokeSessionResponse:
        session = await self._d.sessions.revoke(request.user_id, request.session_id)
        return auth_pb2.RevokeSessionResponse(session=convert.session(session, self._d.clock()))

    async def ListLoginEvents(
        self, request: auth_pb2.ListLoginEventsRequest, context: Context
    ) -> auth_pb2.ListLoginEventsResponse:
        page = await self._d.sessions.list_login_events(
            user_id=request.user_id, address=request.address, result=request.result, page=request.page
        )
        response = auth_pb2.ListLoginEventsResponse(events=[convert.login_event(e) for e in page.items])
        response.page.next_page_token = page.next_page_token
        return response

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: Context) -> auth_pb2.GetJwksResponse:
        return auth_pb2.GetJwksResponse(keys=[convert.json_web_key(k) for k in self._d.keys.jwks()])

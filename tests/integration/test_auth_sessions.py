"""The auth service as the gateway uses it, against PostgreSQL, Redis and the real user and wallet services.

Sign-in with a fresh eth-account key, first and later logins, access tokens verified offline from the JWKS,
refresh rotation and reuse detection, sign-out, revocation by the owner only, expiry, listing with
pagination, and the key set's rotation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from fixtures.auth.harness import AuthStack, auth_stack, create_nonce, new_account, sign, sign_in, unique_ip
from pydantic import SecretStr

from mintplane.api.auth.v1 import auth_pb2
from mintplane.api.common.v1 import common_pb2
from mintplane.api.user.v1 import user_pb2, user_pb2_grpc
from mintplane.auth.cache import SESSION_KEY
from mintplane.auth.keys import KeySet
from mintplane.auth.repository import AuthRepository

pytestmark = pytest.mark.integration

ADMIN = str(uuid.uuid4())
UNAUTH = grpc.StatusCode.UNAUTHENTICATED


def _pem(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _public_pem(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.fixture(scope="module")
def signing_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def retired_key() -> ec.EllipticCurvePrivateKey:
    """A key being rotated out: its tokens must still verify."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
async def stack(
    signing_key: ed25519.Ed25519PrivateKey, retired_key: ec.EllipticCurvePrivateKey
) -> AsyncIterator[AuthStack]:
    async with auth_stack(
        user_settings={"admin_user_ids": frozenset({uuid.UUID(ADMIN)})},
        auth_jwt_private_key=SecretStr(_pem(signing_key)),
        auth_jwt_previous_public_keys=_public_pem(retired_key),
    ) as running:
        yield running


async def _validate(stack: AuthStack, token: str) -> auth_pb2.ValidateSessionResponse:
    return await stack.stub.ValidateSession(auth_pb2.ValidateSessionRequest(access_token=token))


async def _refused(call: Any, code: grpc.StatusCode = UNAUTH) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return refused.value.details() or ""


# ------------------------------------------------------------------------------------------ sign-in


async def test_first_sign_in_creates_the_user_and_links_the_wallet(stack: AuthStack) -> None:
    account = new_account()
    ip = unique_ip()
    signed_in = await sign_in(stack.stub, account, ip=ip, user_agent="Mozilla/5.0 (pytest)")

    assert signed_in.is_new_user and uuid.UUID(signed_in.user_id)
    session = signed_in.session
    assert session.user_id == signed_in.user_id and session.state == auth_pb2.SESSION_STATE_ACTIVE
    assert session.address == account.address.lower() and session.chain.caip2 == "eip155:31337"
    assert session.ip_address == ip and session.user_agent == "Mozilla/5.0 (pytest)" and uuid.UUID(session.device_id)
    tokens = signed_in.tokens
    assert tokens.token_type == "Bearer" and tokens.refresh_token.startswith("mpr_")
    lifetime = tokens.access_token_expires_at.ToDatetime(UTC) - datetime.now(UTC)
    assert timedelta(minutes=14) < lifetime <= timedelta(minutes=15)
    assert tokens.refresh_token_expires_at.ToDatetime(UTC) == session.expires_at.ToDatetime(UTC)

    user = await stack.pool.fetchrow("SELECT status FROM users.users WHERE user_id = $1::uuid", signed_in.user_id)
    wallet = await stack.pool.fetchrow(
        "SELECT user_id::text, is_primary FROM wallet.wallet_links WHERE address = $1", account.address.lower()
    )
    assert user is not None and user["status"] == "active"
    assert wallet is not None and wallet["user_id"] == signed_in.user_id and wallet["is_primary"]
    stored = await stack.pool.fetchrow(
        "SELECT refresh_hash, previous_refresh_hashes FROM auth.sessions WHERE session_id = $1::uuid",
        session.session_id,
    )
    assert stored is not None and tokens.refresh_token not in stored["refresh_hash"]  # only the hash is stored
    assert len(stored["refresh_hash"]) == 64 and stored["previous_refresh_hashes"] == []
    event = await stack.pool.fetchrow(
        "SELECT result, user_id::text, session_id::text, nonce, host(ip_address) AS ip FROM auth.login_events "
        "WHERE session_id = $1::uuid", session.session_id,
    )
    assert event is not None and event["result"] == "success" and event["user_id"] == signed_in.user_id
    assert event["ip"] == ip and event["nonce"] is not None
    consumed = await stack.pool.fetchrow("SELECT used, used_at FROM auth.auth_nonces WHERE nonce = $1", event["nonce"])
    assert consumed is not None and consumed["used"] and consumed["used_at"] is not None


async def test_later_sign_ins_find_the_same_user(stack: AuthStack) -> None:
    account = new_account()
    first = await sign_in(stack.stub, account)
    second = await sign_in(stack.stub, account)
    assert not second.is_new_user and second.user_id == first.user_id
    assert second.session.session_id != first.session.session_id
    wallets = await stack.pool.fetchval(
        "SELECT count(*) FROM wallet.wallet_links WHERE address = $1", account.address.lower()
    )
    assert wallets == 1


async def test_access_token_verifies_offline_with_the_jwks(stack: AuthStack, signing_key: Any) -> None:
    account = new_account()
    signed_in = await sign_in(stack.stub, account)
    jwks = await stack.stub.GetJwks(auth_pb2.GetJwksRequest())
    assert [k.alg for k in jwks.keys] == ["EdDSA", "ES256"]  # current signing key first, then the retired one
    current = jwks.keys[0]
    assert current.kty == "OKP" and current.crv == "Ed25519" and current.use == "sig" and not current.y

    header = jwt.get_unverified_header(signed_in.tokens.access_token)
    assert header["kid"] == current.kid and header["typ"] == "at+jwt"
    public = jwt.PyJWK({"kty": current.kty, "crv": current.crv, "x": current.x, "kid": current.kid})
    claims = jwt.decode(
        signed_in.tokens.access_token, public.key, algorithms=["EdDSA"], audience="mintplane", issuer="mintplane-auth"
    )
    assert claims["sub"] == signed_in.user_id and claims["sid"] == signed_in.session.session_id
    assert claims["addr"] == account.address.lower() and claims["chain"] == "eip155:31337"

    validated = await _validate(stack, signed_in.tokens.access_token)
    assert (validated.user_id, validated.session_id, validated.address, validated.chain.caip2) == (
        signed_in.user_id, signed_in.session.session_id, account.address.lower(), "eip155:31337"
    )
    assert validated.expires_at == signed_in.tokens.access_token_expires_at
    assert validated.session_expires_at.ToDatetime(UTC) == signed_in.session.expires_at.ToDatetime(UTC)


async def test_tokens_of_the_retired_key_still_verify_and_foreign_or_tampered_ones_do_not(
    stack: AuthStack, retired_key: ec.EllipticCurvePrivateKey
) -> None:
    signed_in = await sign_in(stack.stub, new_account())
    now = datetime.now(UTC)
    claims = {"user_id": signed_in.user_id, "session_id": signed_in.session.session_id, "address": "0x" + "0" * 40,
              "chain": "eip155:31337", "issued_at": now}
    retired = KeySet(retired_key)
    token = retired.sign(issuer="mintplane-auth", audience="mintplane", expires_at=now + timedelta(minutes=5), **claims)
    assert (await _validate(stack, token)).session_id == signed_in.session.session_id

    stranger = KeySet(ed25519.Ed25519PrivateKey.generate())
    forged = stranger.sign(issuer="mintplane-auth", audience="mintplane", expires_at=now + timedelta(minutes=5),
                           **claims)
    assert "unknown key" in await _refused(_validate(stack, forged))
    expired = retired.sign(issuer="mintplane-auth", audience="mintplane", expires_at=now - timedelta(minutes=1),
                           **claims)
    assert "expired" in await _refused(_validate(stack, expired))
    other_audience = retired.sign(issuer="mintplane-auth", audience="elsewhere",
                                  expires_at=now + timedelta(minutes=5), **claims)
    await _refused(_validate(stack, other_audience))
    head, payload, signature = signed_in.tokens.access_token.split(".")
    await _refused(_validate(stack, f"{head}.{payload}.{signature[::-1]}"))
    await _refused(_validate(stack, "not-a-jwt"))
    await _refused(_validate(stack, ""))


# ------------------------------------------------------------------------------------------ refresh


async def test_refresh_rotates_and_reusing_a_rotated_token_revokes_the_session(stack: AuthStack) -> None:
    signed_in = await sign_in(stack.stub, new_account())
    first = signed_in.tokens

    refreshed = await stack.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token))
    second = refreshed.tokens
    assert refreshed.session.session_id == signed_in.session.session_id
    assert second.refresh_token != first.refresh_token and second.access_token != first.access_token
    assert refreshed.session.last_used_at.ToDatetime(UTC) >= signed_in.session.last_used_at.ToDatetime(UTC)
    third = (await stack.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=second.refresh_token))).tokens
    assert (await _validate(stack, third.access_token)).session_id == signed_in.session.session_id
    history = await stack.pool.fetchval(
        "SELECT previous_refresh_hashes FROM auth.sessions WHERE session_id = $1::uuid", signed_in.session.session_id
    )
    assert len(history) == 2

    # the first token shows up again: someone copied it. The whole session ends, for both holders.
    details = await _refused(stack.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=first.refresh_token)))
    assert "already used" in details
    row = await stack.pool.fetchrow(
        "SELECT revoked_at, revoked_reason FROM auth.sessions WHERE session_id = $1::uuid", signed_in.session.session_id
    )
    assert row is not None and row["revoked_at"] is not None and row["revoked_reason"] == "refresh_reuse"
    await _refused(stack.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=third.refresh_token)))
    assert "revoked" in await _refused(_validate(stack, third.access_token))


async def test_refresh_refuses_garbage_without_touching_sessions(stack: AuthStack) -> None:
    for token in ("", "mpr_short", "mpr_" + "A" * 43, "x" * 10_000):
        assert await _refused(stack.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token))) == (
            "refresh token is not valid"
        )


async def test_concurrent_refreshes_with_one_token_end_the_session(stack: AuthStack) -> None:
    signed_in = await sign_in(stack.stub, new_account())
    request = auth_pb2.RefreshRequest(refresh_token=signed_in.tokens.refresh_token)
    results = await asyncio.gather(*(stack.stub.Refresh(request) for _ in range(4)), return_exceptions=True)
    assert sum(isinstance(r, auth_pb2.RefreshResponse) for r in results) == 1
    revoked = await stack.pool.fetchval(
        "SELECT revoked_reason FROM auth.sessions WHERE session_id = $1::uuid", signed_in.session.session_id
    )
    assert revoked == "refresh_reuse"


# ------------------------------------------------------------------------------------------ sign-out, expiry


async def test_sign_out_revokes_the_session_idempotently(stack: AuthStack) -> None:
    account = new_account()
    kept = await sign_in(stack.stub, account)
    ended = await sign_in(stack.stub, account)
    assert (await _validate(stack, ended.tokens.access_token)).session_id == ended.session.session_id  # cached

    out = await stack.stub.SignOut(auth_pb2.SignOutRequest(session_id=ended.session.session_id))
    assert out.revoked_count == 1
    again = await stack.stub.SignOut(auth_pb2.SignOutRequest(session_id=ended.session.session_id))
    assert again.revoked_count == 0
    assert "revoked" in await _refused(_validate(stack, ended.tokens.access_token))
    await _refused(stack.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=ended.tokens.refresh_token)))
    assert (await _validate(stack, kept.tokens.access_token)).session_id == kept.session.session_id

    await _refused(stack.stub.SignOut(auth_pb2.SignOutRequest(session_id=str(uuid.uuid4()))), grpc.StatusCode.NOT_FOUND)
    await _refused(stack.stub.SignOut(auth_pb2.SignOutRequest(session_id="nope")), grpc.StatusCode.INVALID_ARGUMENT)


async def test_sign_out_everywhere_revokes_every_session_of_the_user(stack: AuthStack) -> None:
    account = new_account()
    sessions = [await sign_in(stack.stub, account) for _ in range(3)]
    everywhere = auth_pb2.SignOutRequest(session_id=sessions[0].session.session_id, all_sessions=True)
    out = await stack.stub.SignOut(everywhere)
    assert out.revoked_count == 3
    for s in sessions:
        await _refused(_validate(stack, s.tokens.access_token))


async def test_expired_sessions_are_refused(stack: AuthStack) -> None:
    signed_in = await sign_in(stack.stub, new_account())
    session_id = signed_in.session.session_id
    await stack.pool.execute(
        "UPDATE auth.sessions SET expires_at = now() - interval '1 second' WHERE session_id = $1::uuid", session_id
    )
    await stack.redis.delete(SESSION_KEY.format(session_id))  # as when the short cache entry has lapsed
    assert "expired" in await _refused(_validate(stack, signed_in.tokens.access_token))
    assert "expired" in await _refused(
        stack.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=signed_in.tokens.refresh_token))
    )


async def test_blocked_users_cannot_sign_in_or_refresh(stack: AuthStack) -> None:
    account = new_account()
    signed_in = await sign_in(stack.stub, account)
    async with grpc.aio.insecure_channel(stack.user_target) as channel:
        await user_pb2_grpc.UserServiceStub(channel).SetUserStatus(
            user_pb2.SetUserStatusRequest(
                user_id=signed_in.user_id, status=user_pb2.USER_STATUS_SUSPENDED, reason="test", actor_user_id=ADMIN
            )
        )
    details = await _refused(sign_in(stack.stub, account), grpc.StatusCode.PERMISSION_DENIED)
    assert "suspended" in details
    await _refused(
        stack.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=signed_in.tokens.refresh_token)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "revoked" in await _refused(_validate(stack, signed_in.tokens.access_token))
    events = await stack.stub.ListLoginEvents(
        auth_pb2.ListLoginEventsRequest(user_id=signed_in.user_id, result=auth_pb2.LOGIN_RESULT_USER_BLOCKED)
    )
    assert len(events.events) == 1 and events.events[0].address == account.address.lower()


# ------------------------------------------------------------------------------------------ listing, revocation


async def test_sessions_are_listed_newest_first_with_pagination(stack: AuthStack) -> None:
    account = new_account()
    made = [await sign_in(stack.stub, account) for _ in range(5)]
    user_id = made[0].user_id
    await stack.stub.SignOut(auth_pb2.SignOutRequest(session_id=made[0].session.session_id))

    seen: list[str] = []
    token = ""
    while True:
        page = await stack.stub.ListSessions(
            auth_pb2.ListSessionsRequest(user_id=user_id, page=common_pb2.PageRequest(page_size=2, page_token=token))
        )
        assert page.page.total_size == 4
        seen += [s.session_id for s in page.sessions]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == [m.session.session_id for m in reversed(made[1:])]

    everything = await stack.stub.ListSessions(auth_pb2.ListSessionsRequest(user_id=user_id, include_inactive=True))
    assert everything.page.total_size == 5 and everything.sessions[-1].state == auth_pb2.SESSION_STATE_REVOKED
    assert everything.sessions[-1].HasField("revoked_at")

    first = await stack.stub.ListSessions(
        auth_pb2.ListSessionsRequest(user_id=user_id, page=common_pb2.PageRequest(page_size=1))
    )
    await _refused(
        stack.stub.ListSessions(auth_pb2.ListSessionsRequest(
            user_id=user_id, include_inactive=True, page=common_pb2.PageRequest(page_token=first.page.next_page_token)
        )),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await _refused(
        stack.stub.ListSessions(
            auth_pb2.ListSessionsRequest(user_id=user_id, page=common_pb2.PageRequest(page_size=-1))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_only_the_owner_can_revoke_a_session(stack: AuthStack) -> None:
    owner = await sign_in(stack.stub, new_account())
    other = await sign_in(stack.stub, new_account())
    request = auth_pb2.RevokeSessionRequest(user_id=other.user_id, session_id=owner.session.session_id)
    await _refused(stack.stub.RevokeSession(request), grpc.StatusCode.PERMISSION_DENIED)
    assert (await _validate(stack, owner.tokens.access_token)).user_id == owner.user_id

    await _refused(
        stack.stub.RevokeSession(auth_pb2.RevokeSessionRequest(user_id=owner.user_id, session_id=str(uuid.uuid4()))),
        grpc.StatusCode.NOT_FOUND,
    )
    mine = auth_pb2.RevokeSessionRequest(user_id=owner.user_id, session_id=owner.session.session_id)
    revoked = (await stack.stub.RevokeSession(mine)).session
    assert revoked.state == auth_pb2.SESSION_STATE_REVOKED and revoked.HasField("revoked_at")
    again = (await stack.stub.RevokeSession(mine)).session
    assert again.revoked_at == revoked.revoked_at  # idempotent: the first revocation time stays
    await _refused(_validate(stack, owner.tokens.access_token))


async def test_login_events_list_by_user_and_address_with_result_filter(stack: AuthStack) -> None:
    account = new_account()
    signed_in = await sign_in(stack.stub, account)
    issued = await create_nonce(stack.stub, account.address)
    for _ in range(2):
        await _refused(stack.stub.SignIn(auth_pb2.SignInRequest(
            message=issued.message, signature=sign(new_account(), issued.message), ip_address=unique_ip()
        )))
    by_address = await stack.stub.ListLoginEvents(auth_pb2.ListLoginEventsRequest(address=account.address.upper()
                                                                                  .replace("0X", "0x")))
    assert [e.result for e in by_address.events] == [
        auth_pb2.LOGIN_RESULT_INVALID_SIGNATURE, auth_pb2.LOGIN_RESULT_INVALID_SIGNATURE, auth_pb2.LOGIN_RESULT_SUCCESS
    ]
    assert by_address.events[0].error_message and by_address.events[0].HasField("occurred_at")
    assert by_address.events[-1].user_id == signed_in.user_id and by_address.events[-1].domain == "localhost:3000"

    page = await stack.stub.ListLoginEvents(auth_pb2.ListLoginEventsRequest(
        address=account.address, result=auth_pb2.LOGIN_RESULT_INVALID_SIGNATURE,
        page=common_pb2.PageRequest(page_size=1),
    ))
    assert len(page.events) == 1 and page.page.next_page_token
    rest = await stack.stub.ListLoginEvents(auth_pb2.ListLoginEventsRequest(
        address=account.address, result=auth_pb2.LOGIN_RESULT_INVALID_SIGNATURE,
        page=common_pb2.PageRequest(page_size=1, page_token=page.page.next_page_token),
    ))
    assert len(rest.events) == 1 and rest.events[0].id != page.events[0].id and not rest.page.next_page_token

    by_user = await stack.stub.ListLoginEvents(auth_pb2.ListLoginEventsRequest(user_id=signed_in.user_id))
    assert [e.result for e in by_user.events] == [auth_pb2.LOGIN_RESULT_SUCCESS]
    await _refused(stack.stub.ListLoginEvents(auth_pb2.ListLoginEventsRequest()), grpc.StatusCode.INVALID_ARGUMENT)


async def test_create_nonce_refuses_bad_requests(stack: AuthStack) -> None:
    address = new_account().address
    bad = [
        {"address": "0x1234", "domain": "localhost:3000", "caip2": "eip155:31337"},
        {"address": address, "domain": "evil.example", "caip2": "eip155:31337"},
        {"address": address, "domain": "localhost:3000", "caip2": "cosmos:cosmoshub-4"},
        {"address": address, "domain": "localhost:3000", "caip2": "eip155:31337", "uri": "https://evil.example"},
        {"address": address, "domain": "localhost:3000", "caip2": "eip155:31337", "statement": "two\nlines"},
    ]
    for fields in bad:
        request = auth_pb2.CreateNonceRequest(
            address=fields["address"], domain=fields["domain"], chain=common_pb2.ChainRef(caip2=fields["caip2"]),
            uri=fields.get("uri", ""), statement=fields.get("statement", ""),
        )
        await _refused(stack.stub.CreateNonce(request), grpc.StatusCode.INVALID_ARGUMENT)
    stored = await stack.pool.fetchval("SELECT count(*) FROM auth.auth_nonces WHERE account_id = $1", address.lower())
    assert stored == 0

    issued = await create_nonce(stack.stub, address.lower())
    row = await stack.pool.fetchrow("SELECT * FROM auth.auth_nonces WHERE nonce = $1", issued.nonce)
    assert row is not None and row["account_id"] == address.lower() and row["domain"] == "localhost:3000"
    assert row["chain_id"] == "eip155:31337" and not row["used"]
    assert row["expires_at"] == issued.expires_at.ToDatetime(UTC)
    assert (row["expires_at"] - row["issued_at"]) == timedelta(minutes=5)
    assert f"Nonce: {issued.nonce}\n" in issued.message and address in issued.message  # EIP-55 form


async def test_expired_nonces_are_purged_a_day_after_expiry(stack: AuthStack) -> None:
    address = new_account().address.lower()
    stale, recent = f"stale{uuid.uuid4().hex}", f"recent{uuid.uuid4().hex}"
    await stack.pool.executemany(
        "INSERT INTO auth.auth_nonces (nonce, account_id, domain, chain_id, issued_at, expires_at) "
        "VALUES ($1, $2, 'localhost:3000', 'eip155:31337', now() - $3::interval, now() - $3::interval)",
        [(stale, address, timedelta(days=2)), (recent, address, timedelta(hours=1))],
    )
    await stack.pool.execute(
        "INSERT INTO auth.login_events (account_id, result, nonce) VALUES ($1, 'bad_signature', $2)", address, stale
    )
    deleted = await AuthRepository(stack.pool).purge_nonces(86400)
    assert deleted >= 1
    left = await stack.pool.fetch("SELECT nonce FROM auth.auth_nonces WHERE account_id = $1", address)
    assert [r["nonce"] for r in left] == [recent]
    event = await stack.pool.fetchrow("SELECT nonce, result FROM auth.login_events WHERE account_id = $1", address)
    assert event is not None and event["nonce"] is None and event["result"] == "bad_signature"  # history kept

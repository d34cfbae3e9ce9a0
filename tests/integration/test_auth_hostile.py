"""Hostile sign-in attempts against the real auth service (PostgreSQL, Redis, anvil; user and wallet services).

Each case is refused with its status code and recorded as one login event with its result; the snapshot of
every row the attempt could touch (the address's nonces, sessions, wallet links, users, verifications) is
unchanged otherwise. In particular no nonce is consumed, so the real owner can still sign in with it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from eth_account.signers.local import LocalAccount
from fixtures.auth.harness import (
    AuthStack,
    auth_stack,
    craft,
    create_nonce,
    expire_nonce,
    new_account,
    only_new_event,
    sign,
    sign_in,
    snapshot,
    soon,
    unique_ip,
)
from prometheus_client import REGISTRY

from mintplane.api.auth.v1 import auth_pb2

pytestmark = pytest.mark.integration

INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNAUTH = grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[AuthStack]:
    async with auth_stack() as running:
        yield running


@dataclass
class Attempt:
    """One SignIn request, plus the address its login event is filed under."""

    message: str
    signature: str
    address: str
    user_agent: str = "pytest/hostile"
    device_id: str = ""
    ip: str = ""


Build = Callable[[AuthStack, LocalAccount], Awaitable[Attempt]]


async def _nonce(stack: AuthStack, account: LocalAccount) -> str:
    return (await create_nonce(stack.stub, account.address)).nonce


async def replayed_nonce(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    signature = sign(account, issued.message)
    await stack.stub.SignIn(auth_pb2.SignInRequest(message=issued.message, signature=signature, ip_address=unique_ip()))
    return Attempt(issued.message, signature, account.address)


async def expired_nonce(stack: AuthStack, account: LocalAccount) -> Attempt:
    nonce = await _nonce(stack, account)
    await expire_nonce(stack.pool, nonce)
    text = craft(account.address, nonce, issued_at=datetime.now(UTC) - timedelta(minutes=10))
    return Attempt(text, sign(account, text), account.address)


async def expired_message(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, await _nonce(stack, account), issued_at=soon(-10), expires_at=soon(-1))
    return Attempt(text, sign(account, text), account.address)


async def not_yet_valid(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, await _nonce(stack, account), not_before=soon(60))
    return Attempt(text, sign(account, text), account.address)


async def issued_in_future(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, await _nonce(stack, account), issued_at=soon(60))
    return Attempt(text, sign(account, text), account.address)


async def other_domain(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, await _nonce(stack, account), domain="evil.example", uri="https://evil.example")
    return Attempt(text, sign(account, text), account.address)


async def nonce_for_other_domain(stack: AuthStack, account: LocalAccount) -> Attempt:
    # both domains are allowed, but the nonce was issued for localhost:3000
    text = craft(account.address, await _nonce(stack, account), domain="localhost:8081", uri="http://localhost:8081")
    return Attempt(text, sign(account, text), account.address)


async def other_chain(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, await _nonce(stack, account), chain=1)
    return Attempt(text, sign(account, text), account.address)


async def other_uri(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, await _nonce(stack, account), uri="https://evil.example/login")
    return Attempt(text, sign(account, text), account.address)


async def plain_http_uri_for_public_host(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, await _nonce(stack, account), uri="ftp://localhost:3000/")
    return Attempt(text, sign(account, text), account.address)


async def signed_by_another_key(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    return Attempt(issued.message, sign(new_account(), issued.message), account.address)


async def message_altered_after_signing(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    signature = sign(account, issued.message)
    return Attempt(issued.message.replace("Sign in to mintplane.", "Sign in to mintplane!"), signature,
                   account.address)


async def nonce_of_another_address(stack: AuthStack, account: LocalAccount) -> Attempt:
    victim = new_account()
    nonce = await _nonce(stack, victim)
    text = craft(account.address, nonce)
    return Attempt(text, sign(account, text), account.address)


async def unknown_nonce(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, uuid.uuid4().hex[:20])
    return Attempt(text, sign(account, text), account.address)


async def malformed_message(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = f"please let me in\n{account.address}\nNonce: 12345678"
    return Attempt(text, sign(account, text), account.address)


async def oversized_message(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, await _nonce(stack, account), statement="x" * 5000)
    return Attempt(text, sign(account, text), account.address)


async def oversized_signature(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    return Attempt(issued.message, "0x" + "ab" * 5000, account.address)


async def wrong_length_signature(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    return Attempt(issued.message, sign(account, issued.message)[:-2], account.address)


async def non_hex_signature(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    return Attempt(issued.message, "0x" + "zz" * 65, account.address)


async def empty_signature(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    return Attempt(issued.message, "", account.address)


async def lowercase_address(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    text = issued.message.replace(issued.message.split("\n")[1], account.address.lower())
    return Attempt(text, sign(account, text), account.address)


async def non_canonical_message(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    text = issued.message + "\n"
    return Attempt(text, sign(account, text), account.address)


async def control_characters(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    text = issued.message.replace("\n", "\r\n")
    return Attempt(text, sign(account, text), account.address)


async def chain_id_zero(stack: AuthStack, account: LocalAccount) -> Attempt:
    text = craft(account.address, await _nonce(stack, account)).replace("Chain ID: 31337", "Chain ID: 0")
    return Attempt(text, sign(account, text), account.address)


async def erc6492_suffix_over_garbage(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    return Attempt(issued.message, "0x" + "ff" * 40 + "6492" * 16, account.address)


async def bad_ip_address(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    return Attempt(issued.message, sign(account, issued.message), account.address, ip="not-an-ip")


async def oversized_user_agent(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    return Attempt(issued.message, sign(account, issued.message), account.address, user_agent="u" * 5000)


async def bad_device_id(stack: AuthStack, account: LocalAccount) -> Attempt:
    issued = await create_nonce(stack.stub, account.address)
    return Attempt(issued.message, sign(account, issued.message), account.address, device_id="laptop")


CASES: list[tuple[Build, grpc.StatusCode, str]] = [
    (replayed_nonce, UNAUTH, "nonce_replayed"),
    (expired_nonce, UNAUTH, "nonce_expired"),
    (expired_message, UNAUTH, "expired_message"),
    (not_yet_valid, UNAUTH, "not_yet_valid"),
    (issued_in_future, UNAUTH, "issued_in_future"),
    (other_domain, UNAUTH, "domain_mismatch"),
    (nonce_for_other_domain, UNAUTH, "domain_mismatch"),
    (other_chain, UNAUTH, "chain_mismatch"),
    (other_uri, UNAUTH, "uri_mismatch"),
    (plain_http_uri_for_public_host, UNAUTH, "uri_mismatch"),
    (signed_by_another_key, UNAUTH, "bad_signature"),
    (message_altered_after_signing, UNAUTH, "bad_signature"),
    (nonce_of_another_address, UNAUTH, "nonce_wrong_account"),
    (unknown_nonce, UNAUTH, "nonce_unknown"),
    (wrong_length_signature, UNAUTH, "bad_signature"),
    (malformed_message, INVALID, "malformed"),
    (oversized_message, INVALID, "malformed"),
    (oversized_signature, INVALID, "malformed"),
    (non_hex_signature, INVALID, "malformed"),
    (empty_signature, INVALID, "malformed"),
    (lowercase_address, INVALID, "malformed"),
    (non_canonical_message, INVALID, "malformed"),
    (control_characters, INVALID, "malformed"),
    (chain_id_zero, INVALID, "malformed"),
    (erc6492_suffix_over_garbage, INVALID, "malformed"),
    (bad_ip_address, INVALID, "malformed"),
    (oversized_user_agent, INVALID, "malformed"),
    (bad_device_id, INVALID, "malformed"),
]


@pytest.mark.parametrize(("build", "code", "result"), CASES, ids=[c[0].__name__ for c in CASES])
async def test_hostile_sign_in_is_refused_and_changes_nothing_but_its_login_event(
    stack: AuthStack, build: Build, code: grpc.StatusCode, result: str
) -> None:
    account = new_account()
    attempt = await build(stack, account)
    ip = attempt.ip or unique_ip()
    lookup_ip = None if attempt.ip else ip  # a deliberately invalid IP is not stored
    before = await snapshot(stack.pool, attempt.address, lookup_ip)
    counted = REGISTRY.get_sample_value("mintplane_auth_sign_ins_total", {"outcome": result}) or 0.0

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.stub.SignIn(
            auth_pb2.SignInRequest(
                message=attempt.message, signature=attempt.signature, ip_address=ip,
                user_agent=attempt.user_agent, device_id=attempt.device_id,
            )
        )

    assert refused.value.code() == code, refused.value.details()
    details = refused.value.details() or ""
    assert details and "Traceback" not in details
    assert len(attempt.signature) < 12 or attempt.signature[2:40] not in details  # no secrets echoed back
    after = await snapshot(stack.pool, attempt.address, lookup_ip)
    event = only_new_event(before, after)
    assert event["result"] == result, event
    assert REGISTRY.get_sample_value("mintplane_auth_sign_ins_total", {"outcome": result}) == counted + 1
    assert event["error_message"] and event["session_id"] is None


async def test_refused_attempts_do_not_burn_the_owners_nonce(stack: AuthStack) -> None:
    """A stranger posting a bad signature with the owner's nonce must not cancel the owner's sign-in."""
    owner = new_account()
    issued = await create_nonce(stack.stub, owner.address)
    for forged in (sign(new_account(), issued.message), "0x" + "00" * 65):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stack.stub.SignIn(auth_pb2.SignInRequest(message=issued.message, signature=forged))
        assert refused.value.code() == UNAUTH

    signed_in = await stack.stub.SignIn(
        auth_pb2.SignInRequest(message=issued.message, signature=sign(owner, issued.message))
    )
    assert signed_in.session.state == auth_pb2.SESSION_STATE_ACTIVE
    events = await stack.stub.ListLoginEvents(auth_pb2.ListLoginEventsRequest(address=owner.address))
    assert [e.result for e in events.events] == [
        auth_pb2.LOGIN_RESULT_SUCCESS, auth_pb2.LOGIN_RESULT_INVALID_SIGNATURE, auth_pb2.LOGIN_RESULT_INVALID_SIGNATURE,
    ]


async def test_a_nonce_signs_in_once_even_under_concurrent_replays(stack: AuthStack) -> None:
    account = new_account()
    issued = await create_nonce(stack.stub, account.address)
    request = auth_pb2.SignInRequest(message=issued.message, signature=sign(account, issued.message))
    await sign_in(stack.stub, account)  # first login (user + wallet) done, so the race is only about the nonce
    results = await asyncio.gather(*(stack.stub.SignIn(request) for _ in range(8)), return_exceptions=True)
    successes = [r for r in results if isinstance(r, auth_pb2.SignInResponse)]
    failures = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(successes) == 1, results
    assert len(failures) == 7 and all(f.code() == UNAUTH for f in failures)

"""Per-address and per-IP sign-in limits and the per-address nonce limit, counted in the real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from fixtures.auth.harness import AuthStack, auth_stack, create_nonce, new_account, sign, snapshot, unique_ip

from mintplane.api.auth.v1 import auth_pb2

pytestmark = pytest.mark.integration

LIMIT = 3


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[AuthStack]:
    async with auth_stack(
        auth_rate_limit_signin_address=f"{LIMIT}/minute",
        auth_rate_limit_signin_ip=f"{LIMIT}/minute",
        auth_rate_limit_nonce_address=f"{LIMIT + 2}/minute",
    ) as running:
        yield running


async def test_address_limit_trips_and_refuses_even_a_valid_signature(stack: AuthStack) -> None:
    account = new_account()
    issued = await create_nonce(stack.stub, account.address)
    for _ in range(LIMIT):  # each from another IP: only the address limit can trip
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stack.stub.SignIn(auth_pb2.SignInRequest(
                message=issued.message, signature=sign(new_account(), issued.message), ip_address=unique_ip()
            ))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    ip = unique_ip()
    before = await snapshot(stack.pool, account.address, ip)
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await stack.stub.SignIn(auth_pb2.SignInRequest(
            message=issued.message, signature=sign(account, issued.message), ip_address=ip
        ))
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "address" in (limited.value.details() or "") and "retry in" in (limited.value.details() or "")
    after = await snapshot(stack.pool, account.address, ip)
    new = [e for e in after["events"] if e not in before["events"]]
    assert [e["result"] for e in new] == ["rate_limited"]
    assert after["nonces"] == before["nonces"] and after["sessions"] == before["sessions"] == []


async def test_ip_limit_trips_across_addresses(stack: AuthStack) -> None:
    ip = unique_ip()
    for _ in range(LIMIT):
        account = new_account()
        issued = await create_nonce(stack.stub, account.address)
        await stack.stub.SignIn(auth_pb2.SignInRequest(
            message=issued.message, signature=sign(account, issued.message), ip_address=ip
        ))
    account = new_account()
    issued = await create_nonce(stack.stub, account.address)
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await stack.stub.SignIn(auth_pb2.SignInRequest(
            message=issued.message, signature=sign(account, issued.message), ip_address=ip
        ))
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "IP address" in (limited.value.details() or "")
    # the same person from another network is not affected
    ok = await stack.stub.SignIn(auth_pb2.SignInRequest(
        message=issued.message, signature=sign(account, issued.message), ip_address=unique_ip()
    ))
    assert ok.session.state == auth_pb2.SESSION_STATE_ACTIVE
    events = await stack.stub.ListLoginEvents(auth_pb2.ListLoginEventsRequest(
        address=account.address, result=auth_pb2.LOGIN_RESULT_RATE_LIMITED
    ))
    assert len(events.events) == 1 and events.events[0].ip_address == ip


async def test_nonce_requests_are_limited_per_address(stack: AuthStack) -> None:
    address = new_account().address
    for _ in range(LIMIT + 2):
        await create_nonce(stack.stub, address)
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await create_nonce(stack.stub, address)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    stored = await stack.pool.fetchval("SELECT count(*) FROM auth.auth_nonces WHERE account_id = $1", address.lower())
    assert stored == LIMIT + 2

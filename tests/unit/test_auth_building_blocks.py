"""Small pieces of the auth service that need nothing running: signature decoding and ERC-6492 unwrapping
(shared with the wallet service through mintplane.common.signatures), how the shared verifier's refusals
become sign-in outcomes, refresh tokens, page tokens, the outcome -> status/result tables, the RPC endpoint
fallback, and the first-login race (fakes of the service's own Identity interface)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from eth_abi.abi import encode as abi_encode

from mintplane.api.auth.v1 import auth_pb2
from mintplane.auth.directory import RegistryRpcEndpoints, UserState
from mintplane.auth.errors import LOGIN_RESULT, Outcome, SignInRejected, outcomes_for
from mintplane.auth.settings import AuthSettings
from mintplane.auth.signin import ClientInfo, SignInFlow, _rejection, client_info
from mintplane.auth.siwe_message import SignedMessage
from mintplane.auth.tokens import hash_refresh_token, is_refresh_token_shaped, new_refresh_token
from mintplane.common import pagination
from mintplane.common.errors import InvalidArgument
from mintplane.common.signatures import (
    ERC6492_SUFFIX,
    MalformedSignature,
    Reason,
    Rejected,
    is_erc6492,
    parse_signature_hex,
    unwrap_erc6492,
)

pytestmark = pytest.mark.unit


def test_signature_decoding_limits() -> None:
    assert parse_signature_hex("0x" + "ab" * 65, max_bytes=4096) == b"\xab" * 65
    for bad in ("", "0x", "ab" * 65, "0xabc", "0x" + "zz" * 65, "0x" + "00" * 5000):
        with pytest.raises(MalformedSignature):
            parse_signature_hex(bad, max_bytes=4096)
    # the wallet service also takes bare hex; the limit still applies before decoding
    assert parse_signature_hex("ab" * 65, require_prefix=False) == b"\xab" * 65
    with pytest.raises(MalformedSignature, match="longer than 100 bytes"):
        parse_signature_hex("00" * 101, max_bytes=100, require_prefix=False)


def test_erc6492_wrapper() -> None:
    factory = "0x" + "12" * 20
    wrapped = abi_encode(["address", "bytes", "bytes"], [factory, b"\xde\xad", b"\x01" * 65]) + ERC6492_SUFFIX
    assert is_erc6492(wrapped) and not is_erc6492(b"\x01" * 65) and not is_erc6492(ERC6492_SUFFIX)
    unwrapped = unwrap_erc6492(wrapped)
    assert unwrapped is not None
    assert (unwrapped.factory, unwrapped.factory_calldata, unwrapped.inner_signature) == (
        factory, b"\xde\xad", b"\x01" * 65
    )
    assert unwrap_erc6492(b"\xff" * 40 + ERC6492_SUFFIX) is None


@pytest.mark.parametrize(
    ("reason", "outcome", "status"),
    [
        (Reason.MALFORMED, Outcome.MALFORMED, grpc.StatusCode.INVALID_ARGUMENT),
        (Reason.NOT_SIGNER, Outcome.BAD_SIGNATURE, grpc.StatusCode.UNAUTHENTICATED),
        (Reason.NO_RPC, Outcome.BAD_SIGNATURE, grpc.StatusCode.UNAUTHENTICATED),
        (Reason.UNAVAILABLE, Outcome.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_verifier_refusals_map_to_sign_in_outcomes(reason: Reason, outcome: Outcome, status: grpc.StatusCode) -> None:
    rejected = _rejection(Rejected(reason, "detail"), "eip155:8453")
    assert rejected.outcome is outcome and rejected.to_domain_error().code == status
    if reason in (Reason.NO_RPC, Reason.UNAVAILABLE):
        assert "eip155:8453" in rejected.message


def test_refresh_tokens_are_random_prefixed_and_stored_as_sha256() -> None:
    token, digest = new_refresh_token()
    other, _ = new_refresh_token()
    assert token != other and is_refresh_token_shaped(token) and token.startswith("mpr_")
    assert digest == hash_refresh_token(token) and len(digest) == 64 and token not in digest
    assert not is_refresh_token_shaped(token + "x") and not is_refresh_token_shaped("mpr_" + "*" * 43)


def test_page_tokens_round_trip_and_are_bound_to_their_request() -> None:
    cursor = pagination.Cursor(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid.uuid4())
    mine = pagination.scope_of("u1", False)
    token = pagination.encode("sessions", mine, cursor)
    assert pagination.decode(token, "sessions", mine) == cursor and pagination.decode("", "sessions", mine) is None
    other_request = pagination.scope_of("u2", False)
    for bad, kind, scope in (
        (token, "sessions", other_request), (token, "login_events", mine),
        ("%%%", "sessions", mine), ("e30", "sessions", mine), ("a" * 600, "sessions", mine),
    ):
        with pytest.raises(InvalidArgument):
            pagination.decode(bad, kind, scope)
    assert pagination.page_size(0) == 20 and pagination.page_size(500) == 100
    with pytest.raises(InvalidArgument):
        pagination.page_size(-1)


def test_every_outcome_has_an_api_result_and_a_status() -> None:
    assert set(LOGIN_RESULT) == set(Outcome)
    assert all(len(o.value) <= 32 for o in Outcome)  # login_events.result is varchar(32)
    for value in auth_pb2.LoginResult.values():
        if value != auth_pb2.LOGIN_RESULT_UNSPECIFIED:
            assert outcomes_for(value), auth_pb2.LoginResult.Name(value)
    codes = {o: SignInRejected(o, "x").to_domain_error().code for o in Outcome}
    assert codes[Outcome.MALFORMED] == grpc.StatusCode.INVALID_ARGUMENT
    assert codes[Outcome.RATE_LIMITED] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert codes[Outcome.USER_BLOCKED] == grpc.StatusCode.PERMISSION_DENIED
    assert codes[Outcome.UNAVAILABLE] == grpc.StatusCode.UNAVAILABLE
    assert codes[Outcome.BAD_SIGNATURE] == codes[Outcome.NONCE_REPLAYED] == grpc.StatusCode.UNAUTHENTICATED


def test_client_info_is_validated_because_it_is_stored() -> None:
    info = client_info(" 2001:db8::1 ", "agent", str(uuid.UUID(int=7)), max_user_agent=100)
    assert info == ClientInfo("2001:db8::1", "agent", "00000000-0000-0000-0000-000000000007")
    assert client_info("", "", "", max_user_agent=10) == ClientInfo(None, None, None)
    for args in (("999.1.1.1", "", ""), ("", "u" * 11, ""), ("", "", "laptop")):
        with pytest.raises(SignInRejected):
            client_info(*args, max_user_agent=10)


async def test_dev_chain_falls_back_to_the_local_node_when_the_registry_is_unreachable() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:9") as dead:  # nothing listens on the discard port
        endpoints = RegistryRpcEndpoints(dead, timeout=1.0, fallback_url="http://127.0.0.1:8545")
        assert await endpoints.rpc_url("eip155:31337") == "http://127.0.0.1:8545"
        assert await endpoints.rpc_url("eip155:1") is None  # production chains never fall back
        no_fallback = RegistryRpcEndpoints(dead, timeout=1.0, fallback_url=None)
        assert await no_fallback.rpc_url("eip155:31337") is None


class _Identity:
    """Identity whose LinkWallet loses the race to a concurrent first login of the same address."""

    def __init__(self, winner: str) -> None:
        self.winner = winner
        self.lookups = 0
        self.created: list[str] = []

    async def user_for_address(self, address: str) -> str | None:
        self.lookups += 1
        return self.winner if self.lookups > 2 else None

    async def user_state(self, user_id: str) -> UserState:
        return UserState.ACTIVE

    async def create_user(self, user_id: str) -> None:
        self.created.append(user_id)

    async def link_wallet(self, **_: Any) -> bool:
        return False


class _Lock:
    @contextlib.asynccontextmanager
    async def first_login_lock(self, address: str) -> AsyncIterator[None]:
        yield


async def test_a_lost_first_login_race_signs_in_as_the_winner() -> None:
    identity = _Identity(winner=str(uuid.uuid4()))
    flow = SignInFlow(
        settings=AuthSettings(), repo=None, limiter=None, identity=identity,  # type: ignore[arg-type]
        signatures=None, endpoints=None, cache=_Lock(), issuer=None,  # type: ignore[arg-type]
    )
    signed = SignedMessage(parsed=None, text="m", address="0x" + "1" * 40, domain="d", caip2="eip155:1", nonce="n")
    user_id, is_new = await flow._resolve_user(signed, "0x", ClientInfo(None, None, None))
    assert (user_id, is_new) == (identity.winner, False) and len(identity.created) == 1

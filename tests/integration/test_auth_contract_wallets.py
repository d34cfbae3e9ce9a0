"""Contract-wallet signatures on a real chain (anvil): ERC-1271 for deployed wallets, ERC-6492 for counterfactual ones.

The wallet is ``tests/fixtures/auth/AuthTestAccount.sol`` (accepts its owner key's signatures), created by its
CREATE2 factory. The shared verifier (mintplane.common.signatures, used by auth and wallet) must accept a
wallet that does not exist yet *without* deploying it, and refuse signatures its owner did not make.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from fixtures.auth.harness import AuthStack, auth_stack, create_nonce, new_account, sign, snapshot, unique_ip
from fixtures.auth.smart_wallets import (
    RPC_URL,
    connect,
    deploy,
    deploy_factory,
    is_deployed,
    owner_signature,
    predict,
    salt,
    wrap,
)
from web3 import Web3
from web3.contract import Contract

from mintplane.api.auth.v1 import auth_pb2
from mintplane.common.signatures import Reason, Rejected, Scheme, SignatureVerifier, Verified

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def w3() -> Web3:
    return connect()


@pytest.fixture(scope="module")
def factory(w3: Web3) -> Contract:
    return deploy_factory(w3)


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[AuthStack]:
    async with auth_stack() as running:
        yield running


@pytest.fixture
async def verifier() -> AsyncIterator[SignatureVerifier]:
    checker = SignatureVerifier(timeout_seconds=10)
    yield checker
    await checker.close()


async def _check(verifier: SignatureVerifier, address: str, text: str, signature: bytes) -> Verified | Rejected:
    return await verifier.verify(text.encode(), signature, address, RPC_URL)


def _not_signer(result: Verified | Rejected) -> bool:
    return isinstance(result, Rejected) and result.reason is Reason.NOT_SIGNER


# ------------------------------------------------------------------------------------------ ERC-1271


async def test_deployed_contract_wallet_signs_in_with_erc1271(stack: AuthStack, w3: Web3, factory: Contract) -> None:
    owner = new_account()
    wallet = deploy(w3, factory, owner, salt())
    issued = await create_nonce(stack.stub, wallet)
    signed_in = await stack.stub.SignIn(auth_pb2.SignInRequest(
        message=issued.message, signature=sign(owner, issued.message), ip_address=unique_ip()
    ))
    assert signed_in.is_new_user and signed_in.session.address == wallet
    linked = await stack.pool.fetchval("SELECT user_id::text FROM wallet.wallet_links WHERE address = $1", wallet)
    assert linked == signed_in.user_id


async def test_contract_wallet_refuses_a_stranger_and_keeps_the_nonce(
    stack: AuthStack, w3: Web3, factory: Contract
) -> None:
    owner = new_account()
    wallet = deploy(w3, factory, owner, salt())
    issued = await create_nonce(stack.stub, wallet)
    ip = unique_ip()
    before = await snapshot(stack.pool, wallet, ip)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.stub.SignIn(auth_pb2.SignInRequest(
            message=issued.message, signature=sign(new_account(), issued.message), ip_address=ip
        ))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    after = await snapshot(stack.pool, wallet, ip)
    assert after["nonces"] == before["nonces"] and [e["result"] for e in after["events"]] == ["bad_signature"]


async def test_erc1271_check_against_the_chain(verifier: SignatureVerifier, w3: Web3, factory: Contract) -> None:
    owner = new_account()
    wallet = deploy(w3, factory, owner, salt())
    text = "any EIP-191 message"
    assert await _check(verifier, wallet, text, owner_signature(owner, text)) == Verified(Scheme.ERC1271)
    assert _not_signer(await _check(verifier, wallet, text, owner_signature(new_account(), text)))
    assert _not_signer(await _check(verifier, wallet, text, b"\x01" * 10))
    # an address without code accepts nothing through ERC-1271
    assert _not_signer(await _check(verifier, new_account().address.lower(), text, owner_signature(owner, text)))
    # an EOA's own signature needs no chain at all
    eoa = new_account()
    assert await verifier.verify(text.encode(), owner_signature(eoa, text), eoa.address, None) == Verified(Scheme.EOA)


# ------------------------------------------------------------------------------------------ ERC-6492


async def test_counterfactual_wallet_verifies_with_erc6492_without_being_deployed(
    verifier: SignatureVerifier, w3: Web3, factory: Contract
) -> None:
    owner, wallet_salt = new_account(), salt()
    wallet = predict(factory, owner, wallet_salt)
    text = "sign in as a wallet that does not exist yet"

    verified = await _check(verifier, wallet, text, wrap(factory, owner, wallet_salt, owner_signature(owner, text)))
    assert verified == Verified(Scheme.ERC6492, str(factory.address).lower())
    assert not is_deployed(w3, wallet)  # the eth_call only simulated the deployment

    assert _not_signer(
        await _check(verifier, wallet, text, wrap(factory, owner, wallet_salt, owner_signature(new_account(), text)))
    )
    # a factory call that deploys some other wallet cannot vouch for this address
    stranger = new_account()
    assert _not_signer(
        await _check(verifier, wallet, text, wrap(factory, stranger, wallet_salt, owner_signature(stranger, text)))
    )


async def test_erc6492_wrapper_is_checked_against_an_already_deployed_wallet(
    verifier: SignatureVerifier, w3: Web3, factory: Contract
) -> None:
    owner, wallet_salt = new_account(), salt()
    wallet = deploy(w3, factory, owner, wallet_salt)
    text = "deployed since the signature was made"
    verified = await _check(verifier, wallet, text, wrap(factory, owner, wallet_salt, owner_signature(owner, text)))
    assert isinstance(verified, Verified) and verified.scheme is Scheme.ERC6492
    assert _not_signer(
        await _check(verifier, wallet, text, wrap(factory, owner, wallet_salt, owner_signature(new_account(), text)))
    )


async def test_chains_without_an_endpoint_cannot_verify_contract_wallets(verifier: SignatureVerifier) -> None:
    result = await verifier.verify(b"m", b"\x01" * 65, new_account().address.lower(), None)
    assert isinstance(result, Rejected) and result.reason is Reason.NO_RPC and "no RPC endpoint" in result.detail


async def test_the_endpoint_is_only_looked_up_for_contract_wallets(verifier: SignatureVerifier) -> None:
    lookups: list[str] = []

    async def rpc_url() -> str | None:
        lookups.append("asked")
        return None

    eoa = new_account()
    assert await verifier.verify(b"m", owner_signature(eoa, "m"), eoa.address, rpc_url) == Verified(Scheme.EOA)
    assert lookups == []
    assert isinstance(await verifier.verify(b"m", b"\x01" * 70, eoa.address, rpc_url), Rejected)
    assert lookups == ["asked"]


async def test_an_unreachable_endpoint_is_unavailable_not_a_bad_signature() -> None:
    checker = SignatureVerifier(timeout_seconds=2)
    try:
        result = await checker.verify(b"m", b"\x01" * 65, new_account().address.lower(), "http://127.0.0.1:9")
    finally:
        await checker.close()
    assert isinstance(result, Rejected) and result.reason is Reason.UNAVAILABLE
    assert "127.0.0.1:9" not in result.detail  # endpoint URLs may carry provider keys: never shown

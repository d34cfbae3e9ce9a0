"""First sign-in from a smart wallet that is not deployed yet (ERC-6492), through auth, user and wallet.

Auth verifies the sign-in, creates the user, then hands the same message and signature to the wallet
service's LinkWallet, which verifies them again with the same shared verifier: both must accept the
counterfactual wallet, or the first sign-in cannot complete. Nothing is deployed by verifying.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from fixtures.auth.harness import (
    AuthStack,
    auth_stack,
    create_nonce,
    forget,
    new_account,
    sign,
    snapshot,
    unique_ip,
)
from fixtures.auth.smart_wallets import (
    CHAIN,
    connect,
    deploy,
    deploy_factory,
    erc6492_hex,
    is_deployed,
    predict,
    salt,
)
from web3 import Web3
from web3.contract import Contract

from mintplane.api.auth.v1 import auth_pb2
from mintplane.api.common.v1 import common_pb2
from mintplane.api.wallet.v1 import wallet_pb2, wallet_pb2_grpc

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
async def addresses(stack: AuthStack) -> AsyncIterator[list[str]]:
    """Addresses a test signs in with; every row they caused is deleted afterwards."""
    used: list[str] = []
    yield used
    await forget(stack.pool, used)


async def _sign_in(stack: AuthStack, wallet: str, signature_for: Callable[[str], str]) -> auth_pb2.SignInResponse:
    """Nonce, sign the message verbatim (as the wallet would), sign in."""
    issued = await create_nonce(stack.stub, Web3.to_checksum_address(wallet))
    return await stack.stub.SignIn(auth_pb2.SignInRequest(
        message=issued.message, signature=signature_for(issued.message), ip_address=unique_ip(),
        user_agent="pytest/erc6492", device_id=str(uuid.uuid4()),
    ))


async def test_first_sign_in_from_an_undeployed_wallet_creates_the_user_and_links_the_wallet(
    stack: AuthStack, w3: Web3, factory: Contract, addresses: list[str]
) -> None:
    owner, wallet_salt = new_account(), salt()
    wallet = predict(factory, owner, wallet_salt)
    addresses.append(wallet)

    first = await _sign_in(stack, wallet, lambda text: erc6492_hex(factory, owner, wallet_salt, text))
    assert first.is_new_user and first.session.address == wallet and first.tokens.access_token
    assert not is_deployed(w3, wallet)  # both services only simulated the deployment

    link = await stack.pool.fetchrow(
        "SELECT wallet_id, user_id::text, type, is_primary FROM wallet.wallet_links WHERE address = $1", wallet
    )
    assert link is not None and (link["user_id"], link["type"], link["is_primary"]) == (first.user_id, "contract", True)
    proof = await stack.pool.fetchrow(
        "SELECT status, verification_type, verification_data FROM wallet.wallet_verifications WHERE wallet_id = $1",
        link["wallet_id"],
    )
    assert proof is not None and (proof["status"], proof["verification_type"]) == ("verified", "eip4361")
    assert proof["verification_data"]["signature_scheme"] == "erc6492"
    assert proof["verification_data"]["factory"] == str(factory.address).lower()
    assert await stack.pool.fetchval("SELECT count(*) FROM users.users WHERE user_id = $1::uuid", first.user_id) == 1
    results = await stack.pool.fetch(
        "SELECT result FROM auth.login_events WHERE account_id = $1 ORDER BY timestamp", wallet
    )
    assert [r["result"] for r in results] == ["success"]

    # a later sign-in, still counterfactual, is the same user
    again = await _sign_in(stack, wallet, lambda text: erc6492_hex(factory, owner, wallet_salt, text))
    assert not again.is_new_user and again.user_id == first.user_id

    # once deployed, the wallet's plain ERC-1271 signature signs the same user in
    deploy(w3, factory, owner, wallet_salt)
    later = await _sign_in(stack, wallet, lambda text: sign(owner, text))
    assert not later.is_new_user and later.user_id == first.user_id
    assert await stack.pool.fetchval("SELECT count(*) FROM wallet.wallet_links WHERE address = $1", wallet) == 1


async def test_a_strangers_erc6492_signature_is_refused_by_auth_and_by_wallet(
    stack: AuthStack, factory: Contract, addresses: list[str]
) -> None:
    owner, stranger, wallet_salt = new_account(), new_account(), salt()
    wallet = predict(factory, owner, wallet_salt)
    addresses.append(wallet)

    # auth: refused as a bad signature; nothing but the login event is written, the nonce stays usable
    issued = await create_nonce(stack.stub, Web3.to_checksum_address(wallet))
    ip = unique_ip()
    before = await snapshot(stack.pool, wallet, ip)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.stub.SignIn(auth_pb2.SignInRequest(
            message=issued.message, signature=erc6492_hex(factory, owner, wallet_salt, issued.message, stranger),
            ip_address=ip,
        ))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    after = await snapshot(stack.pool, wallet, ip)
    assert after["nonces"] == before["nonces"] and after["wallets"] == [] and after["users"] == []
    assert [e["result"] for e in after["events"]] == ["bad_signature"]

    # wallet: the same stranger's signature over a link challenge is refused and the attempt recorded
    user_id = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(stack.wallet_target) as channel:
        wallets = wallet_pb2_grpc.WalletServiceStub(channel)
        challenge = await wallets.CreateLinkChallenge(wallet_pb2.CreateLinkChallengeRequest(
            user_id=user_id, address=wallet, chain=common_pb2.ChainRef(caip2=CHAIN), domain="localhost",
        ))
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await wallets.LinkWallet(wallet_pb2.LinkWalletRequest(
                user_id=user_id, message=challenge.message,
                signature=erc6492_hex(factory, owner, wallet_salt, challenge.message, stranger),
            ))
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "not signed by" in (denied.value.details() or "")
        failed = await stack.pool.fetchrow(
            "SELECT status, verification_data->>'reason' AS reason FROM wallet.wallet_verifications "
            "WHERE user_id = $1::uuid", user_id,
        )
        assert failed is not None and (failed["status"], failed["reason"]) == ("failed", "signer_mismatch")

        # ... while the owner's own ERC-6492 signature over the same challenge links the wallet
        linked = await wallets.LinkWallet(wallet_pb2.LinkWalletRequest(
            user_id=user_id, message=challenge.message,
            signature=erc6492_hex(factory, owner, wallet_salt, challenge.message),
        ))
    assert linked.created and linked.wallet.wallet_type == wallet_pb2.WALLET_TYPE_CONTRACT
    assert linked.wallet.address == wallet and linked.wallet.user_id == user_id


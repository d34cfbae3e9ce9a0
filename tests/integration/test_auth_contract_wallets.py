"""Contract-wallet sign-in on a real chain (anvil): ERC-1271 for deployed wallets, ERC-6492 for counterfactual ones.

The wallet is ``tests/fixtures/auth/AuthTestAccount.sol`` (accepts its owner key's signatures), created by its
CREATE2 factory. The deployless ERC-6492 check must accept a wallet that does not exist yet *without*
deploying it, and refuse signatures its owner did not make.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_abi.abi import encode as abi_encode
from eth_account.messages import defunct_hash_message
from eth_account.signers.local import LocalAccount
from fixtures.auth.harness import AuthStack, auth_stack, create_nonce, new_account, sign, snapshot, unique_ip
from web3 import Web3
from web3.contract import Contract

from mintplane.api.auth.v1 import auth_pb2
from mintplane.auth.contract_wallets import ContractWalletVerifier
from mintplane.auth.errors import SignInRejected
from mintplane.auth.signatures import ERC6492_SUFFIX

pytestmark = pytest.mark.integration

RPC_URL = os.environ.get("MINTPLANE_ETH_RPC_URL", "http://127.0.0.1:8545")
CHAIN = "eip155:31337"
ARTIFACT = Path(__file__).resolve().parents[1] / "fixtures" / "auth" / "AuthTestAccount.json"


class Anvil:
    """RpcEndpoints that always answers the dev chain with anvil."""

    async def rpc_url(self, caip2: str) -> str | None:
        return RPC_URL if caip2 == CHAIN else None


@pytest.fixture(scope="module")
def w3() -> Web3:
    web3 = Web3(Web3.HTTPProvider(RPC_URL, request_kwargs={"timeout": 30}))
    assert web3.is_connected(), f"no JSON-RPC node at {RPC_URL}"
    web3.eth.default_account = web3.eth.accounts[0]
    return web3


def _contract(w3: Web3, name: str, address: str | None = None) -> Any:
    compiled = json.loads(ARTIFACT.read_text())["contracts"][name]
    if address is None:
        return w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=compiled["abi"])


@pytest.fixture(scope="module")
def factory(w3: Web3) -> Contract:
    tx = _contract(w3, "AuthTestAccountFactory").constructor().transact()
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=60)
    assert receipt["status"] == 1 and receipt["contractAddress"]
    contract: Contract = _contract(w3, "AuthTestAccountFactory", receipt["contractAddress"])
    return contract


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[AuthStack]:
    async with auth_stack() as running:
        yield running


@pytest.fixture
async def verifier() -> AsyncIterator[ContractWalletVerifier]:
    checker = ContractWalletVerifier(Anvil(), timeout_seconds=10)
    yield checker
    await checker.close()


def _salt() -> bytes:
    return os.urandom(32)


def _predict(factory: Contract, owner: LocalAccount, salt: bytes) -> str:
    return str(factory.functions.predict(owner.address, salt).call()).lower()


def _deploy(w3: Web3, factory: Contract, owner: LocalAccount, salt: bytes) -> str:
    receipt = w3.eth.wait_for_transaction_receipt(factory.functions.deploy(owner.address, salt).transact(), timeout=60)
    assert receipt["status"] == 1
    address = _predict(factory, owner, salt)
    assert len(w3.eth.get_code(Web3.to_checksum_address(address))) > 0
    return address


def _wrap(factory: Contract, owner: LocalAccount, salt: bytes, inner: bytes) -> bytes:
    calldata = bytes.fromhex(factory.encode_abi("deploy", args=[owner.address, salt]).removeprefix("0x"))
    return abi_encode(["address", "bytes", "bytes"], [factory.address, calldata, inner]) + ERC6492_SUFFIX


def _owner_signature(owner: LocalAccount, text: str) -> bytes:
    return bytes.fromhex(sign(owner, text)[2:])


# ------------------------------------------------------------------------------------------ ERC-1271


async def test_deployed_contract_wallet_signs_in_with_erc1271(stack: AuthStack, w3: Web3, factory: Contract) -> None:
    owner = new_account()
    wallet = _deploy(w3, factory, owner, _salt())
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
    wallet = _deploy(w3, factory, owner, _salt())
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


async def test_erc1271_check_against_the_chain(verifier: ContractWalletVerifier, w3: Web3, factory: Contract) -> None:
    owner = new_account()
    wallet = _deploy(w3, factory, owner, _salt())
    text = "any EIP-191 message"
    digest = bytes(defunct_hash_message(text=text))
    assert await verifier.is_valid(CHAIN, wallet, digest, _owner_signature(owner, text))
    assert not await verifier.is_valid(CHAIN, wallet, digest, _owner_signature(new_account(), text))
    assert not await verifier.is_valid(CHAIN, wallet, digest, b"\x01" * 10)
    # an address without code accepts nothing through ERC-1271
    assert not await verifier.is_valid(CHAIN, new_account().address.lower(), digest, _owner_signature(owner, text))


# ------------------------------------------------------------------------------------------ ERC-6492


async def test_counterfactual_wallet_verifies_with_erc6492_without_being_deployed(
    verifier: ContractWalletVerifier, w3: Web3, factory: Contract
) -> None:
    owner, salt = new_account(), _salt()
    wallet = _predict(factory, owner, salt)
    text = "sign in as a wallet that does not exist yet"
    digest = bytes(defunct_hash_message(text=text))

    assert await verifier.is_valid(CHAIN, wallet, digest, _wrap(factory, owner, salt, _owner_signature(owner, text)))
    assert w3.eth.get_code(Web3.to_checksum_address(wallet)) == b""  # the eth_call only simulated the deployment

    assert not await verifier.is_valid(
        CHAIN, wallet, digest, _wrap(factory, owner, salt, _owner_signature(new_account(), text))
    )
    # a factory call that deploys some other wallet cannot vouch for this address
    stranger = new_account()
    assert not await verifier.is_valid(
        CHAIN, wallet, digest, _wrap(factory, stranger, salt, _owner_signature(stranger, text))
    )


async def test_erc6492_wrapper_is_checked_against_an_already_deployed_wallet(
    verifier: ContractWalletVerifier, w3: Web3, factory: Contract
) -> None:
    owner, salt = new_account(), _salt()
    wallet = _deploy(w3, factory, owner, salt)
    text = "deployed since the signature was made"
    digest = bytes(defunct_hash_message(text=text))
    assert await verifier.is_valid(CHAIN, wallet, digest, _wrap(factory, owner, salt, _owner_signature(owner, text)))
    assert not await verifier.is_valid(
        CHAIN, wallet, digest, _wrap(factory, owner, salt, _owner_signature(new_account(), text))
    )


async def test_chains_without_an_endpoint_cannot_verify_contract_wallets(verifier: ContractWalletVerifier) -> None:
    with pytest.raises(SignInRejected) as refused:
        await verifier.is_valid("eip155:1", new_account().address.lower(), b"\x00" * 32, b"\x01" * 65)
    assert refused.value.outcome == "bad_signature" and "no RPC endpoint" in refused.value.message


async def test_an_unreachable_endpoint_is_unavailable_not_a_bad_signature() -> None:
    class Dead:
        async def rpc_url(self, caip2: str) -> str | None:
            return "http://127.0.0.1:9"  # discard port: nothing listens

    checker = ContractWalletVerifier(Dead(), timeout_seconds=2)
    try:
        with pytest.raises(SignInRejected) as refused:
            await checker.is_valid(CHAIN, new_account().address.lower(), b"\x00" * 32, b"\x01" * 65)
    finally:
        await checker.close()
    assert refused.value.outcome == "unavailable"

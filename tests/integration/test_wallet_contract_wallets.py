"""Contract wallets (EIP-1271) link too: a smart-account is deployed on the dev stack's anvil, its owner
signs the link message, and the wallet service asks the contract whether the signature is valid. Wallets not
deployed yet (ERC-6492) are covered, through auth and directly, in test_auth_first_signin_erc6492.py."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3

from mintplane.api.common.v1 import common_pb2
from mintplane.api.wallet.v1 import wallet_pb2 as pb
from mintplane.api.wallet.v1 import wallet_pb2_grpc
from mintplane.common.service import Resources
from mintplane.common.settings import InfraSettings
from mintplane.wallet.server import NEEDS, build_server
from mintplane.wallet.settings import WalletSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# A minimal smart account: valid signatures are the owner's ECDSA signatures over the hash.
OWNER_WALLET = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
contract OwnerWallet {
    address public immutable owner;
    constructor(address owner_) { owner = owner_; }
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r; bytes32 s; uint8 v;
        assembly {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 32))
            v := byte(0, calldataload(add(signature.offset, 64)))
        }
        return ecrecover(hash, v, r, s) == owner ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}
"""
COMPILE = """
const solc = require('solc');
const input = {language: 'Solidity', sources: {'W.sol': {content: process.argv[1]}},
  settings: {outputSelection: {'*': {'*': ['abi', 'evm.bytecode.object']}}}};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
if ((out.errors || []).some(e => e.severity === 'error')) {
  console.error(JSON.stringify(out.errors)); process.exit(1);
}
const c = out.contracts['W.sol'].OwnerWallet;
console.log(JSON.stringify({abi: c.abi, bytecode: '0x' + c.evm.bytecode.object}));
"""


def _compile() -> dict[str, Any]:
    done = subprocess.run(["node", "-e", COMPILE, OWNER_WALLET], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    artifact: dict[str, Any] = json.loads(done.stdout)
    return artifact


async def _deploy(w3: AsyncWeb3, owner: str) -> str:
    artifact = _compile()
    deployer = (await w3.eth.accounts)[9]  # anvil's funded, unlocked accounts
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = await contract.constructor(owner).transact({"from": deployer})
    receipt = await w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    assert receipt["status"] == 1
    return str(receipt["contractAddress"])


@pytest.fixture(scope="module")
async def stub() -> AsyncIterator[tuple[wallet_pb2_grpc.WalletServiceStub, list[str], Resources]]:
    rpc = InfraSettings().eth_rpc_url
    settings = WalletSettings(grpc_port=0, link_chain_rpc_urls={"eip155:31337": rpc})
    resources = await Resources.open(settings, NEEDS, name="wallet-1271-test")
    built = await build_server(settings, resources)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    users: list[str] = []
    try:
        yield wallet_pb2_grpc.WalletServiceStub(channel), users, resources
    finally:
        ids = [uuid.UUID(u) for u in users]
        async with resources.pg.acquire() as conn, conn.transaction():
            for table in ("wallet_activity", "wallet_verifications", "wallet_links"):
                await conn.execute(f"DELETE FROM wallet.{table} WHERE user_id = ANY($1::uuid[])", ids)  # noqa: S608
        await channel.close()
        await built.server.stop(None)
        await resources.close()


def _sign(text: str, account: LocalAccount) -> str:
    return "0x" + bytes(Account.sign_message(encode_defunct(text=text), account.key).signature).hex()


async def test_contract_wallet_links_with_its_owners_signature(
    stub: tuple[wallet_pb2_grpc.WalletServiceStub, list[str], Resources],
) -> None:
    service, users, _ = stub
    provider = AsyncHTTPProvider(InfraSettings().eth_rpc_url)
    owner, stranger = Account.create(), Account.create()
    try:
        smart = await _deploy(AsyncWeb3(provider), owner.address)
    finally:
        await provider.disconnect()
    user = str(uuid.uuid4())
    users.append(user)
    challenge = await service.CreateLinkChallenge(pb.CreateLinkChallengeRequest(
        user_id=user, address=smart, chain=common_pb2.ChainRef(caip2="eip155:31337"), domain="localhost"))

    with pytest.raises(grpc.aio.AioRpcError) as caught:  # the contract says no to a stranger's signature
        await service.LinkWallet(pb.LinkWalletRequest(
            user_id=user, message=challenge.message, signature=_sign(challenge.message, stranger)))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    linked = await service.LinkWallet(pb.LinkWalletRequest(
        user_id=user, message=challenge.message, signature=_sign(challenge.message, owner), connector="safe"))
    assert linked.created
    assert linked.wallet.wallet_type == pb.WALLET_TYPE_CONTRACT
    assert linked.wallet.address == smart.lower() and linked.wallet.checksum_address == smart


async def test_an_unreachable_chain_endpoint_is_unavailable_and_recorded() -> None:
    """A contract-wallet check that cannot reach the chain is retryable, not a wrong signature."""
    settings = WalletSettings(
        grpc_port=0, link_chain_rpc_urls={"eip155:31337": "http://127.0.0.1:9"}, link_rpc_timeout_seconds=2
    )
    resources = await Resources.open(settings, NEEDS, name="wallet-rpc-down-test")
    built = await build_server(settings, resources)
    await built.server.start()
    user = uuid.uuid4()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            service = wallet_pb2_grpc.WalletServiceStub(channel)
            challenge = await service.CreateLinkChallenge(pb.CreateLinkChallengeRequest(
                user_id=str(user), address=Account.create().address, chain=common_pb2.ChainRef(caip2="eip155:31337"),
                domain="localhost"))
            with pytest.raises(grpc.aio.AioRpcError) as caught:  # not an EOA's signature: the chain must answer
                await service.LinkWallet(pb.LinkWalletRequest(
                    user_id=str(user), message=challenge.message, signature="0x" + "01" * 70))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "127.0.0.1:9" not in (caught.value.details() or "")
        reason = await resources.pg.fetchval(
            "SELECT verification_data->>'reason' FROM wallet.wallet_verifications WHERE user_id = $1", user
        )
        assert reason == "rpc_unavailable"
    finally:
        await resources.pg.execute("DELETE FROM wallet.wallet_verifications WHERE user_id = $1", user)
        await built.server.stop(None)
        await resources.close()

"""The committed collection contracts deploy and behave on a real anvil, and their logs decode with the ABI.

Needs an anvil at ``MINTPLANE_ETH_RPC_URL`` (default ``http://127.0.0.1:8545``, the dev stack's). Its default
accounts are funded and unlocked, so transactions are sent with ``eth_sendTransaction`` from them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import RPCEndpoint, TxReceipt

from mintplane.common.contracts import ERC721_CONTRACT, ERC1155_CONTRACT, load_artifact

pytestmark = pytest.mark.integration

RPC_URL = os.environ.get("MINTPLANE_ETH_RPC_URL", "http://127.0.0.1:8545")
ANVIL_CHAIN_ID = 31337
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
TRANSFER_TOPIC = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix("0x")
TRANSFER_BATCH_TOPIC = "0x" + Web3.keccak(
    text="TransferBatch(address,address,address,uint256[],uint256[])"
).hex().removeprefix("0x")

BASE_URI = "https://meta.example/721/"
URI_TEMPLATE = "https://meta.example/1155/{id}.json"
ROYALTY_BPS = 500


@pytest.fixture(scope="module")
def w3() -> Web3:
    web3 = Web3(Web3.HTTPProvider(RPC_URL, request_kwargs={"timeout": 30}))
    assert web3.is_connected(), f"no JSON-RPC node at {RPC_URL} (start anvil or set MINTPLANE_ETH_RPC_URL)"
    web3.eth.default_account = web3.eth.accounts[0]
    return web3


@pytest.fixture(scope="module")
def accounts(w3: Web3) -> list[str]:
    accs = [str(a) for a in w3.eth.accounts]
    assert len(accs) >= 4, "anvil should expose its ten default funded accounts"
    return accs


def _transact(w3: Web3, fn: Any, sender: str | None = None) -> TxReceipt:
    tx_hash = fn.transact({"from": sender or w3.eth.default_account})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    assert receipt["status"] == 1, f"transaction {tx_hash.hex()} reverted"
    return receipt


def _deploy(w3: Web3, name: str, *args: Any) -> Contract:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = _transact(w3, factory.constructor(*args))
    address = receipt["contractAddress"]
    assert address is not None
    # Immutables are patched in place, so the code on chain is as long as the artifact's runtime code.
    assert len(w3.eth.get_code(address)) == (len(artifact.deployed_bytecode) - 2) // 2
    return w3.eth.contract(address=address, abi=artifact.abi)


def _selector(signature: str) -> str:
    return "0x" + Web3.keccak(text=signature)[:4].hex().removeprefix("0x")


def _error_selector(contract: Contract, name: str) -> str:
    """Selector of the custom error ``name`` as the contract's ABI declares it."""
    abi: list[dict[str, Any]] = [dict(e) for e in contract.abi]
    entry = next(e for e in abi if e.get("type") == "error" and e["name"] == name)
    return _selector(f"{name}({','.join(p['type'] for p in entry['inputs'])})")


def _expect_revert(contract: Contract, error: str, send: Callable[[], Any]) -> str:
    """Run ``send`` and assert it reverts with the custom ``error``; returns the raw revert data."""
    with pytest.raises(ContractLogicError) as info:
        send()
    data = info.value.data
    assert isinstance(data, str), f"expected revert data for {error}, got {info.value!r}"
    assert data.startswith(_error_selector(contract, error)), f"expected {error}, got {data}"
    return data


@pytest.fixture
def erc721(w3: Web3, accounts: list[str]) -> Contract:
    return _deploy(
        w3, ERC721_CONTRACT, "Mint Test", "MNT", BASE_URI, 0, accounts[1], ROYALTY_BPS, accounts[0]
    )


@pytest.fixture
def erc1155(w3: Web3, accounts: list[str]) -> Contract:
    return _deploy(
        w3, ERC1155_CONTRACT, "Mint Editions", "MED", URI_TEMPLATE, 1_000, accounts[1], 250, accounts[0]
    )


def test_chain_is_anvil(w3: Web3) -> None:
    assert w3.eth.chain_id == ANVIL_CHAIN_ID
    assert int(w3.provider.make_request(RPCEndpoint("eth_chainId"), [])["result"], 16) == ANVIL_CHAIN_ID


def test_erc721_deploys_with_constructor_state(erc721: Contract, accounts: list[str]) -> None:
    assert erc721.functions.name().call() == "Mint Test"
    assert erc721.functions.symbol().call() == "MNT"
    assert erc721.functions.owner().call() == accounts[0]
    assert erc721.functions.maxSupply().call() == 0
    assert erc721.functions.totalSupply().call() == 0
    for interface_id, expected in (
        ("0x01ffc9a7", True),  # ERC-165
        ("0x80ac58cd", True),  # ERC-721
        ("0x5b5e139f", True),  # ERC-721 metadata
        ("0x2a55205a", True),  # ERC-2981
        ("0xd9b67a26", False),  # ERC-1155
        ("0xffffffff", False),
    ):
        supported = erc721.functions.supportsInterface(bytes.fromhex(interface_id[2:])).call()
        assert supported is expected, interface_id


def test_erc721_mint_emits_decodable_transfer(w3: Web3, erc721: Contract, accounts: list[str]) -> None:
    receipt = _transact(w3, erc721.functions.mint(accounts[2], 7))

    assert erc721.functions.ownerOf(7).call() == accounts[2]
    assert erc721.functions.balanceOf(accounts[2]).call() == 1
    assert erc721.functions.totalSupply().call() == 1
    assert erc721.functions.tokenURI(7).call() == f"{BASE_URI}7"

    assert len(receipt["logs"]) == 1
    log = receipt["logs"][0]
    assert log["address"] == erc721.address
    assert "0x" + log["topics"][0].hex().removeprefix("0x") == TRANSFER_TOPIC
    (event,) = erc721.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert event["event"] == "Transfer"
    assert event["args"]["from"] == ZERO_ADDRESS
    assert event["args"]["to"] == accounts[2]
    assert event["args"]["tokenId"] == 7
    assert event["blockNumber"] == receipt["blockNumber"]


def test_erc721_safe_mint_and_duplicate_id(w3: Web3, erc721: Contract, accounts: list[str]) -> None:
    _transact(w3, erc721.functions.safeMint(accounts[2], 1))
    assert erc721.functions.ownerOf(1).call() == accounts[2]
    _expect_revert(erc721, "ERC721InvalidSender", lambda: erc721.functions.mint(accounts[3], 1).transact())
    assert erc721.functions.totalSupply().call() == 1


def test_erc721_mint_batch_emits_one_transfer_per_token(
    w3: Web3, erc721: Contract, accounts: list[str]
) -> None:
    receipt = _transact(w3, erc721.functions.mintBatch(accounts[3], 1_000, 50))

    assert len(receipt["logs"]) == 50
    events = erc721.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert len(events) == 50
    assert [e["args"]["tokenId"] for e in events] == list(range(1_000, 1_050))
    assert {e["args"]["from"] for e in events} == {ZERO_ADDRESS}
    assert {e["args"]["to"] for e in events} == {accounts[3]}
    assert [e["logIndex"] for e in events] == list(range(50))

    assert erc721.functions.totalSupply().call() == 50
    assert erc721.functions.balanceOf(accounts[3]).call() == 50
    assert erc721.functions.ownerOf(1_049).call() == accounts[3]
    _expect_revert(erc721, "ERC721NonexistentToken", lambda: erc721.functions.ownerOf(1_050).call())
    _expect_revert(erc721, "EmptyBatch", lambda: erc721.functions.mintBatch(accounts[3], 5_000, 0).transact())


def test_erc721_max_supply_enforced(w3: Web3, accounts: list[str]) -> None:
    capped = _deploy(w3, ERC721_CONTRACT, "Capped", "CAP", "", 3, ZERO_ADDRESS, 0, accounts[0])
    assert capped.functions.maxSupply().call() == 3

    _transact(w3, capped.functions.mintBatch(accounts[2], 0, 2))
    data = _expect_revert(
        capped, "MaxSupplyExceeded", lambda: capped.functions.mintBatch(accounts[2], 2, 2).transact()
    )
    # MaxSupplyExceeded(maxSupply=3, totalSupply=2, requested=2)
    assert [int(data[10 + 64 * i : 10 + 64 * (i + 1)], 16) for i in range(3)] == [3, 2, 2]

    _transact(w3, capped.functions.mint(accounts[2], 2))
    assert capped.functions.totalSupply().call() == 3
    _expect_revert(capped, "MaxSupplyExceeded", lambda: capped.functions.mint(accounts[2], 3).transact())
    _expect_revert(capped, "MaxSupplyExceeded", lambda: capped.functions.safeMint(accounts[2], 3).transact())
    assert capped.functions.totalSupply().call() == 3
    # No royalty configured: royaltyInfo answers the zero address and nothing owed.
    assert capped.functions.royaltyInfo(0, 10_000).call() == [ZERO_ADDRESS, 0]


def test_erc721_only_owner_mints(erc721: Contract, accounts: list[str]) -> None:
    data = _expect_revert(
        erc721,
        "OwnableUnauthorizedAccount",
        lambda: erc721.functions.mint(accounts[2], 1).transact({"from": accounts[2]}),
    )
    assert Web3.to_checksum_address("0x" + data[-40:]) == accounts[2]
    assert erc721.functions.totalSupply().call() == 0


def test_erc721_royalty_info(w3: Web3, erc721: Contract, accounts: list[str]) -> None:
    receiver, amount = erc721.functions.royaltyInfo(7, 10**18).call()
    assert receiver == accounts[1]
    assert amount == 10**18 * ROYALTY_BPS // 10_000

    _transact(w3, erc721.functions.setDefaultRoyalty(accounts[3], 1_000))
    assert erc721.functions.royaltyInfo(7, 20_000).call() == [accounts[3], 2_000]


def test_erc721_rejects_royalty_above_100_percent(w3: Web3, accounts: list[str]) -> None:
    artifact = load_artifact(ERC721_CONTRACT)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    with pytest.raises(ContractLogicError) as info:
        factory.constructor("X", "X", "", 0, accounts[1], 10_001, accounts[0]).transact()
    selector = _selector("ERC2981InvalidDefaultRoyalty(uint256,uint256)")
    assert isinstance(info.value.data, str) and info.value.data.startswith(selector)


def test_erc1155_mint_batch_emits_decodable_transfer_batch(
    w3: Web3, erc1155: Contract, accounts: list[str]
) -> None:
    receipt = _transact(w3, erc1155.functions.mintBatch(accounts[2], [1, 2, 3], [10, 20, 30], b""))

    assert len(receipt["logs"]) == 1
    assert "0x" + receipt["logs"][0]["topics"][0].hex().removeprefix("0x") == TRANSFER_BATCH_TOPIC
    (event,) = erc1155.events.TransferBatch().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["operator"] == accounts[0]
    assert event["args"]["from"] == ZERO_ADDRESS
    assert event["args"]["to"] == accounts[2]
    assert list(event["args"]["ids"]) == [1, 2, 3]
    assert list(event["args"]["values"]) == [10, 20, 30]

    balances = erc1155.functions.balanceOfBatch([accounts[2]] * 3, [1, 2, 3]).call()
    assert balances == [10, 20, 30]
    assert erc1155.functions.totalSupply(2).call() == 20
    assert erc1155.functions.uri(2).call() == URI_TEMPLATE


def test_erc1155_mint_emits_transfer_single(w3: Web3, erc1155: Contract, accounts: list[str]) -> None:
    receipt = _transact(w3, erc1155.functions.mint(accounts[3], 42, 5, b""))

    (event,) = erc1155.events.TransferSingle().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["operator"] == accounts[0]
    assert event["args"]["from"] == ZERO_ADDRESS
    assert event["args"]["to"] == accounts[3]
    assert event["args"]["id"] == 42
    assert event["args"]["value"] == 5
    assert erc1155.functions.balanceOf(accounts[3], 42).call() == 5


def test_erc1155_max_supply_royalty_and_interfaces(w3: Web3, erc1155: Contract, accounts: list[str]) -> None:
    assert erc1155.functions.name().call() == "Mint Editions"
    assert erc1155.functions.symbol().call() == "MED"
    assert erc1155.functions.maxSupply().call() == 1_000

    _transact(w3, erc1155.functions.mint(accounts[2], 9, 999, b""))
    _expect_revert(
        erc1155, "MaxSupplyExceeded", lambda: erc1155.functions.mint(accounts[2], 9, 2, b"").transact()
    )
    _expect_revert(
        erc1155,
        "MaxSupplyExceeded",
        lambda: erc1155.functions.mintBatch(accounts[2], [8, 9], [1, 2], b"").transact(),
    )
    _transact(w3, erc1155.functions.mint(accounts[2], 9, 1, b""))
    assert erc1155.functions.totalSupply(9).call() == 1_000

    assert erc1155.functions.royaltyInfo(9, 10_000).call() == [accounts[1], 250]
    for interface_id, expected in (("0xd9b67a26", True), ("0x2a55205a", True), ("0x80ac58cd", False)):
        assert erc1155.functions.supportsInterface(bytes.fromhex(interface_id[2:])).call() is expected
    _expect_revert(
        erc1155,
        "OwnableUnauthorizedAccount",
        lambda: erc1155.functions.mint(accounts[2], 1, 1, b"").transact({"from": accounts[2]}),
    )

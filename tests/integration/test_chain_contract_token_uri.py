"""MintplaneERC721's per-token URI (what the dev stack's demo uses for on-chain ``data:`` metadata), on the
dev stack's anvil: ``setTokenURI`` overrides ``baseURI + tokenId`` for one token, announces it with the
ERC-4906 ``MetadataUpdate`` event, is owner-only, and an empty URI returns the token to the base URI.
"""

from __future__ import annotations

import base64
import json
import os

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from mintplane.common.contracts import ERC721_CONTRACT, load_artifact

pytestmark = pytest.mark.integration

RPC_URL = os.environ.get("MINTPLANE_ETH_RPC_URL", "http://127.0.0.1:8545")
BASE_URI = "https://meta.example/uri-test/"


@pytest.fixture(scope="module")
def w3() -> Web3:
    web3 = Web3(Web3.HTTPProvider(RPC_URL, request_kwargs={"timeout": 30}))
    assert web3.is_connected(), f"no JSON-RPC node at {RPC_URL}"
    return web3


@pytest.fixture
def erc721(w3: Web3) -> Contract:
    owner = w3.eth.accounts[0]
    artifact = load_artifact(ERC721_CONTRACT)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor("URI Test", "URI", BASE_URI, 0, owner, 0, owner).transact({"from": owner}))
    assert receipt["status"] == 1 and receipt["contractAddress"]
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)
    w3.eth.wait_for_transaction_receipt(contract.functions.mintBatch(owner, 1, 3).transact({"from": owner}))
    return contract


def test_a_token_uri_of_its_own_overrides_the_base_uri_and_is_announced(w3: Web3, erc721: Contract) -> None:
    owner = w3.eth.accounts[0]
    document = {"name": "On-chain #2", "attributes": [{"trait_type": "Home", "value": "chain"}]}
    uri = "data:application/json;base64," + base64.b64encode(json.dumps(document).encode()).decode()
    receipt = w3.eth.wait_for_transaction_receipt(erc721.functions.setTokenURI(2, uri).transact({"from": owner}))
    assert receipt["status"] == 1
    events = erc721.events.MetadataUpdate().process_receipt(receipt, errors=DISCARD)
    assert [event["args"]["_tokenId"] for event in events] == [2]

    assert erc721.functions.tokenURI(2).call() == uri
    assert erc721.functions.tokenURI(1).call() == f"{BASE_URI}1"  # the others keep baseURI + id
    assert erc721.functions.supportsInterface(bytes.fromhex("49064906")).call() is True  # ERC-4906

    w3.eth.wait_for_transaction_receipt(erc721.functions.setTokenURI(2, "").transact({"from": owner}))
    assert erc721.functions.tokenURI(2).call() == f"{BASE_URI}2"


def test_only_the_owner_sets_a_token_uri_and_only_of_a_minted_token(w3: Web3, erc721: Contract) -> None:
    stranger = w3.eth.accounts[3]
    with pytest.raises(ContractLogicError):
        erc721.functions.setTokenURI(1, "data:,{}").transact({"from": stranger})
    with pytest.raises(ContractLogicError):
        erc721.functions.setTokenURI(99, "data:,{}").transact({"from": w3.eth.accounts[0]})
    assert erc721.functions.tokenURI(1).call() == f"{BASE_URI}1"

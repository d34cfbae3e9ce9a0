"""The live example `make up` ends with: a demo ERC-721 collection deployed, minted and indexed on anvil.

Steps, each idempotent so a second `make up` (anvil's state persists in .dev/data/anvil/state.json) only
checks and moves on:

1. on chain (:func:`seed_chain`): deploy MintplaneERC721 from a dedicated deployer, mint the demo supply to
   a handful of anvil's accounts (skewed, so owner counts mean something), give every 25th token on-chain
   ``data:`` metadata (``setTokenURI``), transfer a few tokens (activity);
2. register it the platform's way: apply examples/collections/anvil-demo.yaml, so the operator records the
   contract in the chain registry (the indexer then follows it) and the catalog (:func:`wait_tracked`);
3. wait, bounded, until the catalog holds every token (indexer -> RabbitMQ -> catalog ingestion) and report
   the metadata progress (:func:`wait_indexed`).

The deployer is not one of anvil's ten accounts, which tests use freely: its first contract's address is
therefore always the one in anvil-demo.yaml. It has no key: anvil's ``anvil_impersonateAccount`` lets the
dev stack send its transactions (anvil only; the local chain is the only chain this module talks to).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.types import Nonce, RPCEndpoint
from web3.utils.address import get_create_address

from mintplane.common.contracts import ERC721_CONTRACT, load_artifact
from mintplane.devstack import demo_assets as assets
from mintplane.devstack.layout import Layout

COLLECTION_EXAMPLE = Path("examples") / "collections" / "anvil-demo.yaml"
# keccak("mintplane dev demo deployer")[12:]: an address nobody holds a key for, used through impersonation.
DEPLOYER = Web3.to_checksum_address(Web3.keccak(b"mintplane dev demo deployer")[12:])
DEPLOYER_BALANCE_WEI = 10**21  # 1,000 ETH of anvil money, topped up when lower
SYMBOL = "MPDEMO"
ROYALTY_BPS = 250
MINT_CHUNK = 25
# Which of anvil's accounts (by index) receives each chunk of MINT_CHUNK tokens: a few whales, a long tail.
CHUNK_OWNERS = (1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 1, 2)
TRANSFERS = ((1, 7), (2, 7), (3, 8), (26, 8), (51, 9))  # (token id, to account index), from its minter
RECEIPT_TIMEOUT = 60.0


class DemoFailed(RuntimeError):
    """The demo could not be seeded or indexed; the message says what and where to look."""


@dataclass(frozen=True, slots=True)
class DemoCollection:
    """The demo collection as anvil-demo.yaml declares it."""

    name: str
    address: ChecksumAddress
    slug: str
    chain_ref: str
    manifest: Path


@dataclass(frozen=True, slots=True)
class ChainSeed:
    deployed: bool
    minted: int
    uris_set: int
    transfers: int


def base_uri(file_server_url: str) -> str:
    return f"{file_server_url}/{assets.COLLECTION_DIR}/"


def collection(layout: Layout) -> DemoCollection:
    path = layout.root / COLLECTION_EXAMPLE
    document = yaml.safe_load(path.read_text())
    spec = document["spec"]
    return DemoCollection(name=str(spec["name"]), address=Web3.to_checksum_address(str(spec["address"])),
                          slug=str(spec["slug"]), chain_ref=str(spec["chainRef"]), manifest=path)


def predicted_address() -> ChecksumAddress:
    """Where the deployer's first contract lands (CREATE from nonce 0)."""
    return Web3.to_checksum_address(get_create_address(DEPLOYER, Nonce(0)))


def _wait(w3: Web3, tx_hash: Any, what: str) -> Any:
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
    if receipt["status"] != 1:
        raise DemoFailed(f"demo: {what} reverted (transaction {tx_hash.hex()})")
    return receipt


def _impersonate(w3: Web3) -> None:
    balance = w3.eth.get_balance(DEPLOYER)
    if balance < DEPLOYER_BALANCE_WEI // 2:
        w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [DEPLOYER, hex(DEPLOYER_BALANCE_WEI)])
    w3.provider.make_request(RPCEndpoint("anvil_impersonateAccount"), [DEPLOYER])


def _contract(w3: Web3, address: ChecksumAddress) -> Contract:
    return w3.eth.contract(address=address, abi=list(load_artifact(ERC721_CONTRACT).abi))


def _deploy(w3: Web3, demo: DemoCollection, uri: str) -> Contract:
    artifact = load_artifact(ERC721_CONTRACT)
    if w3.eth.get_code(demo.address):
        return _contract(w3, demo.address)
    nonce = w3.eth.get_transaction_count(DEPLOYER)
    if nonce != 0:
        raise DemoFailed(f"demo: {DEPLOYER} has sent {nonce} transactions but {demo.address} holds no code; "
                         "anvil's state does not match the demo (make wipe starts over)")
    factory = w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
    receipt = _wait(w3, factory.constructor(demo.name, SYMBOL, uri, assets.SUPPLY, DEPLOYER, ROYALTY_BPS,
                                            DEPLOYER).transact({"from": DEPLOYER}), "deploying the collection")
    if Web3.to_checksum_address(receipt["contractAddress"]) != demo.address:
        raise DemoFailed(f"demo: deployed at {receipt['contractAddress']}, expected {demo.address}")
    return _contract(w3, demo.address)


def seed_chain(rpc_url: str, demo: DemoCollection, file_server_url: str) -> ChainSeed:
    """Deploy, mint, set on-chain URIs and transfer what is not there yet. Transactions are sent without
    waiting for each (anvil mines each at once); the last receipt of each step is awaited."""
    if predicted_address() != demo.address:
        raise DemoFailed(f"demo: {COLLECTION_EXAMPLE} says {demo.address}, but the demo deployer's first "
                         f"contract is {predicted_address()}")
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    accounts = [Web3.to_checksum_address(a) for a in w3.eth.accounts]
    _impersonate(w3)
    try:
        uri = base_uri(file_server_url)
        deployed = not w3.eth.get_code(demo.address)
        contract = _deploy(w3, demo, uri)
        if contract.functions.totalSupply().call() and contract.functions.tokenURI(1).call() != f"{uri}1":
            _wait(w3, contract.functions.setBaseURI(uri).transact({"from": DEPLOYER}), "setBaseURI")
        minted = _mint(w3, contract, accounts)
        uris_set = _set_on_chain_uris(w3, contract, file_server_url)
        transfers = _transfer(w3, contract, accounts)
    finally:
        w3.provider.make_request(RPCEndpoint("anvil_stopImpersonatingAccount"), [DEPLOYER])
    return ChainSeed(deployed=deployed, minted=minted, uris_set=uris_set, transfers=transfers)


def _mint(w3: Web3, contract: Contract, accounts: Sequence[ChecksumAddress]) -> int:
    supply = int(contract.functions.totalSupply().call())
    last = None
    minted = 0
    for chunk, owner in enumerate(CHUNK_OWNERS):
        start = 1 + chunk * MINT_CHUNK
        if start + MINT_CHUNK - 1 <= supply:
            continue
        last = contract.functions.mintBatch(accounts[owner], start, MINT_CHUNK).transact({"from": DEPLOYER})
        minted += MINT_CHUNK
    if last is not None:
        _wait(w3, last, "minting")
    return minted


def _set_on_chain_uris(w3: Web3, contract: Contract, file_server_url: str) -> int:
    last = None
    count = 0
    for token in assets.tokens(f"{file_server_url}/{assets.COLLECTION_DIR}"):
        if not token.on_chain:
            continue
        wanted = token.data_uri()
        if contract.functions.tokenURI(token.token_id).call() == wanted:
            continue
        last = contract.functions.setTokenURI(token.token_id, wanted).transact({"from": DEPLOYER})
        count += 1
    if last is not None:
        _wait(w3, last, "setTokenURI")
    return count


def _transfer(w3: Web3, contract: Contract, accounts: Sequence[ChecksumAddress]) -> int:
    last = None
    count = 0
    for token_id, to in TRANSFERS:
        minter = accounts[CHUNK_OWNERS[(token_id - 1) // MINT_CHUNK]]
        if Web3.to_checksum_address(contract.functions.ownerOf(token_id).call()) != minter:
            continue  # already moved (an earlier run)
        last = contract.functions.transferFrom(minter, accounts[to], token_id).transact({"from": minter})
        count += 1
    if last is not None:
        _wait(w3, last, "transfers")
    return count


async def wait_tracked(registry_target: str, caip2: str, address: str, timeout: float) -> None:
    """Until the chain registry lists the contract as tracked on the chain (the operator's work on the
    Chain and the Collection), so the indexer started next follows it from its first configuration."""
    from mintplane.indexer.registry import ChainNotFound, GrpcRegistryClient, RegistryUnavailable

    deadline = time.monotonic() + timeout
    last = "no answer yet"
    async with grpc.aio.insecure_channel(registry_target) as channel:
        client = GrpcRegistryClient(channel)
        while time.monotonic() < deadline:
            try:
                config = await client.get_chain_config(caip2)
                if any(c.address == address.lower() for c in config.contracts):
                    return
                last = f"{caip2} registered, {address} not tracked yet"
            except (ChainNotFound, RegistryUnavailable) as exc:
                last = str(exc)
            await asyncio.sleep(0.5)
    raise DemoFailed(f"demo: the operator did not register {address} on {caip2} within {timeout:.0f}s ({last}); "
                     "see .dev/logs/operator.log")


@dataclass(frozen=True, slots=True)
class CatalogProgress:
    collection_id: str
    items: int
    owners: int
    metadata_pending: int
    metadata_ok: int
    metadata_failed: int


async def catalog_progress(catalog_target: str, caip2: str, address: str) -> CatalogProgress | None:
    """The catalog's view of the demo collection; None before the operator registered it there."""
    from mintplane.api.catalog.v1 import catalog_pb2 as pb
    from mintplane.api.catalog.v1 import catalog_pb2_grpc as pb_grpc
    from mintplane.api.common.v1 import common_pb2

    async with grpc.aio.insecure_channel(catalog_target) as channel:
        stub = pb_grpc.CatalogServiceStub(channel)
        contract = common_pb2.ContractRef(chain=common_pb2.ChainRef(caip2=caip2), address=address)
        try:
            found = await stub.GetCollectionByContract(pb.GetCollectionByContractRequest(contract=contract), timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        reply = await stub.GetCollectionStats(pb.GetCollectionStatsRequest(collection_id=found.collection.id),
                                              timeout=5)
    stats = reply.stats
    return CatalogProgress(collection_id=found.collection.id, items=stats.items_count, owners=stats.owners_count,
                           metadata_pending=stats.metadata_pending, metadata_ok=stats.metadata_ok,
                           metadata_failed=stats.metadata_failed)


async def wait_indexed(catalog_target: str, caip2: str, address: str, *, timeout: float,
                       metadata_timeout: float) -> CatalogProgress:
    """Until the catalog holds every demo token (bounded by ``timeout``; DemoFailed after), then, for at
    most ``metadata_timeout`` more, until no token's metadata is pending. Metadata still pending then is
    reported, not an error: the worker goes on in the background."""
    deadline = time.monotonic() + timeout
    progress: CatalogProgress | None = None
    while True:
        try:
            progress = await catalog_progress(catalog_target, caip2, address)
        except grpc.aio.AioRpcError:
            progress = None  # the catalog restarting: ask again
        if progress is not None and progress.items >= assets.SUPPLY:
            break
        if time.monotonic() > deadline:
            seen = "not registered in the catalog" if progress is None else f"{progress.items} tokens"
            raise DemoFailed(
                f"demo: the catalog holds {seen} of {assets.SUPPLY} after {timeout:.0f}s; see .dev/logs/indexer.log "
                "and .dev/logs/catalog.log (`mintplane dev status` probes both)")
        await asyncio.sleep(0.5)
    metadata_deadline = time.monotonic() + metadata_timeout
    while progress.metadata_pending > 0 and time.monotonic() < metadata_deadline:
        await asyncio.sleep(0.5)
        progress = await catalog_progress(catalog_target, caip2, address) or progress
    return progress


FIRST_QUERY = """{
  collection(slug: "%s") {
    name
    stats { itemsCount ownersCount metadata { ok pending failed } }
    tokens(first: 3, sort: RARITY) {
      totalCount
      edges { node { tokenNumber name image owner { address } rarity { rank score } traits { name value } } }
    }
  }
}"""


def first_query(slug: str) -> str:
    return FIRST_QUERY % slug

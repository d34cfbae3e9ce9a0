"""The live example `make up` ends with, checked against the running dev stack.

`make up` deploys and mints the demo collection on anvil, applies its Collection, starts the local
chain's indexer as a local process and waits for the catalog to hold every token. These tests read what a
user would: the Chain Ready with a lag (not IndexerUnavailable), the Collection's token and metadata counts,
the file server's documents, the first GraphQL query of the README returning real tokens (on-chain
``data:`` metadata included), and that seeding again changes nothing on chain.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from mintplane.common.settings import GATEWAY_PORT
from mintplane.devstack import demo, demo_assets, pieces, probes
from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.integration

WAIT = 60.0


def kubectl_json(layout: Layout, kubeconfig: Path, *args: str) -> Any:
    result = subprocess.run([str(layout.bin / "kubectl"), "--kubeconfig", str(kubeconfig), *args, "-o", "json"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def eventually(check: Any, timeout: float = WAIT) -> Any:
    """Poll ``check`` (returns a value or raises AssertionError) until it passes or ``timeout`` ends."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def graphql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{GATEWAY_PORT}/graphql", data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the dev gateway
        body: dict[str, Any] = json.loads(response.read())
    assert "errors" not in body, body
    return body


@pytest.fixture(scope="module")
def collection(layout: Layout) -> demo.DemoCollection:
    return demo.collection(layout)


def conditions(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in resource.get("status", {}).get("conditions", [])}


def test_the_local_chain_is_ready_with_a_lag_from_its_local_indexer(layout: Layout, kubeconfig: Path) -> None:
    name, spec = pieces.local_chain_spec(layout)

    def ready() -> dict[str, Any]:
        chain = kubectl_json(layout, kubeconfig, "get", "chain", name, "-n", "default")
        by_type = conditions(chain)
        assert by_type["Ready"]["status"] == "True", by_type["Ready"]
        return chain

    chain = eventually(ready)
    by_type = conditions(chain)
    assert by_type["IndexerReady"]["reason"] == "ExternalIndexerAnswering"
    assert by_type["Indexing"]["status"] == "True"
    assert isinstance(chain["status"]["indexerLag"], int) and chain["status"]["indexerLag"] >= 0
    assert chain["status"]["indexedBlock"] > 0
    assert chain["status"].get("indexerDeployment") is None
    deployments = kubectl_json(layout, kubeconfig, "get", "deployments", "-n", "default")
    assert not [d for d in deployments["items"] if d["metadata"]["name"] == f"mintplane-indexer-{name}"]
    # The process on 50058 follows the chain itself (a status-only server reports no head and fails this).
    detail = asyncio.run(probes.indexer_lane(pieces.service_address("indexer"), spec["caip2"]))
    assert spec["caip2"] in detail


def test_the_collection_status_shows_tokens_and_metadata_progress(layout: Layout, kubeconfig: Path,
                                                                  collection: demo.DemoCollection) -> None:
    def counted() -> dict[str, Any]:
        resource = kubectl_json(layout, kubeconfig, "get", "collection", "anvil-demo", "-n", "default")
        status = resource.get("status", {})
        assert status.get("indexedTokens") == demo_assets.SUPPLY, status
        assert status.get("metadata", {}).get("pending") == 0, status
        return status

    status = eventually(counted)
    assert status["phase"] == "Ready"
    assert status["metadata"]["ok"] + status["metadata"]["failed"] == demo_assets.SUPPLY
    assert status["metadata"]["ok"] == demo_assets.SUPPLY  # every document is served or on chain
    progress = asyncio.run(demo.catalog_progress(pieces.service_address("catalog"), pieces.LOCAL_CHAIN,
                                                 collection.address))
    assert progress is not None and progress.metadata_ok == status["metadata"]["ok"]
    assert progress.owners == len({owner for owner in demo.CHUNK_OWNERS} | {to for _, to in demo.TRANSFERS})


def test_the_file_server_serves_documents_as_json_and_images_as_svg() -> None:
    with urllib.request.urlopen(f"{pieces.FILESERVER_URL}/anvil-demo/7", timeout=5) as response:  # noqa: S310
        assert response.headers["Content-Type"] == "application/json"
        document = json.loads(response.read())
    expected = next(t for t in demo_assets.tokens(f"{pieces.FILESERVER_URL}/anvil-demo") if t.token_id == 7)
    assert document == expected.document
    with urllib.request.urlopen(document["image"], timeout=5) as response:  # noqa: S310
        assert response.headers["Content-Type"] == "image/svg+xml"
        assert response.read().decode() == expected.image_svg


def test_the_readme_query_returns_real_tokens(collection: demo.DemoCollection) -> None:
    def ranked() -> dict[str, Any]:
        found: dict[str, Any] = graphql(demo.first_query(collection.slug))["data"]["collection"]
        ranks = [edge["node"]["rarity"] and edge["node"]["rarity"]["rank"] for edge in found["tokens"]["edges"]]
        assert ranks == [1, 2, 3], ranks  # rarity computed once metadata is in: the rarest first
        return found

    data = eventually(ranked)
    assert data["name"] == collection.name
    assert data["stats"]["itemsCount"] == demo_assets.SUPPLY
    assert data["tokens"]["totalCount"] == demo_assets.SUPPLY
    nodes = [edge["node"] for edge in data["tokens"]["edges"]]
    assert len(nodes) == 3
    generated = {t.token_id: t for t in demo_assets.tokens(f"{pieces.FILESERVER_URL}/anvil-demo")}
    for node in nodes:
        token = generated[int(node["tokenNumber"])]
        assert node["name"] == token.document["name"]
        assert node["image"] == token.document["image"]
        assert node["owner"]["address"].startswith("0x")
        names = {trait["name"] for trait in node["traits"]}
        expected = {a["trait_type"] for a in token.document["attributes"]}  # type: ignore[attr-defined]
        # The document's traits, plus at most the trait-count trait rarity scoring adds (OpenRarity's).
        assert expected <= names and len(names - expected) <= 1, names


def test_on_chain_data_metadata_reaches_the_api(collection: demo.DemoCollection) -> None:
    query = """query($chain: String!, $address: String!) {
      base64: token(chain: $chain, address: $address, tokenNumber: "50") { name image metadata { status url } }
      plain: token(chain: $chain, address: $address, tokenNumber: "25") { name image metadata { status url } }
    }"""
    data = graphql(query, {"chain": pieces.LOCAL_CHAIN, "address": collection.address})["data"]
    generated = {t.token_id: t for t in demo_assets.tokens(f"{pieces.FILESERVER_URL}/anvil-demo")}
    for alias, token_id in (("base64", 50), ("plain", 25)):
        token = data[alias]
        assert token["metadata"]["status"] == "OK", token
        assert token["metadata"]["url"] == generated[token_id].data_uri()
        assert token["name"] == f"Mintplane Demo #{token_id}"
        assert token["image"].startswith("data:image/svg+xml;base64,")


def test_seeding_again_changes_nothing_on_chain(collection: demo.DemoCollection) -> None:
    w3 = Web3(Web3.HTTPProvider(pieces.ANVIL_URL))
    nonce = w3.eth.get_transaction_count(demo.DEPLOYER)
    seed = demo.seed_chain(pieces.ANVIL_URL, collection, pieces.FILESERVER_URL)
    assert seed == demo.ChainSeed(deployed=False, minted=0, uris_set=0, transfers=0)
    assert w3.eth.get_transaction_count(demo.DEPLOYER) == nonce


async def test_seeding_a_fresh_chain_deploys_mints_and_sets_on_chain_uris(layout: Layout,
                                                                        collection: demo.DemoCollection) -> None:
    """The cold path `make up` takes on a new machine, on an anvil of this test's own (same code, fresh state)."""
    from mintplane.common.contracts import ERC721_CONTRACT, load_artifact
    from mintplane.operator.testing import Anvil, free_port

    node = Anvil(layout.anvil, port=free_port(), chain_id=31337)
    await node.start()
    try:
        started = time.monotonic()
        seed = await asyncio.to_thread(demo.seed_chain, node.url, collection, pieces.FILESERVER_URL)
        cold = time.monotonic() - started
        assert seed == demo.ChainSeed(deployed=True, minted=demo_assets.SUPPLY, uris_set=demo_assets.SUPPLY // 25,
                                      transfers=len(demo.TRANSFERS))
        w3 = Web3(Web3.HTTPProvider(node.url))
        contract = w3.eth.contract(address=collection.address, abi=list(load_artifact(ERC721_CONTRACT).abi))
        assert contract.functions.totalSupply().call() == demo_assets.SUPPLY
        assert contract.functions.owner().call() == demo.DEPLOYER
        generated = {t.token_id: t for t in demo_assets.tokens(f"{pieces.FILESERVER_URL}/anvil-demo")}
        assert contract.functions.tokenURI(50).call() == generated[50].data_uri()
        assert contract.functions.tokenURI(7).call() == f"{pieces.FILESERVER_URL}/anvil-demo/7"
        accounts = w3.eth.accounts
        for token_id, to in demo.TRANSFERS:
            assert contract.functions.ownerOf(token_id).call() == accounts[to]
        # Account 1 minted chunks 0, 1, 2 and 10; every transfer moved one of its tokens away.
        assert demo.CHUNK_OWNERS.count(1) == 4
        assert contract.functions.balanceOf(accounts[1]).call() == 4 * demo.MINT_CHUNK - len(demo.TRANSFERS)
        again = await asyncio.to_thread(demo.seed_chain, node.url, collection, pieces.FILESERVER_URL)
        assert again == demo.ChainSeed(deployed=False, minted=0, uris_set=0, transfers=0)
        print(f"cold demo seeding: {cold:.2f}s")
    finally:
        await node.stop()

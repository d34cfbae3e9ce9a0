"""tokenURI / uri(id) read as batched eth_calls from a real anvil, endpoints from the real chain registry."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "indexer"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "metadata"))
import chainkit as ck
import metakit as mk

from mintplane.catalog.metadata.chain import ChainReader, UriRead
from mintplane.catalog.metadata.failures import MetadataFailure
from mintplane.common.registry_client import GrpcRegistryClient

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def registry() -> AsyncIterator[GrpcRegistryClient]:
    assert ck.registry_answers(), "the chain-registry service must answer on its port (dev stack)"
    channel = grpc.aio.insecure_channel(ck.registry_target())
    yield GrpcRegistryClient(channel)
    await channel.close(None)


async def test_token_uris_of_many_tokens_in_few_batch_requests(registry: GrpcRegistryClient) -> None:
    anvil = await asyncio.to_thread(lambda: ck.Anvil().start())
    try:
        ck.seed_registry(ck.registry_target(), anvil.chain_id, [ck.EndpointSeed(anvil.url)], [])
        erc721 = await asyncio.to_thread(mk.deploy_721, anvil, "ipfs://QmBase/")
        await asyncio.to_thread(mk.mint_721, anvil, erc721, 1, 300)
        await asyncio.to_thread(mk.set_token_uris, anvil, erc721, {7: "data:application/json,{\"name\":\"seven\"}"})
        erc1155 = await asyncio.to_thread(mk.deploy_1155, anvil, "https://files.example/{id}.json")
        await asyncio.to_thread(mk.mint_1155, anvil, erc1155, [5])

        reads = [UriRead(erc721, str(n), "ERC721") for n in range(1, 301)]
        reads += [UriRead(erc721, "999999", "ERC721"),  # never minted: reverts
                  UriRead(ck.ACCOUNTS[3], "1", "ERC721"),  # an account, not a contract: no data
                  UriRead(erc1155, "5", "ERC1155")]
        reader = ChainReader(registry, batch_size=100)
        try:
            results = await reader.read(anvil.caip2, reads)
            assert reader.requests == 4  # 303 calls in batches of 100: four HTTP requests
        finally:
            await reader.close()
        for n, result in enumerate(results[:300], start=1):
            assert result == ("data:application/json,{\"name\":\"seven\"}" if n == 7 else f"ipfs://QmBase/{n}")
        reverted, empty, multi = results[300:]
        assert isinstance(reverted, MetadataFailure) and not reverted.transient
        assert reverted.reason.startswith("tokenURI reverted")
        assert isinstance(empty, MetadataFailure) and "returned no data" in empty.reason
        assert multi == "https://files.example/{id}.json"  # uri(id) as the contract returns it

        unknown = ChainReader(registry)
        try:
            missing = await unknown.read("eip155:1999999999", [UriRead(erc721, "1", "ERC721")])
        finally:
            await unknown.close()
        assert isinstance(missing[0], MetadataFailure) and missing[0].transient
        assert "not in the chain registry" in missing[0].reason
    finally:
        ck.disable_chain(ck.registry_target(), anvil.chain_id)
        anvil.stop()


async def test_a_dead_endpoint_fails_over_to_the_next(registry: GrpcRegistryClient) -> None:
    anvil = await asyncio.to_thread(lambda: ck.Anvil().start())
    try:
        dead = f"http://127.0.0.1:{ck.free_port()}"
        ck.seed_registry(ck.registry_target(), anvil.chain_id,
                         [ck.EndpointSeed(dead, priority=0), ck.EndpointSeed(anvil.url, priority=1)], [])
        erc721 = await asyncio.to_thread(mk.deploy_721, anvil, "https://files.example/")
        await asyncio.to_thread(mk.mint_721, anvil, erc721, 1, 10)
        reader = ChainReader(registry, batch_size=5, timeout=3.0)
        try:
            results = await reader.read(anvil.caip2, [UriRead(erc721, str(n), "ERC721") for n in range(1, 11)])
        finally:
            await reader.close()
        assert results == [f"https://files.example/{n}" for n in range(1, 11)]
        assert reader.requests == 4  # each batch tried the dead endpoint first, then the live one
    finally:
        ck.disable_chain(ck.registry_target(), anvil.chain_id)
        anvil.stop()

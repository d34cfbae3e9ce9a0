"""The catalog's DataLoaders over the fakes: one upstream call per batch, unknown keys as None, and the
best-known chain head."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from mintplane.api.chain_registry.v1 import chain_registry_pb2
from mintplane.gateway.loaders import Loaders, best_head
from mintplane.gateway.testing import FakeBackend

pytestmark = pytest.mark.unit


async def test_owner_lookups_batch_by_hundreds_and_ignore_case() -> None:
    backend = FakeBackend()
    linked = [f"0x{index + 1:040x}" for index in range(150)]
    users = [backend.add_user(f"u{index}", address) for index, address in enumerate(linked)]
    loaders = Loaders(backend.clients())
    asked = [address.upper().replace("0X", "0x") for address in linked] + ["0x" + "f" * 40]
    wallets = await asyncio.gather(*(loaders.wallets_by_address.load(address) for address in asked))
    assert [wallet.user_id if wallet else None for wallet in wallets] == [*users, None]
    assert backend.calls["BatchGetWalletsByAddress"] == 2  # 151 keys, batches of at most 100


async def test_catalog_loaders_answer_none_for_unknown_ids() -> None:
    backend = FakeBackend()
    collection = backend.add_collection("Genesis")
    token = backend.add_token(collection, 7, owner="0x" + "1" * 40)
    loaders = Loaders(backend.clients())
    missing = str(uuid.uuid4())
    found = await asyncio.gather(
        loaders.collections.load(collection.id), loaders.collections.load(missing),
        loaders.collection_stats.load(collection.id), loaders.collection_stats.load(missing),
        loaders.tokens.load(token.id), loaders.tokens.load(missing),
    )
    assert [item is not None for item in found] == [True, False, True, False, True, False]
    assert found[4] is not None and list(found[4].rarity_explanation) == []  # list reads carry no explanation
    assert (backend.calls["BatchGetCollections"], backend.calls["BatchGetCollectionStats"],
            backend.calls["BatchGetTokens"]) == (1, 1, 1)


async def test_chains_and_heads_are_read_once_per_chain() -> None:
    backend = FakeBackend()
    for number in (1, 10, 137):
        backend.add_chain(f"eip155:{number}", heads=((number * 100, True),))
    loaders = Loaders(backend.clients())
    chains = await asyncio.gather(*(loaders.chains.load(c) for c in ("eip155:1", "eip155:137", "eip155:999")))
    heads = await asyncio.gather(*(loaders.chain_heads.load(c) for c in ("eip155:1", "eip155:10", "eip155:1")))
    assert [chain.name if chain else None for chain in chains] == ["eip155:1", "eip155:137", None]
    assert heads == [100, 1000, 100]
    assert backend.calls["GetChain"] == 3 and backend.calls["ListEndpoints"] == 2


def _endpoint(head: int, healthy: bool, probed: bool = True) -> chain_registry_pb2.Endpoint:
    endpoint = chain_registry_pb2.Endpoint(url="https://rpc.example")
    if probed:
        endpoint.health.CopyFrom(chain_registry_pb2.EndpointHealth(head_block=head, healthy=healthy))
    return endpoint


@pytest.mark.parametrize(("endpoints", "head"), [
    ([], None),
    ([_endpoint(0, False, probed=False)], None),
    ([_endpoint(50, True), _endpoint(70, True)], 70),
    ([_endpoint(50, True), _endpoint(90, False)], 50),  # an unhealthy endpoint's head is not trusted
    ([_endpoint(40, False), _endpoint(30, False)], 40),  # unless nothing healthy reported one
])
def test_best_head(endpoints: list[chain_registry_pb2.Endpoint], head: int | None) -> None:
    assert best_head(endpoints) == head

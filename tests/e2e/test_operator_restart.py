"""Crash safety: SIGKILL the operator while it reconciles, change things while it is down, start it again,
and everything converges (status, registry rows, workloads, pending finalizers)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc as pb_grpc
from mintplane.devstack.layout import Layout
from mintplane.operator.testing import (
    Anvil,
    Cluster,
    OperatorProcess,
    ensure_crds,
    eventually,
    free_port,
    registry_server,
    wait_handling,
)

pytestmark = pytest.mark.e2e

PREFIX = f"mpkill-{uuid.uuid4().hex[:6]}"
WAIT = 60.0


@pytest.fixture(scope="module")
def cluster(kubeconfig: Path, layout: Layout) -> Iterator[Cluster]:
    ensure_crds(layout.bin / "kubectl", kubeconfig, layout.root / "crds")
    api = Cluster(kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="module")
async def registry() -> AsyncIterator[str]:
    async with registry_server() as target:
        yield target


def chain(name: str, chain_id: int, *, indexer: bool) -> dict[str, Any]:
    return {"kind": "Chain", "metadata": {"name": name},
            "spec": {"caip2": f"eip155:{chain_id}", "chainId": chain_id, "name": name, "nativeSymbol": "ETH",
                     "indexer": {"enabled": indexer, "confirmations": 0}}}


def endpoint(name: str, chain_name: str, url: str) -> dict[str, Any]:
    return {"kind": "ChainEndpoint", "metadata": {"name": name},
            "spec": {"chainRef": chain_name, "url": url, "probeIntervalSeconds": 5}}


async def test_killed_operator_converges_after_restart(
    cluster: Cluster, registry: str, kubeconfig: Path, layout: Layout, tmp_path: Path,
) -> None:
    namespace = f"{PREFIX}-{uuid.uuid4().hex[:6]}"
    base = random.randint(10**8, 2 * 10**9 - 10)
    nodes = [Anvil(layout.anvil, port=free_port(), chain_id=base + i) for i in range(2)]
    operator = OperatorProcess(namespaces=[f"{PREFIX}-*"], registry_target=registry, kubeconfig=kubeconfig,
                               log_path=tmp_path / "operator.log")
    await cluster.create_namespace(namespace)
    for node in nodes:
        await node.start()
    try:
        operator.start()
        await operator.wait_live()
        await wait_handling(cluster, namespace)

        # C is fully reconciled (it carries the finalizer) before the crash; it is deleted while down.
        await cluster.create("chains", namespace, chain("c", base + 2, indexer=False))

        async def c_synced() -> bool:
            return (await cluster.condition("chains", namespace, "c", "Synced")).get("status") == "True"

        await eventually(c_synced, timeout=WAIT, what="chain c synced")

        # A and B arrive, and the operator dies in the middle of handling them.
        await cluster.create("chains", namespace, chain("a", base, indexer=False))
        await cluster.create("chains", namespace, chain("b", base + 1, indexer=False))
        await cluster.create("chainendpoints", namespace, endpoint("a-rpc", "a", nodes[0].url))
        await cluster.create("chainendpoints", namespace, endpoint("b-rpc", "b", nodes[1].url))
        await asyncio.sleep(0.3)
        operator.kill()

        # Changes while nobody watches: B gets an indexer, C is deleted (its finalizer holds it).
        await cluster.patch("chains", namespace, "b", {"spec": {"indexer": {"enabled": True}}})
        await cluster.delete("chains", namespace, "c")
        assert await cluster.get("chains", namespace, "c") is not None

        operator.start()
        await operator.wait_live()

        async def a_ready() -> dict[str, Any]:
            status = await cluster.status("chains", namespace, "a")
            ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
            return status if ready.get("status") == "True" else {}

        status_a = await eventually(a_ready, timeout=WAIT, what="chain a Ready after restart")
        assert status_a["endpoints"] == {"total": 1, "healthy": 1}

        deployment = await eventually(lambda: cluster.deployment(namespace, "mintplane-indexer-b"), timeout=WAIT,
                                      what="indexer Deployment of b (enabled while the operator was down)")
        assert deployment.metadata.owner_references[0].name == "b"

        async def b_generation_2() -> bool:
            status = await cluster.status("chains", namespace, "b")
            return status.get("observedGeneration") == 2 and status.get("indexerDeployment") == "mintplane-indexer-b"

        await eventually(b_generation_2, timeout=WAIT, what="chain b status at generation 2")

        async def c_gone() -> bool:
            return await cluster.get("chains", namespace, "c") is None

        await eventually(c_gone, timeout=WAIT, what="chain c finalized after restart")

        async with grpc.aio.insecure_channel(registry) as channel:
            stub = pb_grpc.ChainRegistryServiceStub(channel)
            c_row = await stub.GetChain(pb.GetChainRequest(caip2=f"eip155:{base + 2}"))
            assert c_row.chain.enabled is False
            for offset, node in enumerate(nodes):
                config = await stub.GetChainConfig(pb.GetChainConfigRequest(caip2=f"eip155:{base + offset}"))
                assert [e.url for e in config.endpoints] == [node.url]
                assert config.chain.enabled

        # Exactly one registry endpoint per ChainEndpoint: the crash left no duplicate rows behind.
        async with grpc.aio.insecure_channel(registry) as channel:
            stub = pb_grpc.ChainRegistryServiceStub(channel)
            listed = await stub.ListEndpoints(pb.ListEndpointsRequest(caip2=f"eip155:{base}", include_inactive=True))
            assert len(listed.endpoints) == 1
    finally:
        await cluster.delete_namespace(namespace)
        if operator.process is not None and operator.process.poll() is None:

            async def deleted() -> bool:
                return not await cluster.namespace_exists(namespace)

            await eventually(deleted, timeout=90, what=f"namespace {namespace} deleted")
        operator.stop()
        for node in nodes:
            await node.stop()

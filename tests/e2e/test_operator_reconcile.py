"""The operator end to end: a real kube-apiserver (and its controllers), the real chain-registry service
(in-process, ephemeral port), anvil nodes, and the operator running as its own process.

Each test works in its own namespace under this module's prefix (the operator watches only those) and on
its own chain id, so nothing here touches the dev stack's chains or other tests' rows.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web

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
    operator_running,
    registry_server,
    scratch_namespace,
)

pytestmark = pytest.mark.e2e

PREFIX = f"mpop-{uuid.uuid4().hex[:6]}"
WAIT = 45.0


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


@pytest.fixture(scope="module")
async def stub(registry: str) -> AsyncIterator[pb_grpc.ChainRegistryServiceStub]:
    async with grpc.aio.insecure_channel(registry) as channel:
        yield pb_grpc.ChainRegistryServiceStub(channel)


@pytest.fixture(scope="module")
async def operator(registry: str, kubeconfig: Path, cluster: Cluster,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OperatorProcess]:
    process = OperatorProcess(namespaces=[f"{PREFIX}-*"], registry_target=registry, kubeconfig=kubeconfig,
                              log_path=tmp_path_factory.mktemp("operator") / "operator.log")
    async with operator_running(cluster, process, f"{PREFIX}-warmup") as running:
        yield running


@pytest.fixture
async def namespace(cluster: Cluster, operator: OperatorProcess) -> AsyncIterator[str]:
    async with scratch_namespace(cluster, f"{PREFIX}-{uuid.uuid4().hex[:6]}") as name:
        yield name


@pytest.fixture
async def chain_node(layout: Layout) -> AsyncIterator[Anvil]:
    """An anvil with a chain id no other test or the dev stack uses."""
    node = Anvil(layout.anvil, port=free_port(), chain_id=random.randint(10**8, 2 * 10**9))
    await node.start()
    yield node
    await node.stop()


def chain_body(name: str, chain_id: int, *, indexer: bool = False, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Chain",
        "metadata": {"name": name},
        "spec": {"caip2": f"eip155:{chain_id}", "chainId": chain_id, "name": f"Test {name}", "nativeSymbol": "ETH",
                 "gasPolicy": {"maxFeeGwei": "120", "priorityFeeGwei": "1.5", "multiplier": 2},
                 "indexer": {"enabled": indexer, "confirmations": 0}, **spec},
    }


def endpoint_body(name: str, chain: str, url: str, **spec: Any) -> dict[str, Any]:
    return {"kind": "ChainEndpoint", "metadata": {"name": name},
            "spec": {"chainRef": chain, "url": url, "probeIntervalSeconds": 5, **spec}}


async def chain_config(stub: pb_grpc.ChainRegistryServiceStub, chain_id: int,
                       include_disabled: bool = False) -> pb.GetChainConfigResponse | None:
    try:
        return await stub.GetChainConfig(pb.GetChainConfigRequest(caip2=f"eip155:{chain_id}",
                                                                  include_disabled=include_disabled))
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            return None
        raise


async def test_chain_with_endpoint_becomes_ready_and_lands_in_the_registry(
    cluster: Cluster, namespace: str, chain_node: Anvil, stub: pb_grpc.ChainRegistryServiceStub,
) -> None:
    await cluster.create("chains", namespace, chain_body("net", chain_node.chain_id))
    await cluster.create("chainendpoints", namespace, endpoint_body("primary", "net", chain_node.url, priority=1))

    async def ready() -> dict[str, Any] | None:
        status = await cluster.status("chains", namespace, "net")
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        return status if conditions.get("Ready", {}).get("status") == "True" else None

    status = await eventually(ready, timeout=WAIT, what="Chain Ready")
    assert status["headBlock"] == 0  # a fresh anvil
    assert status["endpoints"] == {"total": 1, "healthy": 1}
    assert status["observedGeneration"] == 1
    assert status["registryId"] > 0

    config = await eventually(lambda: chain_config(stub, chain_node.chain_id), timeout=WAIT, what="chain config")
    assert config.chain.name == "Test net" and config.chain.enabled
    assert [e.url for e in config.endpoints] == [chain_node.url]
    assert (config.gas_policy.max_fee_gwei, config.gas_policy.priority_fee_gwei) == ("120", "1.5")
    assert float(config.gas_policy.multiplier) == 2

    endpoint = await cluster.status("chainendpoints", namespace, "primary")
    assert endpoint["healthy"] is True and endpoint["score"] == "green"
    assert endpoint["reportedChainId"] == chain_node.chain_id
    assert endpoint["registryId"] == config.endpoints[0].id
    assert config.endpoints[0].health.healthy


async def test_indexer_deployment_is_owned_and_follows_the_spec(
    cluster: Cluster, namespace: str, chain_node: Anvil,
) -> None:
    created = await cluster.create("chains", namespace, chain_body("idx", chain_node.chain_id, indexer=True))
    deployment = await eventually(lambda: cluster.deployment(namespace, "mintplane-indexer-idx"), timeout=WAIT,
                                  what="indexer Deployment")
    owner = deployment.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Chain", "idx", created["metadata"]["uid"], True)
    labels = deployment.metadata.labels
    assert labels["app.kubernetes.io/managed-by"] == "mintplane-operator"
    assert labels["app.kubernetes.io/component"] == "indexer"
    container = deployment.spec.template.spec.containers[0]
    assert container.command == ["python", "-m", "mintplane.indexer", "--chain", f"eip155:{chain_node.chain_id}"]
    assert container.readiness_probe.grpc.port == 50058
    assert container.security_context.read_only_root_filesystem is True
    assert container.env_from[0].secret_ref.name == "mintplane-indexer-env"

    async def indexer_waiting() -> dict[str, Any]:
        condition = await cluster.condition("chains", namespace, "idx", "IndexerReady")
        return condition if condition.get("reason") == "DeploymentUnavailable" else {}

    # No kubelet here: the Deployment exists but never becomes available, and status says so.
    await eventually(indexer_waiting, timeout=WAIT, what="IndexerReady=False DeploymentUnavailable")
    assert (await cluster.status("chains", namespace, "idx"))["indexerDeployment"] == "mintplane-indexer-idx"

    await cluster.patch("chains", namespace, "idx", {"spec": {"indexer": {"enabled": False}}})

    async def removed() -> bool:
        return await cluster.deployment(namespace, "mintplane-indexer-idx") is None

    await eventually(removed, timeout=WAIT, what="indexer Deployment deleted after disabling")
    reason = await eventually(lambda: _reason(cluster, namespace, "idx", "IndexerReady", "IndexerDisabled"),
                              timeout=WAIT, what="IndexerReady reason IndexerDisabled")
    assert reason == "IndexerDisabled"


async def _reason(cluster: Cluster, namespace: str, name: str, type_: str, expected: str) -> str:
    condition = await cluster.condition("chains", namespace, name, type_)
    return expected if condition.get("reason") == expected else ""


async def test_endpoint_on_another_chain_is_unhealthy_with_the_reason(
    cluster: Cluster, namespace: str, chain_node: Anvil, layout: Layout, stub: pb_grpc.ChainRegistryServiceStub,
) -> None:
    wrong = Anvil(layout.anvil, port=free_port(), chain_id=1)
    await wrong.start()
    try:
        await cluster.create("chains", namespace, chain_body("net", chain_node.chain_id))
        await cluster.create("chainendpoints", namespace, endpoint_body("wrong", "net", wrong.url))

        async def mismatch() -> dict[str, Any]:
            status = await cluster.status("chainendpoints", namespace, "wrong")
            return status if status.get("lastError") else {}

        status = await eventually(mismatch, timeout=WAIT, what="probe of the wrong-chain endpoint")
        assert status["healthy"] is False
        assert status["lastError"] == f"ChainIdMismatch: expected {chain_node.chain_id}, got 1"
        assert status["score"] == "red"
        ready = await cluster.condition("chainendpoints", namespace, "wrong", "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "ChainIdMismatch")

        async def inactive() -> list[pb.Endpoint]:
            listed = await stub.ListEndpoints(pb.ListEndpointsRequest(caip2=f"eip155:{chain_node.chain_id}",
                                                                      include_inactive=True))
            return [e for e in listed.endpoints if e.url == wrong.url and not e.active and e.health.last_error]

        recorded = await eventually(inactive, timeout=WAIT, what="registry endpoint marked inactive")
        assert "ChainIdMismatch" in recorded[0].health.last_error
        chain_ready = await cluster.condition("chains", namespace, "net", "Ready")
        assert chain_ready.get("reason") == "NoHealthyEndpoint"
    finally:
        await wrong.stop()


async def test_endpoint_health_follows_its_node_down_and_up(
    cluster: Cluster, namespace: str, chain_node: Anvil, layout: Layout,
) -> None:
    node = Anvil(layout.anvil, port=free_port(), chain_id=chain_node.chain_id)
    await node.start()
    try:
        await cluster.create("chains", namespace, chain_body("net", chain_node.chain_id))
        await cluster.create("chainendpoints", namespace, endpoint_body("flaky", "net", node.url))

        async def healthy(expected: bool) -> dict[str, Any]:
            status = await cluster.status("chainendpoints", namespace, "flaky")
            return status if status.get("healthy") is expected and status.get("lastProbeTime") else {}

        await eventually(lambda: healthy(True), timeout=WAIT, what="endpoint healthy")
        await node.stop()
        down = await eventually(lambda: healthy(False), timeout=WAIT, what="endpoint unhealthy after node stop")
        assert down["lastError"].startswith("ConnectionError: cannot connect to 127.0.0.1:")

        async def told() -> list[str]:
            messages = await cluster.event_messages(namespace)
            return [m for m in messages if m.startswith("ConnectionError: Ready is False")]

        await eventually(told, timeout=WAIT, what="a Kubernetes Event for the endpoint turning unready")
        await node.start()
        up = await eventually(lambda: healthy(True), timeout=WAIT, what="endpoint healthy after node restart")
        assert "lastError" not in up
    finally:
        await node.stop()


async def test_registry_orders_endpoints_by_priority_then_weight(
    cluster: Cluster, namespace: str, chain_node: Anvil, stub: pb_grpc.ChainRegistryServiceStub,
) -> None:
    await cluster.create("chains", namespace, chain_body("net", chain_node.chain_id))
    fallback = chain_node.url.replace("127.0.0.1", "localhost")
    await cluster.create("chainendpoints", namespace,
                         endpoint_body("fallback", "net", fallback, priority=50, weight=10))
    await cluster.create("chainendpoints", namespace,
                         endpoint_body("primary", "net", chain_node.url, priority=1, weight=1))

    async def both() -> list[str]:
        config = await chain_config(stub, chain_node.chain_id)
        urls = [e.url for e in config.endpoints] if config else []
        return urls if len(urls) == 2 else []

    assert await eventually(both, timeout=WAIT, what="two endpoints in the registry") == [chain_node.url, fallback]

    async def counted() -> dict[str, Any]:
        status = await cluster.status("chains", namespace, "net")
        return status if status.get("endpoints") == {"total": 2, "healthy": 2} else {}

    await eventually(counted, timeout=WAIT, what="chain status counting two healthy endpoints")


async def test_deleting_a_chain_disables_it_and_removes_its_workload(
    cluster: Cluster, namespace: str, chain_node: Anvil, stub: pb_grpc.ChainRegistryServiceStub,
) -> None:
    await cluster.create("chains", namespace, chain_body("gone", chain_node.chain_id, indexer=True))
    await eventually(lambda: cluster.deployment(namespace, "mintplane-indexer-gone"), timeout=WAIT,
                     what="indexer Deployment")
    await eventually(lambda: chain_config(stub, chain_node.chain_id), timeout=WAIT, what="chain in registry")

    await cluster.delete("chains", namespace, "gone")

    async def finalized() -> bool:
        return await cluster.get("chains", namespace, "gone") is None

    await eventually(finalized, timeout=WAIT, what="Chain deleted after its finalizer ran")

    async def workload_gone() -> bool:
        return await cluster.deployment(namespace, "mintplane-indexer-gone") is None

    await eventually(workload_gone, timeout=WAIT, what="indexer Deployment removed")
    chain = await stub.GetChain(pb.GetChainRequest(caip2=f"eip155:{chain_node.chain_id}"))
    assert chain.chain.enabled is False  # disabled, not deleted: history is kept
    assert await chain_config(stub, chain_node.chain_id) is None  # consumers no longer get it
    assert await chain_config(stub, chain_node.chain_id, include_disabled=True) is not None


async def test_indexer_job_runs_a_backfill_job_and_mirrors_it(
    cluster: Cluster, namespace: str, chain_node: Anvil,
) -> None:
    await cluster.create("chains", namespace, chain_body("net", chain_node.chain_id))
    contract = "0x" + "5a" * 20
    created = await cluster.create("indexerjobs", namespace, {
        "kind": "IndexerJob", "metadata": {"name": "fill"},
        "spec": {"chainRef": "net", "fromBlock": 100, "toBlock": 199, "contracts": [contract]},
    })
    job = await eventually(lambda: cluster.job(namespace, "mintplane-backfill-fill"), timeout=WAIT,
                           what="backfill Job")
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.uid) == ("IndexerJob", created["metadata"]["uid"])
    assert job.spec.template.spec.containers[0].command == [
        "python", "-m", "mintplane.indexer", "backfill", "--chain", f"eip155:{chain_node.chain_id}",
        "--from-block", "100", "--to-block", "199", "--contract", contract,
    ]
    assert job.spec.backoff_limit == 3
    assert job.spec.ttl_seconds_after_finished is not None

    async def phase(expected: str) -> dict[str, Any]:
        status = await cluster.status("indexerjobs", namespace, "fill")
        return status if status.get("phase") == expected else {}

    pending = await eventually(lambda: phase("Pending"), timeout=WAIT, what="IndexerJob Pending")
    assert pending["jobName"] == "mintplane-backfill-fill"
    assert pending["progress"]["blocksTotal"] == 100

    # No kubelet runs the pod: report completion on the Job the way the Job controller would.
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = job.status.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") if job.status.start_time else now
    await cluster.patch_job_status(namespace, "mintplane-backfill-fill", {
        "startTime": started, "completionTime": now, "succeeded": 1, "active": 0, "ready": 0,
        "terminating": 0,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastTransitionTime": now,
             "lastProbeTime": now},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastTransitionTime": now,
             "lastProbeTime": now},
        ],
    })
    done = await eventually(lambda: phase("Succeeded"), timeout=WAIT, what="IndexerJob Succeeded")
    assert done["progress"]["percent"] == 100 and done["progress"]["lastBlock"] == 199
    assert done["completionTime"]
    complete = await cluster.condition("indexerjobs", namespace, "fill", "Complete")
    assert complete["status"] == "True"


async def test_collection_tracks_the_contract_with_its_standard_abi(
    cluster: Cluster, namespace: str, chain_node: Anvil, stub: pb_grpc.ChainRegistryServiceStub,
) -> None:
    await cluster.create("chains", namespace, chain_body("net", chain_node.chain_id))
    address = "0x" + uuid.uuid4().hex[:8] * 5
    await cluster.create("collections", namespace, {
        "kind": "Collection", "metadata": {"name": "genesis"},
        "spec": {"chainRef": "net", "address": address, "standard": "ERC1155", "slug": f"genesis-{namespace}",
                 "name": "Genesis", "startBlock": 7},
    })

    async def synced() -> dict[str, Any]:
        status = await cluster.status("collections", namespace, "genesis")
        return status if status.get("contractId") else {}

    status = await eventually(synced, timeout=WAIT, what="Collection synced to the registry")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Synced"]["status"] == "True"
    # The catalog cannot register collections here: a condition says so, and nothing error-loops.
    assert (conditions["CatalogSynced"]["status"], conditions["CatalogSynced"]["reason"]) == (
        "False", "CatalogUnavailable")
    assert status["phase"] == "Indexing"

    listed = await stub.ListContracts(pb.ListContractsRequest(caip2=f"eip155:{chain_node.chain_id}"))
    (contract,) = [c for c in listed.contracts if c.address.lower() == address.lower()]
    assert contract.id == status["contractId"] and contract.start_block == 7
    abi = await stub.GetAbi(pb.GetAbiRequest(sha256=contract.abi_sha256))
    assert abi.abi.contract_name == "MintplaneERC1155"
    assert any(entry.get("name") == "TransferSingle" for entry in json.loads(abi.abi.abi_json))

    await cluster.delete("collections", namespace, "genesis")

    async def untracked() -> bool:
        contracts = await stub.ListContracts(pb.ListContractsRequest(caip2=f"eip155:{chain_node.chain_id}"))
        return all(c.address.lower() != address.lower() for c in contracts.contracts)

    await eventually(untracked, timeout=WAIT, what="contract no longer tracked after delete")


async def test_api_key_is_used_for_probes_and_never_published(
    cluster: Cluster, namespace: str, chain_node: Anvil, stub: pb_grpc.ChainRegistryServiceStub,
    operator: OperatorProcess,
) -> None:
    key = f"sk-{uuid.uuid4().hex}"
    await cluster.create_secret(namespace, "rpc-key", {"token": key})
    await cluster.create("chains", namespace, chain_body("net", chain_node.chain_id))
    await cluster.create("chainendpoints", namespace, endpoint_body(
        "keyed", "net", chain_node.url, authType="bearer", secretRef={"name": "rpc-key", "key": "token"}))

    async def probed() -> dict[str, Any]:
        found = await cluster.get("chainendpoints", namespace, "keyed")
        return found if (found or {}).get("status", {}).get("healthy") else {}

    endpoint = await eventually(probed, timeout=WAIT, what="keyed endpoint healthy")
    config = await chain_config(stub, chain_node.chain_id)
    assert config is not None
    (registered,) = config.endpoints
    assert registered.auth_secret_ref == f"secret://{namespace}/rpc-key/token"
    assert key not in json.dumps(endpoint)
    assert key not in str(config)
    assert all(key not in message for message in await cluster.event_messages(namespace))
    assert key not in operator.log_path.read_text(errors="replace")


@pytest.fixture
async def keyed_proxy(chain_node: Anvil) -> AsyncIterator[tuple[str, str, list[str]]]:
    """A JSON-RPC front for the anvil node that answers only when the key arrives in header x-api-key or
    query parameter apikey (the two ways providers ask for it); yields its URL, the key, and how each
    request carried it."""
    key = f"k-{uuid.uuid4().hex}"
    carried: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        how = ""
        if request.headers.get("x-api-key") == key:
            how = "header"
        elif request.query.get("apikey") == key:
            how = "query"
        carried.append(how)
        if not how:
            return web.Response(status=401, text="missing or wrong API key")
        async with upstream.post(chain_node.url, data=await request.read(),
                                 headers={"Content-Type": "application/json"}) as answer:
            return web.Response(body=await answer.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/rpc", handle)
    runner = web.AppRunner(app)
    async with aiohttp.ClientSession() as upstream:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}/rpc?network=test", key, carried
        finally:
            await runner.cleanup()


@pytest.mark.parametrize(("auth", "param", "registry_type"), [
    ("header", "x-api-key", pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER),
    ("query", "apikey", pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY),
])
async def test_header_and_query_keys_reach_the_endpoint_and_the_registry(
    cluster: Cluster, namespace: str, chain_node: Anvil, stub: pb_grpc.ChainRegistryServiceStub,
    operator: OperatorProcess, keyed_proxy: tuple[str, str, list[str]], auth: str, param: str, registry_type: int,
) -> None:
    url, key, carried = keyed_proxy
    await cluster.create_secret(namespace, "provider", {"apiKey": key})
    await cluster.create("chains", namespace, chain_body("net", chain_node.chain_id))
    await cluster.create("chainendpoints", namespace, endpoint_body(
        "keyed", "net", url, authType=auth, authParam=param, secretRef={"name": "provider"}))

    async def probed() -> dict[str, Any]:
        found = await cluster.get("chainendpoints", namespace, "keyed")
        return found if (found or {}).get("status", {}).get("healthy") else {}

    endpoint = await eventually(probed, timeout=WAIT, what=f"{auth}-keyed endpoint healthy")
    assert endpoint["status"]["reportedChainId"] == chain_node.chain_id
    assert carried and set(carried) == {auth}, carried  # every probe carried the key, the way the spec says
    config = await chain_config(stub, chain_node.chain_id)
    assert config is not None
    (registered,) = config.endpoints
    assert (registered.url, registered.auth_type, registered.auth_param) == (url, registry_type, param)
    assert registered.auth_secret_ref == f"secret://{namespace}/provider/apiKey"
    assert key not in json.dumps(endpoint) and key not in str(config)
    assert all(key not in message for message in await cluster.event_messages(namespace))
    assert key not in operator.log_path.read_text(errors="replace")


async def test_disabling_a_chain_keeps_it_registered_but_not_served(
    cluster: Cluster, namespace: str, chain_node: Anvil, stub: pb_grpc.ChainRegistryServiceStub,
) -> None:
    await cluster.create("chains", namespace, chain_body("net", chain_node.chain_id, indexer=True))
    await cluster.create("chainendpoints", namespace, endpoint_body("rpc", "net", chain_node.url))
    await eventually(lambda: cluster.deployment(namespace, "mintplane-indexer-net"), timeout=WAIT,
                     what="indexer Deployment")

    await cluster.patch("chains", namespace, "net", {"spec": {"enabled": False}})
    reason = await eventually(lambda: _reason(cluster, namespace, "net", "Ready", "ChainDisabled"), timeout=WAIT,
                              what="Ready reason ChainDisabled")
    assert reason == "ChainDisabled"

    async def stopped() -> bool:
        return await cluster.deployment(namespace, "mintplane-indexer-net") is None

    await eventually(stopped, timeout=WAIT, what="indexer stopped for the disabled chain")
    row = await stub.GetChain(pb.GetChainRequest(caip2=f"eip155:{chain_node.chain_id}"))
    assert row.chain.enabled is False

    await cluster.patch("chains", namespace, "net", {"spec": {"enabled": True, "indexer": {"enabled": False}}})

    async def served_again() -> bool:
        config = await chain_config(stub, chain_node.chain_id)
        return config is not None and config.chain.enabled and len(config.endpoints) == 1

    await eventually(served_again, timeout=WAIT, what="chain served again after re-enabling")
    ready = await eventually(lambda: _reason(cluster, namespace, "net", "Ready", "Ready"), timeout=WAIT,
                             what="chain Ready again")
    assert ready == "Ready"

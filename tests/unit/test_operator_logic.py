"""Reconcile logic against in-memory fakes of the operator's own Registry/Catalog/Workloads interfaces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import kopf
import pytest
from aiohttp import web

from mintplane.operator import builders, specs
from mintplane.operator.catalog import CollectionProgress, CollectionRegistration
from mintplane.operator.errors import ReconcileError, to_kopf
from mintplane.operator.reconcile import backfill, chain, collection, endpoint
from mintplane.operator.registry import (
    AbiRecord,
    ChainRecord,
    ContractRecord,
    EndpointRecord,
    GasPolicyRecord,
    HealthRecord,
)
from mintplane.operator.rpc import ServiceNotFound, ServiceRejected, ServiceUnavailable
from mintplane.operator.settings import OperatorSettings
from mintplane.operator.views import EndpointSummary, EndpointView, JobView

pytestmark = pytest.mark.unit


class FakeRegistry:
    def __init__(self) -> None:
        self.chains: dict[str, ChainRecord] = {}
        self.policies: dict[str, GasPolicyRecord] = {}
        self.endpoints: dict[int, EndpointRecord] = {}
        self.health: dict[int, tuple[HealthRecord, bool]] = {}
        self.abis: list[AbiRecord] = []
        self.contracts: dict[tuple[str, str], ContractRecord] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ServiceUnavailable("chain_registry", "X", grpc.StatusCode.UNAVAILABLE, "connection refused")

    async def upsert_chain(self, record: ChainRecord) -> int:
        self._check()
        self.chains[record.caip2] = record
        return list(self.chains).index(record.caip2) + 1

    async def disable_chain(self, caip2: str) -> int | None:
        self._check()
        if caip2 not in self.chains:
            return None
        record = self.chains[caip2]
        self.chains[caip2] = ChainRecord(**{**{f: getattr(record, f) for f in record.__slots__}, "enabled": False})
        return 1

    async def upsert_gas_policy(self, caip2: str, policy: GasPolicyRecord) -> None:
        self._check()
        self.policies[caip2] = policy

    async def upsert_endpoint(self, record: EndpointRecord) -> int:
        self._check()
        if record.caip2 not in self.chains:
            raise ServiceNotFound("chain_registry", "UpsertEndpoint", grpc.StatusCode.NOT_FOUND, "no chain")
        if record.id and record.id not in self.endpoints:
            raise ServiceNotFound("chain_registry", "UpsertEndpoint", grpc.StatusCode.NOT_FOUND, "no endpoint")
        new_id = record.id or next((i for i, e in self.endpoints.items() if e.url == record.url),
                                   len(self.endpoints) + 1)
        self.endpoints[new_id] = record
        return new_id

    async def find_endpoint(self, caip2: str, url: str) -> int | None:
        return next((i for i, e in self.endpoints.items() if e.caip2 == caip2 and e.url == url), None)

    async def delete_endpoint(self, endpoint_id: int) -> None:
        self._check()
        self.endpoints.pop(endpoint_id, None)

    async def set_endpoint_health(self, endpoint_id: int, health: HealthRecord, *, active: bool) -> None:
        self._check()
        self.health[endpoint_id] = (health, active)

    async def put_abi(self, abi: AbiRecord) -> str:
        self._check()
        self.abis.append(abi)
        return f"{len(self.abis):064x}"

    async def upsert_contract(self, contract: ContractRecord) -> int:
        self._check()
        self.contracts[(contract.caip2, contract.address)] = contract
        return len(self.contracts)

    async def delete_contract(self, caip2: str, address: str) -> None:
        self.contracts.pop((caip2, address), None)


class FakeCatalog:
    def __init__(self, *, implemented: bool) -> None:
        self.implemented = implemented
        self.registered: list[CollectionRegistration] = []

    async def register_collection(self, registration: CollectionRegistration) -> str:
        if not self.implemented:
            raise ServiceUnavailable("catalog", "RegisterCollection", grpc.StatusCode.UNIMPLEMENTED, "")
        self.registered.append(registration)
        return "4a0e6c1e-8a9c-4c56-9e1f-2d1f0c9a0b11"

    async def progress(self, collection_id: str) -> CollectionProgress:
        return CollectionProgress(indexed_tokens=3, metadata_pending=1, metadata_ok=2, metadata_failed=0)


class FakeWorkloads:
    def __init__(self) -> None:
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str, str], str] = {}

    async def apply_deployment(self, body: dict[str, Any]) -> None:
        self.deployments[(body["metadata"]["namespace"], body["metadata"]["name"])] = body

    async def delete_deployment(self, namespace: str, name: str) -> None:
        self.deployments.pop((namespace, name), None)

    async def apply_job(self, body: dict[str, Any]) -> None:
        self.jobs[(body["metadata"]["namespace"], body["metadata"]["name"])] = body

    async def delete_job(self, namespace: str, name: str) -> None:
        self.jobs.pop((namespace, name), None)

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        from mintplane.operator.kube import SecretUnavailable

        try:
            return self.secrets[(namespace, name, key)]
        except KeyError:
            raise SecretUnavailable(f"Secret {namespace}/{name} not found") from None


CHAIN = {"caip2": "eip155:31337", "chainId": 31337, "name": "Anvil", "nativeSymbol": "ETH",
         "gasPolicy": {"maxFeeGwei": "100", "priorityFeeGwei": "2"}, "indexer": {"enabled": True}}


def owner(kind: str, name: str, namespace: str = "ns") -> kopf.Body:
    return kopf.Body({"apiVersion": "mintplane.io/v1alpha1", "kind": kind,
                      "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"}})


async def test_chain_sync_upserts_registry_and_owns_the_indexer() -> None:
    registry, workloads, settings = FakeRegistry(), FakeWorkloads(), OperatorSettings()
    result = await chain.sync_chain(name="anvil", namespace="ns", spec=CHAIN, owner=owner("Chain", "anvil"),
                                    registry=registry, workloads=workloads, settings=settings)
    assert registry.chains["eip155:31337"].enabled
    assert registry.policies["eip155:31337"].max_fee_gwei == "100"
    deployment = workloads.deployments[("ns", "mintplane-indexer-anvil")]
    reference = deployment["metadata"]["ownerReferences"][0]
    assert (reference["kind"], reference["name"], reference["controller"]) == ("Chain", "anvil", True)
    assert result.deployment == "mintplane-indexer-anvil"

    disabled = {**CHAIN, "indexer": {"enabled": False}}
    await chain.sync_chain(name="anvil", namespace="ns", spec=disabled, owner=owner("Chain", "anvil"),
                           registry=registry, workloads=workloads, settings=settings)
    assert workloads.deployments == {}


async def test_chain_sync_maps_registry_outage_to_a_retry() -> None:
    registry = FakeRegistry()
    registry.down = True
    with pytest.raises(ReconcileError) as caught:
        await chain.sync_chain(name="anvil", namespace="ns", spec=CHAIN, owner=owner("Chain", "anvil"),
                               registry=registry, workloads=FakeWorkloads(), settings=OperatorSettings())
    assert caught.value.reason == "RegistryUnavailable" and caught.value.retryable
    assert isinstance(to_kopf(caught.value, default_delay=5), kopf.TemporaryError)
    rejected = ReconcileError("RegistryRejected", "bad caip2", retryable=False)
    assert isinstance(to_kopf(rejected, default_delay=5), kopf.PermanentError)


def test_chain_status_reports_head_endpoints_and_conditions() -> None:
    status = chain.desired_status(
        name="anvil", spec={**CHAIN, "indexer": {"enabled": False}}, status={}, generation=3,
        summary=EndpointSummary(total=2, healthy=1, best_head=120), deployment=None,
        synced=chain.synced_condition(None), registry_id=7, now="2026-01-01T00:00:00Z")
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Ready"]["status"] == "True"
    assert by_type["Synced"]["status"] == "True"
    assert by_type["IndexerReady"]["reason"] == "IndexerDisabled"
    assert (status["headBlock"], status["endpoints"], status["registryId"], status["observedGeneration"]) == (
        120, {"total": 2, "healthy": 1}, 7, 3)
    assert status["indexerDeployment"] is None


async def test_endpoint_waits_for_its_chain_and_keeps_its_row_id() -> None:
    registry = FakeRegistry()
    spec = {"chainRef": "anvil", "url": "http://127.0.0.1:8545", "priority": 1, "weight": 10}
    with pytest.raises(ReconcileError) as caught:
        await endpoint.sync_endpoint(namespace="ns", spec=spec, status={}, chain=None, registry=registry)
    assert caught.value.reason == "ChainNotFound" and caught.value.retryable
    ref = specs.chain_ref("anvil", CHAIN)
    with pytest.raises(ReconcileError) as caught:
        await endpoint.sync_endpoint(namespace="ns", spec=spec, status={}, chain=ref, registry=registry)
    assert caught.value.reason == "ChainNotRegistered"
    await registry.upsert_chain(specs.chain_record(CHAIN))
    first = await endpoint.sync_endpoint(namespace="ns", spec=spec, status={}, chain=ref, registry=registry)
    moved = {**spec, "url": "http://localhost:8545"}
    second = await endpoint.sync_endpoint(namespace="ns", spec=moved, status={"registryId": first}, chain=ref,
                                          registry=registry)
    assert first == second
    assert registry.endpoints[first].url == "http://localhost:8545"
    await endpoint.remove_endpoint(spec=moved, status={"registryId": first}, chain=ref, registry=registry)
    assert registry.endpoints == {}


@pytest.fixture
async def jsonrpc() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == "Bearer k-123"
        return web.json_response([{"jsonrpc": "2.0", "id": 1, "result": "0x1"},
                                  {"jsonrpc": "2.0", "id": 2, "result": "0x64"}])

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    await runner.cleanup()


async def test_probe_records_health_and_flags_a_wrong_chain(jsonrpc: str) -> None:
    registry, workloads, settings = FakeRegistry(), FakeWorkloads(), OperatorSettings()
    workloads.secrets[("ns", "rpc-key", "apiKey")] = "k-123"
    spec = {"chainRef": "anvil", "url": jsonrpc, "authType": "bearer", "secretRef": {"name": "rpc-key"}}
    async with aiohttp.ClientSession() as session:
        outcome = await endpoint.run_probe(
            namespace="ns", name="ep", spec=spec, status={"registryId": 4}, generation=1,
            chain=specs.chain_ref("anvil", CHAIN), peers=[], registry=registry, workloads=workloads,
            session=session, settings=settings)
        status = outcome.status
        assert status["healthy"] is False
        assert status["lastError"] == "ChainIdMismatch: expected 31337, got 1"
        assert status["reportedChainId"] == 1 and status["headBlock"] == 100
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert (ready["reason"], ready["message"]) == ("ChainIdMismatch", "expected 31337, got 1")
        health, active = registry.health[4]
        assert active is False and health.last_error == status["lastError"]
        assert "k-123" not in repr(status)

        mainnet = specs.chain_ref("mainnet", {"caip2": "eip155:1", "chainId": 1})
        peers = [EndpointView("other", True, True, 103), EndpointView("ep", True, True, 100)]
        healthy = await endpoint.run_probe(
            namespace="ns", name="ep", spec=spec, status={"registryId": 4}, generation=1, chain=mainnet,
            peers=peers, registry=registry, workloads=workloads, session=session, settings=settings)
        assert healthy.status["healthy"] is True and healthy.status["blocksBehind"] == 3
        assert healthy.status["score"] in ("orange", "green") and registry.health[4][1] is True

        workloads.secrets.clear()
        no_secret = await endpoint.run_probe(
            namespace="ns", name="ep", spec=spec, status={}, generation=1, chain=mainnet, peers=[],
            registry=registry, workloads=workloads, session=session, settings=settings)
        assert no_secret.status["lastError"].startswith("SecretUnavailable")


@pytest.fixture
async def keyed_jsonrpc() -> AsyncIterator[str]:
    """Answers only requests carrying the key in header x-api-key or in query parameter apikey."""

    async def handle(request: web.Request) -> web.Response:
        if "k-456" not in (request.headers.get("x-api-key"), request.query.get("apikey")):
            return web.Response(status=401, text="missing key")
        return web.json_response([{"jsonrpc": "2.0", "id": 1, "result": hex(31337)},
                                  {"jsonrpc": "2.0", "id": 2, "result": "0x7"}])

    app = web.Application()
    app.router.add_post("/rpc", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/rpc"
    await runner.cleanup()


@pytest.mark.parametrize(("auth", "param"), [("header", "x-api-key"), ("query", "apikey")])
async def test_named_auth_endpoint_is_registered_and_probed_with_its_param(keyed_jsonrpc: str, auth: str,
                                                                           param: str) -> None:
    registry, workloads, settings = FakeRegistry(), FakeWorkloads(), OperatorSettings()
    await registry.upsert_chain(specs.chain_record(CHAIN))
    ref = specs.chain_ref("anvil", CHAIN)
    spec = {"chainRef": "anvil", "url": keyed_jsonrpc, "authType": auth, "authParam": param,
            "secretRef": {"name": "rpc-key"}}
    registry_id = await endpoint.sync_endpoint(namespace="ns", spec=spec, status={}, chain=ref, registry=registry)
    recorded = registry.endpoints[registry_id]
    assert (recorded.auth_type, recorded.auth_param) == ({"header": "apiKeyHeader", "query": "apiKeyQuery"}[auth],
                                                         param)
    assert recorded.url == keyed_jsonrpc and recorded.auth_secret_ref == "secret://ns/rpc-key/apiKey"

    async with aiohttp.ClientSession() as session:
        async def probed(secret: str) -> dict[str, Any]:
            workloads.secrets[("ns", "rpc-key", "apiKey")] = secret
            outcome = await endpoint.run_probe(
                namespace="ns", name="ep", spec=spec, status={"registryId": registry_id}, generation=1, chain=ref,
                peers=[], registry=registry, workloads=workloads, session=session, settings=settings)
            return outcome.status

        wrong = await probed("not-the-key")
        assert wrong["healthy"] is False and wrong["lastError"].startswith("HttpStatus: 401")
        right = await probed("k-456")
        assert right["healthy"] is True and right["headBlock"] == 7 and right["reportedChainId"] == 31337
        assert registry.health[registry_id][1] is True
        assert "k-456" not in repr(right)


def test_probe_interval_comes_from_the_spec() -> None:
    settings = OperatorSettings(probe_interval_seconds=10, probe_tick_seconds=1)
    assert endpoint.probe_due(None, 100.0, {}, settings)
    assert not endpoint.probe_due(100.0, 105.0, {}, settings)
    assert endpoint.probe_due(100.0, 110.0, {}, settings)
    assert not endpoint.probe_due(100.0, 110.0, {"probeIntervalSeconds": 30}, settings)


async def test_backfill_job_is_applied_once_and_status_mirrors_it() -> None:
    workloads, settings = FakeWorkloads(), OperatorSettings()
    spec = {"chainRef": "anvil", "fromBlock": 0, "toBlock": 99}
    ref = specs.chain_ref("anvil", CHAIN)
    name = await backfill.ensure_job(name="fill", namespace="ns", spec=spec, status={},
                                     owner=owner("IndexerJob", "fill"), chain=ref, workloads=workloads,
                                     settings=settings)
    job = workloads.jobs[("ns", name)]
    assert job["metadata"]["ownerReferences"][0]["kind"] == "IndexerJob"
    assert job["metadata"]["labels"][builders.OWNER_LABEL] == "fill"
    workloads.jobs.clear()
    await backfill.ensure_job(name="fill", namespace="ns", spec=spec, status={"phase": "Succeeded"},
                              owner=owner("IndexerJob", "fill"), chain=ref, workloads=workloads, settings=settings)
    assert workloads.jobs == {}  # a finished backfill is never re-run

    done = JobView(name, "Succeeded", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "Completed", "")
    status = backfill.desired_status(spec=spec, status={}, job_name=name, view=done, generation=1)
    assert status["phase"] == "Succeeded"
    assert status["progress"] == {"blocksTotal": 100, "blocksDone": 100, "percent": 100, "lastBlock": 99}
    assert status["completionTime"] == "2026-01-01T00:01:00Z"
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert complete["status"] == "True"


async def test_collection_tracks_contract_even_without_catalog() -> None:
    registry, abi_cache = FakeRegistry(), {}
    spec = {"chainRef": "anvil", "address": "0x" + "cd" * 20, "standard": "ERC721", "slug": "genesis",
            "name": "Genesis", "startBlock": 5}
    ref = specs.chain_ref("anvil", CHAIN)
    result = await collection.sync_collection(namespace="ns", spec=spec, chain=ref, registry=registry,
                                              catalog=FakeCatalog(implemented=False), abi_cache=abi_cache)
    contract = registry.contracts[("eip155:31337", specs.checksum_address(spec["address"]))]
    assert (contract.start_block, contract.standard, contract.abi_sha256) == (5, "ERC721", abi_cache["ERC721"])
    assert registry.abis[0].contract_name == "MintplaneERC721"
    assert result.catalog_error is not None and result.catalog_error.reason == "CatalogUnavailable"
    condition = collection.catalog_condition(result.catalog_id, result.catalog_error)
    assert (condition.status, condition.reason) == (False, "CatalogUnavailable")

    catalog = FakeCatalog(implemented=True)
    again = await collection.sync_collection(namespace="ns", spec=spec, chain=ref, registry=registry,
                                             catalog=catalog, abi_cache=abi_cache)
    assert len(registry.abis) == 1  # the standard ABI is stored once per process
    assert again.catalog_id and catalog.registered[0].slug == "genesis"


async def test_registry_rejection_is_permanent() -> None:
    class Rejecting(FakeRegistry):
        async def upsert_chain(self, record: ChainRecord) -> int:
            raise ServiceRejected("chain_registry", "UpsertChain", grpc.StatusCode.INVALID_ARGUMENT,
                                  "chain.caip2: only eip155 chains are supported")

    with pytest.raises(ReconcileError) as caught:
        await chain.sync_chain(name="x", namespace="ns", spec={**CHAIN, "caip2": "cosmos:hub", "chainId": None},
                               owner=owner("Chain", "x"), registry=Rejecting(), workloads=FakeWorkloads(),
                               settings=OperatorSettings())
    assert caught.value.reason == "RegistryRejected" and not caught.value.retryable
    assert "only eip155" in caught.value.message


async def test_endpoint_under_a_still_disabled_chain_retries() -> None:
    class StillDisabled(FakeRegistry):
        async def upsert_endpoint(self, record: EndpointRecord) -> int:
            raise ServiceRejected("chain_registry", "UpsertEndpoint", grpc.StatusCode.FAILED_PRECONDITION,
                                  "chain eip155:31337 is disabled; re-enable it with UpsertChain(enabled=true)")

    spec = {"chainRef": "anvil", "url": "http://127.0.0.1:8545"}
    with pytest.raises(ReconcileError) as caught:
        await endpoint.sync_endpoint(namespace="ns", spec=spec, status={}, chain=specs.chain_ref("anvil", CHAIN),
                                     registry=StillDisabled())
    assert (caught.value.reason, caught.value.retryable) == ("ChainDisabled", True)
    error = to_kopf(caught.value, default_delay=5, retry=3)
    assert isinstance(error, kopf.TemporaryError) and error.delay == 8  # 1 s doubled per retry

"""Two operator status rules the dev stack relies on.

- Indexers outside the cluster (``MINTPLANE_OPERATOR_INDEXER_EXTERNAL``, what the dev stack sets because no
  kubelet runs there): no indexer Deployment is created, and a Chain's IndexerReady and Ready follow the
  indexer's GetStatus (the Indexing condition) rather than a Deployment that could never become available.
- A Collection's status carries metadata progress (pending/ok/failed from GetCollectionStats) beside
  indexedTokens, and the CRD prints them.

The registry, workloads and catalog are plain fakes of the operator's own interfaces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import kopf
import pytest
import yaml

from mintplane.devstack.layout import Layout
from mintplane.operator import views
from mintplane.operator.catalog import CollectionProgress
from mintplane.operator.conditions import Condition
from mintplane.operator.indexer import IndexReport
from mintplane.operator.reconcile import chain, collection
from mintplane.operator.registry import ChainRecord, GasPolicyRecord
from mintplane.operator.rpc import ServiceUnavailable
from mintplane.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit

TARGET = "127.0.0.1:50058"
ROOT = Layout.default().root
HEALTHY = views.EndpointSummary(total=1, healthy=1, best_head=40)
CHAIN = {"caip2": "eip155:31337", "chainId": 31337, "name": "Anvil", "nativeSymbol": "ETH",
         "indexer": {"enabled": True, "confirmations": 0}}
OWNER = kopf.Body({"apiVersion": "mintplane.io/v1alpha1", "kind": "Chain",
                   "metadata": {"name": "anvil", "namespace": "ns", "uid": "uid-anvil"}})


class FakeRegistry:
    def __init__(self) -> None:
        self.chains: dict[str, ChainRecord] = {}

    async def upsert_chain(self, record: ChainRecord) -> int:
        self.chains[record.caip2] = record
        return 1

    async def upsert_gas_policy(self, caip2: str, policy: GasPolicyRecord) -> None:
        return None


class FakeWorkloads:
    def __init__(self) -> None:
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}

    async def apply_deployment(self, body: dict[str, Any]) -> None:
        self.deployments[(body["metadata"]["namespace"], body["metadata"]["name"])] = body

    async def delete_deployment(self, namespace: str, name: str) -> None:
        self.deployments.pop((namespace, name), None)


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def external_status(current: dict[str, Any]) -> dict[str, Any]:
    return chain.desired_status(name="anvil", spec=CHAIN, status=current, generation=1, summary=HEALTHY,
                                deployment=None, synced=chain.synced_condition(None), external_indexer=TARGET)


def after_poll(report: IndexReport | None, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The status once the indexer timer has polled: the Indexing condition it merges into the current one."""
    current = dict(current or {"headBlock": 40})
    if report is None:
        unreachable = ServiceUnavailable("indexer", "GetStatus", grpc.StatusCode.UNAVAILABLE, "connection refused")
        poll = chain.IndexerPoll(None, unreachable)
    else:
        poll = chain.IndexerPoll(report, None)
    return {**current, **chain.indexer_status(spec=CHAIN, status=current, poll=poll, target=TARGET)}


def test_the_setting_is_off_by_default_and_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OperatorSettings().indexer_external is False
    monkeypatch.setenv("MINTPLANE_OPERATOR_INDEXER_EXTERNAL", "true")
    assert OperatorSettings().indexer_external is True


async def test_external_indexers_get_no_deployment_and_an_old_one_is_removed() -> None:
    registry, workloads = FakeRegistry(), FakeWorkloads()
    in_cluster = await chain.sync_chain(name="anvil", namespace="ns", spec=CHAIN, owner=OWNER,
                                        registry=registry, workloads=workloads, settings=OperatorSettings())
    assert in_cluster.deployment == "mintplane-indexer-anvil" and workloads.deployments

    outside = await chain.sync_chain(name="anvil", namespace="ns", spec=CHAIN, owner=OWNER,
                                     registry=registry, workloads=workloads,
                                     settings=OperatorSettings(indexer_external=True))
    assert outside.deployment is None
    assert workloads.deployments == {}
    assert registry.chains["eip155:31337"].enabled  # the registry side is the same either way


def test_an_answering_external_indexer_makes_the_chain_ready() -> None:
    live = IndexReport(state="FOLLOWING", last_indexed_block=40, head_block=40, confirmations=0, last_error="")
    status = external_status(after_poll(live))
    by_type = conditions(status)
    assert (by_type["IndexerReady"]["status"], by_type["IndexerReady"]["reason"]) == ("True",
                                                                                        "ExternalIndexerAnswering")
    assert TARGET in by_type["IndexerReady"]["message"]
    assert (by_type["Ready"]["status"], by_type["Ready"]["reason"]) == ("True", "Ready")
    assert status["indexerDeployment"] is None


@pytest.mark.parametrize(("report", "reason"), [
    (None, "IndexerUnreachable"),
    (IndexReport(state="ENDPOINTS_DOWN", last_indexed_block=3, head_block=40, confirmations=0,
                 last_error="all endpoints failing"), "EndpointsDown"),
    (IndexReport(state="STALLED", last_indexed_block=3, head_block=40, confirmations=0, last_error=""), "Stalled"),
])
def test_an_external_indexer_that_does_not_index_keeps_the_chain_unready(report: IndexReport | None,
                                                                         reason: str) -> None:
    by_type = conditions(external_status(after_poll(report)))
    assert by_type["IndexerReady"]["status"] == "False"
    assert by_type["IndexerReady"]["reason"] == "ExternalIndexerNotReady"
    assert reason in by_type["IndexerReady"]["message"]
    assert (by_type["Ready"]["status"], by_type["Ready"]["reason"]) == ("False", "IndexerUnavailable")


def test_before_the_first_poll_the_external_indexer_is_pending() -> None:
    by_type = conditions(external_status({"headBlock": 40}))
    assert (by_type["IndexerReady"]["status"], by_type["IndexerReady"]["reason"]) == ("False",
                                                                                        "ExternalIndexerPending")
    assert by_type["Ready"]["reason"] == "IndexerUnavailable"


def test_in_cluster_readiness_still_follows_the_deployment() -> None:
    live = IndexReport(state="FOLLOWING", last_indexed_block=40, head_block=40, confirmations=0, last_error="")
    status = chain.desired_status(name="anvil", spec=CHAIN, status=after_poll(live), generation=1,
                                  summary=HEALTHY, deployment=views.DeploymentView("d", 1, 0, "no pod"),
                                  synced=chain.synced_condition(None))
    by_type = conditions(status)
    assert by_type["IndexerReady"]["reason"] == "DeploymentUnavailable"
    assert by_type["Ready"]["reason"] == "IndexerUnavailable"
    assert status["indexerDeployment"] == "mintplane-indexer-anvil"


# --- Collection metadata progress -------------------------------------------------------------------------


def collection_status(progress: CollectionProgress | None, current: dict[str, Any] | None = None) -> dict[str, Any]:
    return collection.desired_status(
        status=current or {}, generation=None, synced=Condition("Synced", True, "Synced", "ok"),
        catalog=collection.catalog_condition("4a0e6c1e-8a9c-4c56-9e1f-2d1f0c9a0b11", None),
        contract_id=None, catalog_id="4a0e6c1e-8a9c-4c56-9e1f-2d1f0c9a0b11", progress=progress)


def test_collection_status_shows_metadata_progress_beside_indexed_tokens() -> None:
    progress = CollectionProgress(indexed_tokens=300, metadata_pending=12, metadata_ok=285, metadata_failed=3)
    status = collection_status(progress)
    assert status["indexedTokens"] == 300
    assert status["metadata"] == {"pending": 12, "ok": 285, "failed": 3}
    assert status["phase"] == "Ready"


def test_collection_status_without_a_catalog_answer_keeps_the_counts_out() -> None:
    status = collection_status(None)
    assert "metadata" not in status and "indexedTokens" not in status  # a merge patch keeps the last values


def _printer_columns(path: Path) -> dict[str, str]:
    crd = yaml.safe_load(path.read_text())
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    return {column["name"]: column["jsonPath"] for column in columns}


def _status_schema(path: Path) -> dict[str, Any]:
    crd = yaml.safe_load(path.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def test_the_collection_crd_prints_and_accepts_the_metadata_counts() -> None:
    path = ROOT / "crds" / "collections.mintplane.io.yaml"
    columns = _printer_columns(path)
    assert columns["Meta-OK"] == ".status.metadata.ok"
    assert columns["Meta-Pending"] == ".status.metadata.pending"
    assert columns["Meta-Failed"] == ".status.metadata.failed"
    counts = _status_schema(path)["properties"]["metadata"]["properties"]
    assert set(counts) == set(collection.metadata_status(CollectionProgress(0, 0, 0, 0)))
    # The chart ships the same file (make chart-crds).
    assert (ROOT / "charts" / "mintplane" / "crds" / path.name).read_bytes() == path.read_bytes()

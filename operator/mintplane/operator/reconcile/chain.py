"""Chain: registry rows (chain, gas policy), the indexer Deployment, and the status that summarises them,
including how far the indexer is behind the head (indexedBlock, indexerLag and the Indexing condition)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from mintplane.operator import builders, specs
from mintplane.operator.conditions import Condition, find, merge
from mintplane.operator.errors import ReconcileError, classify
from mintplane.operator.indexer import Indexer, IndexReport
from mintplane.operator.reconcile.workloads import Workloads
from mintplane.operator.registry import Registry
from mintplane.operator.rpc import ServiceError, ServiceNotFound, ServiceUnavailable
from mintplane.operator.settings import OperatorSettings
from mintplane.operator.views import (
    DeploymentView,
    EndpointSummary,
    external_indexer_condition,
    indexer_condition,
    ready_condition,
)


@dataclass(frozen=True, slots=True)
class ChainSync:
    registry_id: int
    deployment: str | None  # name of the indexer Deployment when one is wanted


async def _sync_registry(registry: Registry, spec: Mapping[str, Any]) -> int:
    record = specs.chain_record(spec)
    policy = specs.gas_policy_record(spec)
    try:
        registry_id = await registry.upsert_chain(record)  # also disables / re-enables it
        if record.enabled and policy is not None:  # a disabled chain refuses configuration writes
            await registry.upsert_gas_policy(record.caip2, policy)
        return registry_id
    except Exception as exc:
        raise classify(exc, what="chain registry") from None


async def sync_chain(
    *, name: str, namespace: str, spec: Mapping[str, Any], owner: kopf.Body,
    registry: Registry, workloads: Workloads, settings: OperatorSettings,
) -> ChainSync:
    """Converge registry and workloads to the spec; safe to repeat from any state."""
    registry_id = await _sync_registry(registry, spec)
    deployment_name = builders.indexer_deployment_name(name)
    try:
        if specs.indexer_enabled(spec) and not settings.indexer_external:
            deployment = builders.indexer_deployment(name, namespace, spec, settings)
            kopf.adopt(deployment, owner=owner)
            await workloads.apply_deployment(deployment)
            return ChainSync(registry_id, deployment_name)
        # Off, or run outside the cluster: no Deployment (one left from an in-cluster setting goes too).
        await workloads.delete_deployment(namespace, deployment_name)
        return ChainSync(registry_id, None)
    except Exception as exc:
        raise classify(exc, what="indexer Deployment") from None


async def finalize_chain(*, name: str, namespace: str, spec: Mapping[str, Any], registry: Registry,
                         workloads: Workloads) -> None:
    """Disable (never delete: history stays) and remove the workload before the finalizer goes."""
    try:
        await registry.disable_chain(str(spec["caip2"]))
        await workloads.delete_deployment(namespace, builders.indexer_deployment_name(name))
    except Exception as exc:
        raise classify(exc, what="chain cleanup") from None


def synced_condition(error: ReconcileError | None) -> Condition:
    if error is None:
        return Condition("Synced", True, "Synced", "registry rows and workloads match the spec")
    return Condition("Synced", False, error.reason, error.message)


def desired_status(
    *, name: str, spec: Mapping[str, Any], status: Mapping[str, Any], generation: int | None,
    summary: EndpointSummary, deployment: DeploymentView | None,
    synced: Condition | None = None, registry_id: int | None = None, now: str | None = None,
    external_indexer: str | None = None,
) -> dict[str, Any]:
    """The whole status the Chain should show; ``synced`` etc. None means keep what status already says.

    ``external_indexer`` is the indexer's GetStatus target when indexers run outside the cluster
    (OperatorSettings.indexer_external): IndexerReady then follows the Indexing condition, not a Deployment.
    """
    current_conditions = status.get("conditions") or []
    if synced is None:
        found = find(current_conditions, "Synced")
        synced = Condition("Synced", found.get("status") == "True", str(found.get("reason")),
                           str(found.get("message", ""))) if found else None
    wanted = specs.indexer_enabled(spec)
    if external_indexer is not None:
        indexer = external_indexer_condition(wanted, find(current_conditions, INDEXING), external_indexer)
    else:
        indexer = indexer_condition(wanted, deployment)
    ready = ready_condition(synced=synced, enabled=bool(spec.get("enabled", True)), summary=summary,
                            indexer=indexer)
    updates = [indexer, ready] + ([synced] if synced is not None else [])
    result: dict[str, Any] = {
        "observedGeneration": generation if generation is not None else status.get("observedGeneration"),
        "conditions": merge(current_conditions, updates, generation=generation or status.get("observedGeneration"),
                            now=now),
        "endpoints": {"total": summary.total, "healthy": summary.healthy},
        "headBlock": summary.best_head if summary.best_head is not None else status.get("headBlock"),
        "registryId": registry_id if registry_id is not None else status.get("registryId"),
        "indexerDeployment": builders.indexer_deployment_name(name) if wanted and external_indexer is None else None,
    }
    return result


# ------------------------------------------------------------------------------------ indexer progress

INDEXING = "Indexing"
DEFAULT_CONFIRMATIONS = 12  # the CRD's default for spec.indexer.confirmations
_URL = re.compile(r"\b([a-z][a-z0-9+.-]*://)([^/\s?#@]*@)?([^/\s?#]+)[^\s]*", re.IGNORECASE)
_MAX_MESSAGE = 1024


def indexer_lag(head: int | None, confirmations: int, indexed: int) -> int | None:
    """Blocks between the confirmed head and the last indexed block, floored at 0; None when no head is
    known. An indexed block above head - confirmations (a head read earlier than the checkpoint) is 0."""
    if head is None:
        return None
    return max(0, head - confirmations - indexed)


def _safe(text: str, fallback: str) -> str:
    """The indexer's error text for a condition (and so an Event): URLs cut to scheme and host, since a
    provider key may sit in a path or query, and bounded in length."""
    cleaned = _URL.sub(lambda m: f"{m.group(1)}{m.group(3)}", text.strip())
    return (cleaned or fallback)[:_MAX_MESSAGE]


def indexing_condition(report: IndexReport, lag: int | None) -> Condition:
    """Reasons follow the indexer's state, not the lag's size, so a lag moving 0 -> 2 -> 0 on a live chain
    changes indexerLag but not the condition (no describe noise, no Event)."""
    state = report.state
    if state == "DISABLED":
        return Condition(INDEXING, False, "ChainDisabled", "the indexer idles: the chain is disabled in the registry")
    if state == "ENDPOINTS_DOWN":
        return Condition(INDEXING, False, "EndpointsDown",
                         _safe(report.last_error, "every RPC endpoint of the chain is failing"))
    if state == "STALLED" and lag != 0:
        return Condition(INDEXING, False, "Stalled",
                         _safe(report.last_error, "the indexer's checkpoint has not advanced recently"))
    if state == "STALLED":  # nothing to index: an idle chain, not a stuck indexer
        return Condition(INDEXING, True, "CaughtUp", "the indexer's checkpoint is at the confirmed head")
    if state == "STARTING":
        return Condition(INDEXING, None, "Starting", "the indexer is loading its checkpoint and chain configuration")
    if state == "BACKFILLING":
        return Condition(INDEXING, True, "CatchingUp", "the indexer is catching up with the confirmed head")
    if state == "FOLLOWING":
        return Condition(INDEXING, True, "Following", "the indexer follows the confirmed head")
    return Condition(INDEXING, True, "CheckpointAdvancing", "the indexer's checkpoint advanced recently")


def unanswered_condition(caip2: str, error: ServiceError, target: str) -> Condition:
    """The condition when GetStatus gave no report; its message names the gRPC code, never the changing
    details, so a down indexer writes the status once rather than on every poll."""
    if isinstance(error, ServiceNotFound):
        return Condition(INDEXING, False, "NoCheckpoint",
                         f"the indexer has no checkpoint for {caip2} yet; indexerLag is set once it has one")
    if isinstance(error, ServiceUnavailable):
        return Condition(INDEXING, None, "IndexerUnreachable",
                         f"the indexer status service at {target} did not answer ({error.code.name}); "
                         "indexerLag keeps its last value")
    return Condition(INDEXING, None, "IndexerRejected",
                     _safe(f"the indexer refused GetStatus for {caip2}: {error}", "the indexer refused GetStatus"))


@dataclass(frozen=True, slots=True)
class IndexerPoll:
    """What one GetStatus call learnt: a report, or why there is none."""

    report: IndexReport | None
    error: ServiceError | None


async def poll_indexer(indexer: Indexer, caip2: str) -> IndexerPoll:
    try:
        return IndexerPoll(await indexer.chain_status(caip2), None)
    except ServiceError as exc:
        return IndexerPoll(None, exc)


def indexer_status(*, spec: Mapping[str, Any], status: Mapping[str, Any], poll: IndexerPoll,
                   target: str) -> dict[str, Any]:
    """The status fields an indexer poll decides. Fields it cannot decide (the lag while the indexer is
    unreachable, has no checkpoint, or no head is known) are left out, so they keep their last value."""
    generation = status.get("observedGeneration")
    caip2 = str(spec["caip2"])
    result: dict[str, Any] = {}
    if poll.report is None:
        assert poll.error is not None
        condition = unanswered_condition(caip2, poll.error, target)
    else:
        report = poll.report
        head: int | None
        if report.head_block is not None:  # a live lane: its own head and depth are the freshest
            head, confirmations = report.head_block, report.confirmations or 0
        else:
            head_block = status.get("headBlock")
            head = int(head_block) if head_block is not None else None
            confirmations = int((spec.get("indexer") or {}).get("confirmations", DEFAULT_CONFIRMATIONS))
        lag = indexer_lag(head, confirmations, report.last_indexed_block)
        result["indexedBlock"] = report.last_indexed_block
        if lag is not None:
            result["indexerLag"] = lag
        condition = indexing_condition(report, lag)
    result["conditions"] = merge(status.get("conditions"), [condition], generation=generation)
    return result


def indexer_off_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """No live indexer wanted: a lag would describe nothing, so both numbers go. The Indexing condition
    is updated only where an earlier poll wrote one; chains that never indexed do not grow one."""
    result: dict[str, Any] = {"indexerLag": None, "indexedBlock": None}
    if find(status.get("conditions"), INDEXING) is not None:
        off = Condition(INDEXING, False, "IndexerDisabled", "spec.indexer.enabled is false or the chain is disabled")
        result["conditions"] = merge(status.get("conditions"), [off], generation=status.get("observedGeneration"))
    return result

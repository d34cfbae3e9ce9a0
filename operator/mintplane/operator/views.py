"""Small read-only views of watched objects, as Kopf indexes keep them, and the status they imply.

Indexes let timers compute a Chain's endpoint summary or an IndexerJob's phase from memory instead of
listing objects from the API server every few seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mintplane.operator.conditions import Condition


@dataclass(frozen=True, slots=True)
class EndpointView:
    name: str
    enabled: bool
    healthy: bool
    head_block: int | None


@dataclass(frozen=True, slots=True)
class DeploymentView:
    name: str
    replicas: int
    available: int
    message: str


@dataclass(frozen=True, slots=True)
class JobView:
    name: str
    phase: str  # Pending | Running | Succeeded | Failed
    start_time: str | None
    completion_time: str | None
    reason: str
    message: str


def endpoint_view(name: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> EndpointView:
    """Healthy means usable by consumers: the probe passed and the registry row exists (Ready)."""
    head = status.get("headBlock")
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    return EndpointView(
        name=name,
        enabled=bool(spec.get("enabled", True)),
        healthy=bool(status.get("healthy", False)) and ready,
        head_block=int(head) if head is not None else None,
    )


def deployment_view(name: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> DeploymentView:
    message = ""
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Available" and condition.get("status") != "True":
            message = str(condition.get("message") or "")
    return DeploymentView(
        name=name,
        replicas=int(spec.get("replicas", 1)),
        available=int(status.get("availableReplicas") or 0),
        message=message,
    )


def job_view(name: str, status: Mapping[str, Any]) -> JobView:
    """Phase from the Job's terminal conditions first, then from ready pods (a Pending pod is not running)."""
    conditions = {c.get("type"): c for c in status.get("conditions") or () if c.get("status") == "True"}
    start, completion = status.get("startTime"), status.get("completionTime")
    if "Complete" in conditions:
        found = conditions["Complete"]
        return JobView(name, "Succeeded", start, completion or found.get("lastTransitionTime"),
                       str(found.get("reason") or "Completed"), str(found.get("message") or ""))
    if "Failed" in conditions:
        found = conditions["Failed"]
        return JobView(name, "Failed", start, found.get("lastTransitionTime"),
                       str(found.get("reason") or "Failed"), str(found.get("message") or ""))
    if int(status.get("ready") or 0) > 0 or int(status.get("succeeded") or 0) > 0:
        return JobView(name, "Running", start, None, "Running", "backfill pod is running")
    failed = int(status.get("failed") or 0)
    message = f"waiting for the backfill pod to start ({failed} failed attempts)" if failed else \
        "waiting for the backfill pod to start"
    return JobView(name, "Pending", start, None, "PodPending", message)


@dataclass(frozen=True, slots=True)
class EndpointSummary:
    total: int
    healthy: int
    best_head: int | None


def summarize(endpoints: Iterable[EndpointView]) -> EndpointSummary:
    views = list(endpoints)
    healthy = [v for v in views if v.enabled and v.healthy]
    heads = [v.head_block for v in healthy if v.head_block is not None]
    return EndpointSummary(total=len(views), healthy=len(healthy), best_head=max(heads) if heads else None)


def indexer_condition(wanted: bool, deployment: DeploymentView | None) -> Condition:
    if not wanted:
        return Condition("IndexerReady", False, "IndexerDisabled",
                         "spec.indexer.enabled is false or the chain is disabled")
    if deployment is None:
        return Condition("IndexerReady", False, "DeploymentMissing", "the indexer Deployment is being created")
    if deployment.available >= max(deployment.replicas, 1):
        return Condition("IndexerReady", True, "DeploymentAvailable", f"Deployment {deployment.name} is available")
    detail = deployment.message or "no available replica yet"
    return Condition("IndexerReady", False, "DeploymentUnavailable", f"Deployment {deployment.name}: {detail}")


def external_indexer_condition(wanted: bool, indexing: Mapping[str, Any] | None, target: str) -> Condition:
    """IndexerReady when the indexer runs outside the cluster: no Deployment to ask, so the indexer's own
    GetStatus decides, through the Indexing condition the indexer poll wrote (True: it answers and advances)."""
    if not wanted:
        return indexer_condition(False, None)
    if indexing is None:
        return Condition("IndexerReady", False, "ExternalIndexerPending",
                         f"waiting for the first GetStatus answer of the indexer at {target}")
    if indexing.get("status") == "True":
        return Condition("IndexerReady", True, "ExternalIndexerAnswering",
                         f"the indexer at {target} reports {indexing.get('reason')}")
    return Condition("IndexerReady", False, "ExternalIndexerNotReady",
                     f"the indexer at {target}: {indexing.get('reason')}: {indexing.get('message', '')}")


def ready_condition(*, synced: Condition | None, enabled: bool, summary: EndpointSummary,
                    indexer: Condition) -> Condition:
    """Ready: registry synced, at least one healthy endpoint, and the indexer available when it is wanted."""
    if not enabled:
        return Condition("Ready", False, "ChainDisabled", "spec.enabled is false: the registry serves it disabled")
    if synced is None or not synced.status:
        reason = synced.reason if synced is not None else "NotSynced"
        return Condition("Ready", False, reason, synced.message if synced is not None else "registry not synced yet")
    if summary.healthy == 0:
        return Condition("Ready", False, "NoHealthyEndpoint", f"0 of {summary.total} endpoints healthy")
    if indexer.reason != "IndexerDisabled" and not indexer.status:
        return Condition("Ready", False, "IndexerUnavailable", indexer.message)
    return Condition("Ready", True, "Ready", f"{summary.healthy} of {summary.total} endpoints healthy")

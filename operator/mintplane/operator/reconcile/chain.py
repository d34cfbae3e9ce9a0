"""Chain: registry rows (chain, gas policy), the indexer Deployment, and the status that summarises them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from mintplane.operator import builders, specs
from mintplane.operator.conditions import Condition, find, merge
from mintplane.operator.errors import ReconcileError, classify
from mintplane.operator.reconcile.workloads import Workloads
from mintplane.operator.registry import Registry
from mintplane.operator.settings import OperatorSettings
from mintplane.operator.views import DeploymentView, EndpointSummary, indexer_condition, ready_condition


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
        if specs.indexer_enabled(spec):
            deployment = builders.indexer_deployment(name, namespace, spec, settings)
            kopf.adopt(deployment, owner=owner)
            await workloads.apply_deployment(deployment)
            return ChainSync(registry_id, deployment_name)
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
) -> dict[str, Any]:
    """The whole status the Chain should show; ``synced`` etc. None means keep what status already says."""
    current_conditions = status.get("conditions") or []
    if synced is None:
        found = find(current_conditions, "Synced")
        synced = Condition("Synced", found.get("status") == "True", str(found.get("reason")),
                           str(found.get("message", ""))) if found else None
    wanted = specs.indexer_enabled(spec)
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
        "indexerDeployment": builders.indexer_deployment_name(name) if wanted else None,
    }
    return result

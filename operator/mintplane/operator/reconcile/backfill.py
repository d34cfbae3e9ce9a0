"""IndexerJob: one batch/v1 Job running the indexer's backfill over a block range, mirrored into status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mintplane.operator import builders, specs
from mintplane.operator.conditions import Condition, merge
from mintplane.operator.errors import ReconcileError, classify
from mintplane.operator.reconcile.workloads import Workloads
from mintplane.operator.settings import OperatorSettings
from mintplane.operator.views import JobView

TERMINAL = frozenset({"Succeeded", "Failed"})


def is_terminal(status: Mapping[str, Any]) -> bool:
    return status.get("phase") in TERMINAL


async def ensure_job(*, name: str, namespace: str, spec: Mapping[str, Any], status: Mapping[str, Any],
                     owner: kopf.Body, chain: specs.ChainRef | None, workloads: Workloads,
                     settings: OperatorSettings) -> str:
    """Apply the Job unless the backfill already finished (a finished Job may be gone after its TTL)."""
    job_name = builders.backfill_job_name(name)
    if is_terminal(status):
        return job_name
    if chain is None:
        raise ReconcileError("ChainNotFound", f"no Chain {spec.get('chainRef')!r} in namespace {namespace}",
                             retryable=True, delay=1)
    if not chain.enabled:
        raise ReconcileError("ChainDisabled", f"Chain {chain.name} is disabled; the backfill waits for it",
                             retryable=True, delay=10)
    body = builders.backfill_job(name, namespace, spec, chain.caip2, {"indexer": dict(chain.indexer)}, settings)
    kopf.adopt(body, owner=owner)
    try:
        await workloads.apply_job(body)
    except Exception as exc:
        raise classify(exc, what="backfill Job") from None
    return job_name


def _progress(spec: Mapping[str, Any], status: Mapping[str, Any], phase: str) -> dict[str, Any]:
    start, end = int(spec["fromBlock"]), int(spec["toBlock"])
    total = end - start + 1
    current = dict(status.get("progress") or {})
    if phase == "Succeeded":
        return {**current, "blocksTotal": total, "blocksDone": total, "percent": 100, "lastBlock": end}
    done = int(current.get("blocksDone") or 0)
    return {**current, "blocksTotal": total, "blocksDone": done, "percent": min(100, done * 100 // total)}


def desired_status(*, spec: Mapping[str, Any], status: Mapping[str, Any], job_name: str, view: JobView | None,
                   generation: int | None, error: ReconcileError | None = None) -> dict[str, Any]:
    phase = view.phase if view is not None else str(status.get("phase") or "Pending")
    if error is not None and phase not in TERMINAL:
        complete = Condition("Complete", False, error.reason, error.message)
    elif phase == "Succeeded":
        complete = Condition("Complete", True, view.reason if view else "Completed", f"blocks {spec['fromBlock']}"
                             f"-{spec['toBlock']} indexed")
    else:
        complete = Condition("Complete", False, phase, view.message if view else "waiting for the Job")
    failed = Condition("Failed", phase == "Failed", view.reason if view and phase == "Failed" else "NotFailed",
                       view.message if view and phase == "Failed" else "")
    result: dict[str, Any] = {
        "phase": phase,
        "jobName": job_name,
        "progress": _progress(spec, status, phase),
        "conditions": merge(status.get("conditions"), [complete, failed],
                            generation=generation or status.get("observedGeneration")),
    }
    if generation is not None:
        result["observedGeneration"] = generation
    if view is not None:
        result["startTime"] = view.start_time or status.get("startTime")
        result["completionTime"] = view.completion_time or status.get("completionTime")
    return result

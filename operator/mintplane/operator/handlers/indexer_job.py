"""IndexerJob handlers: apply the backfill Job, then mirror it into status until it finishes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mintplane.operator import builders, views
from mintplane.operator.errors import ReconcileError
from mintplane.operator.handlers._index import chain_of, job_of
from mintplane.operator.handlers._status import effective, kopf_error, write_status
from mintplane.operator.kinds import GROUP, INDEXER_JOBS, VERSION
from mintplane.operator.reconcile import backfill
from mintplane.operator.settings import get_settings


@kopf.index("batch", "v1", "jobs", labels={builders.OWNER_LABEL: kopf.PRESENT})
def backfill_jobs(namespace: str | None, name: str, status: kopf.Status, labels: kopf.Labels,
                  **_: Any) -> dict[Any, views.JobView]:
    return {(namespace, labels[builders.OWNER_LABEL]): views.job_view(name, status)}


async def _converge(name: str, namespace: str, spec: kopf.Spec, status: kopf.Status, generation: int | None,
                    body: kopf.Body, patch: kopf.Patch, memo: Any, kwargs: Mapping[str, Any]) -> None:
    current = effective(status, memo)
    error: ReconcileError | None = None
    job_name = builders.backfill_job_name(name)
    view = job_of(kwargs, namespace, name)
    if view is None:  # only (re)apply when the Job is not there: a Job's template is immutable anyway
        try:
            job_name = await backfill.ensure_job(
                name=name, namespace=namespace, spec=spec, status=current, owner=body,
                chain=chain_of(kwargs, namespace, spec.get("chainRef")), workloads=memo.kube,
                settings=memo.settings)
        except ReconcileError as exc:
            error = exc
    desired = backfill.desired_status(spec=spec, status=current, job_name=job_name, view=view,
                                      generation=generation, error=error)
    write_status(body, patch, status, desired, memo)
    if error is not None:
        raise kopf_error(error, memo, kwargs)


@kopf.on.resume(GROUP, VERSION, INDEXER_JOBS)
@kopf.on.create(GROUP, VERSION, INDEXER_JOBS)
@kopf.on.update(GROUP, VERSION, INDEXER_JOBS)
async def reconcile_indexer_job(name: str, namespace: str | None, spec: kopf.Spec, status: kopf.Status,
                                meta: kopf.Meta, body: kopf.Body, patch: kopf.Patch, memo: Any,
                                **kwargs: Any) -> None:
    await _converge(name, str(namespace), spec, status, meta.get("generation"), body, patch, memo, kwargs)


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return not backfill.is_terminal(status)


@kopf.timer(GROUP, VERSION, INDEXER_JOBS, id="mirror", interval=get_settings().status_interval_seconds,
            initial_delay=get_settings().status_interval_seconds, when=_unfinished)
async def mirror_job(name: str, namespace: str | None, spec: kopf.Spec, status: kopf.Status, body: kopf.Body,
                     patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
    """Job status changes do not touch the IndexerJob: follow them from the Job index until a final phase."""
    await _converge(name, str(namespace), spec, status, None, body, patch, memo, kwargs)

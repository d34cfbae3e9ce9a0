"""Chain handlers: reconcile on create/update/resume, refresh status on a timer, poll the indexer's
progress on another, clean up on delete."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
import kopf

from mintplane.common.log import get_logger
from mintplane.operator import builders, specs, views
from mintplane.operator.conditions import is_true
from mintplane.operator.errors import ReconcileError
from mintplane.operator.handlers._index import deployment_of, endpoints_of
from mintplane.operator.handlers._status import effective, kopf_error, write_status
from mintplane.operator.indexer import GrpcIndexer
from mintplane.operator.kinds import CHAINS, GROUP, VERSION
from mintplane.operator.reconcile import chain
from mintplane.operator.settings import get_settings

SELF_HEAL_SECONDS = 30.0
log = get_logger(__name__)


@kopf.index(GROUP, VERSION, CHAINS)
def chain_refs(namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status,
               **_: Any) -> dict[Any, specs.ChainRef]:
    """What ChainEndpoints, IndexerJobs and Collections need to know about the Chain they reference."""
    return {(namespace, name): specs.chain_ref(name, spec, status)}


@kopf.index("apps", "v1", "deployments", labels={builders.CHAIN_LABEL: kopf.PRESENT})
def indexer_deployments(namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status,
                        labels: kopf.Labels, **_: Any) -> dict[Any, views.DeploymentView]:
    return {(namespace, labels[builders.CHAIN_LABEL]): views.deployment_view(name, spec, status)}


def _desired(name: str, namespace: str, spec: kopf.Spec, current: Mapping[str, Any], generation: int | None,
             kwargs: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    config = get_settings()
    return chain.desired_status(
        name=name, spec=spec, status=current, generation=generation,
        summary=views.summarize(endpoints_of(kwargs, namespace, name)),
        deployment=deployment_of(kwargs, namespace, name),
        external_indexer=config.indexer_target if config.indexer_external else None, **extra,
    )


@kopf.on.resume(GROUP, VERSION, CHAINS)
@kopf.on.create(GROUP, VERSION, CHAINS)
@kopf.on.update(GROUP, VERSION, CHAINS)
async def reconcile_chain(name: str, namespace: str | None, spec: kopf.Spec, status: kopf.Status,
                          meta: kopf.Meta, body: kopf.Body, patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
    ns = str(namespace)
    error: ReconcileError | None = None
    registry_id = None
    try:
        result = await chain.sync_chain(name=name, namespace=ns, spec=spec, owner=body,
                                        registry=memo.registry, workloads=memo.kube, settings=memo.settings)
        registry_id = result.registry_id
    except ReconcileError as exc:
        error = exc
    desired = _desired(name, ns, spec, effective(status, memo), meta.get("generation"), kwargs,
                       synced=chain.synced_condition(error), registry_id=registry_id)
    write_status(body, patch, status, desired, memo)
    if error is not None:
        raise kopf_error(error, memo, kwargs)


@kopf.timer(GROUP, VERSION, CHAINS, id="status", interval=get_settings().status_interval_seconds,
            initial_delay=get_settings().status_interval_seconds / 2)
async def refresh_chain_status(name: str, namespace: str | None, spec: kopf.Spec, status: kopf.Status,
                               body: kopf.Body, patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
    """Endpoint health, head block and indexer availability change without a Chain event: poll the indexes."""
    ns = str(namespace)
    current = effective(status, memo)
    if (
        specs.indexer_enabled(spec) and not memo.settings.indexer_external
        and is_true(current.get("conditions"), "Synced") and deployment_of(kwargs, ns, name) is None
    ):
        # Someone deleted the Deployment: put it back (rate-limited; the index may just lag a fresh apply).
        now = asyncio.get_running_loop().time()
        if now - memo.get("last_heal", 0.0) > SELF_HEAL_SECONDS:
            memo.last_heal = now
            try:
                await chain.sync_chain(name=name, namespace=ns, spec=spec, owner=body,
                                       registry=memo.registry, workloads=memo.kube, settings=memo.settings)
            except ReconcileError as exc:
                raise kopf_error(exc, memo, kwargs) from None
    write_status(body, patch, status, _desired(name, ns, spec, current, None, kwargs), memo)


@kopf.on.startup(id="indexer-client")
async def open_indexer_client(memo: kopf.Memo, **_: Any) -> None:
    """Only Chain status reads the indexer, so its channel lives beside the handler that uses it."""
    config = get_settings()
    memo.indexer_channel = grpc.aio.insecure_channel(config.indexer_target)
    memo.indexer = GrpcIndexer(memo.indexer_channel, timeout=config.rpc_timeout_seconds)
    log.info("indexer status client", target=config.indexer_target, poll_seconds=config.indexer_poll_seconds)


@kopf.on.cleanup(id="indexer-client")
async def close_indexer_client(memo: kopf.Memo, **_: Any) -> None:
    if "indexer_channel" in memo:
        await memo.indexer_channel.close()


@kopf.timer(GROUP, VERSION, CHAINS, id="indexer", interval=get_settings().indexer_poll_seconds,
            initial_delay=get_settings().indexer_poll_seconds / 2)
async def refresh_indexer_progress(spec: kopf.Spec, status: kopf.Status, body: kopf.Body, patch: kopf.Patch,
                                   memo: Any, **_: Any) -> None:
    """indexedBlock and indexerLag from the indexer's GetStatus. Never raises: an unreachable indexer is a
    condition, and the lag keeps its last value until the indexer answers again."""
    if not specs.indexer_enabled(spec):
        desired = chain.indexer_off_status(effective(status, memo))
    else:
        poll = await chain.poll_indexer(memo.indexer, str(spec["caip2"]))
        # effective() after the await: the status timer or a reconcile may have written meanwhile.
        desired = chain.indexer_status(spec=spec, status=effective(status, memo), poll=poll,
                                       target=memo.settings.indexer_target)
    write_status(body, patch, status, desired, memo)


@kopf.on.delete(GROUP, VERSION, CHAINS)
async def delete_chain(name: str, namespace: str | None, spec: kopf.Spec, memo: Any, **kwargs: Any) -> None:
    try:
        await chain.finalize_chain(name=name, namespace=str(namespace), spec=spec, registry=memo.registry,
                                   workloads=memo.kube)
    except ReconcileError as exc:
        raise kopf_error(exc, memo, kwargs) from None

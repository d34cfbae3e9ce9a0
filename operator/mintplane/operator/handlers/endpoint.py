"""ChainEndpoint handlers: registry row on create/update/resume, a probe timer, row removal on delete."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from mintplane.operator import specs, views
from mintplane.operator.conditions import Condition, merge
from mintplane.operator.errors import ReconcileError
from mintplane.operator.handlers._index import chain_of, endpoints_of, registered_chain
from mintplane.operator.handlers._status import effective, kopf_error, write_status
from mintplane.operator.kinds import ENDPOINTS, GROUP, VERSION
from mintplane.operator.reconcile import endpoint
from mintplane.operator.rpc import ServiceNotFound
from mintplane.operator.settings import get_settings

WARN_EVERY_SECONDS = 300.0


@kopf.index(GROUP, VERSION, ENDPOINTS)
def endpoint_views(namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status,
                   **_: Any) -> dict[Any, views.EndpointView]:
    """Each endpoint's last probe, by chain: peers compare heads, the Chain counts healthy endpoints."""
    return {(namespace, spec.get("chainRef")): views.endpoint_view(name, spec, status)}


@kopf.on.resume(GROUP, VERSION, ENDPOINTS)
@kopf.on.create(GROUP, VERSION, ENDPOINTS)
@kopf.on.update(GROUP, VERSION, ENDPOINTS)
async def reconcile_endpoint(namespace: str | None, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                             body: kopf.Body, patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
    ns = str(namespace)
    current = effective(status, memo)
    chain = await registered_chain(kwargs, ns, spec.get("chainRef"))
    generation = meta.get("generation")
    host = specs.host_of(str(spec["url"]))
    try:
        registry_id = await endpoint.sync_endpoint(namespace=ns, spec=spec, status=current, chain=chain,
                                                   registry=memo.registry)
    except ReconcileError as exc:
        synced = Condition("Synced", False, exc.reason, exc.message)
        conditions = merge(current.get("conditions"), [synced], generation=generation)
        write_status(body, patch, status, {"conditions": conditions, "host": host}, memo)
        raise kopf_error(exc, memo, kwargs) from None
    synced = Condition("Synced", True, "Synced", f"registry endpoint {registry_id}")
    desired: dict[str, Any] = {
        "registryId": registry_id,
        "observedGeneration": generation,
        "host": host,
        "conditions": merge(current.get("conditions"), [synced], generation=generation),
    }
    if not spec.get("enabled", True):
        desired.update(endpoint.disabled_status({"conditions": desired["conditions"]}, generation))
    write_status(body, patch, status, desired, memo)
    memo.last_probe = None  # probe on the next tick with the (possibly new) URL and registry id


@kopf.timer(GROUP, VERSION, ENDPOINTS, id="probe", interval=get_settings().probe_tick_seconds, initial_delay=0.2)
async def probe_endpoint(name: str, namespace: str | None, spec: kopf.Spec, status: kopf.Status,
                         body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **kwargs: Any) -> None:
    """Ticks often, probes when the endpoint's own interval is due (Kopf timer intervals are fixed)."""
    settings = memo.settings
    if not spec.get("enabled", True):
        return
    now = asyncio.get_running_loop().time()
    if not endpoint.probe_due(memo.get("last_probe"), now, spec, settings):
        return
    memo.last_probe = now
    ns = str(namespace)
    current = effective(status, memo)
    chain = chain_of(kwargs, ns, spec.get("chainRef"))
    outcome = await endpoint.run_probe(
        namespace=ns, name=name, spec=spec, status=current, generation=current.get("observedGeneration"),
        chain=chain, peers=endpoints_of(kwargs, ns, spec.get("chainRef")), registry=memo.registry,
        workloads=memo.kube, session=memo.http, settings=settings,
    )
    desired = dict(outcome.status)
    if isinstance(outcome.registry_error, ServiceNotFound) and chain is not None:
        # The registry lost the row (restored backup, manual delete): recreate it, record health next tick.
        try:
            desired["registryId"] = await endpoint.sync_endpoint(
                namespace=ns, spec=spec, status={}, chain=chain, registry=memo.registry)
            memo.last_probe = None
        except ReconcileError as exc:
            logger.warning(f"cannot re-register endpoint: {exc.reason}: {exc.message}")
    elif outcome.registry_error is not None and now - memo.get("last_warning", -WARN_EVERY_SECONDS) >= \
            WARN_EVERY_SECONDS:
        memo.last_warning = now
        logger.warning(f"probe result not recorded in the registry: {outcome.registry_error}")
    write_status(body, patch, status, desired, memo)


@kopf.on.delete(GROUP, VERSION, ENDPOINTS)
async def delete_endpoint(namespace: str | None, spec: kopf.Spec, status: kopf.Status, memo: Any,
                          **kwargs: Any) -> None:
    chain = chain_of(kwargs, str(namespace), spec.get("chainRef"))
    try:
        await endpoint.remove_endpoint(spec=spec, status=effective(status, memo), chain=chain,
                                       registry=memo.registry)
    except ReconcileError as exc:
        raise kopf_error(exc, memo, kwargs) from None

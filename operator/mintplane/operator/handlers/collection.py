"""Collection handlers: registry contract + ABI and catalog collection; a timer retries the catalog and
reads the indexed token count and metadata progress; delete stops tracking the contract."""

from __future__ import annotations

from typing import Any

import kopf

from mintplane.operator.conditions import Condition, find, is_true
from mintplane.operator.errors import ReconcileError, classify
from mintplane.operator.handlers._index import chain_of, registered_chain
from mintplane.operator.handlers._status import effective, kopf_error, write_status
from mintplane.operator.kinds import COLLECTIONS, GROUP, VERSION
from mintplane.operator.reconcile import collection
from mintplane.operator.rpc import ServiceError
from mintplane.operator.settings import get_settings


@kopf.on.resume(GROUP, VERSION, COLLECTIONS)
@kopf.on.create(GROUP, VERSION, COLLECTIONS)
@kopf.on.update(GROUP, VERSION, COLLECTIONS)
async def reconcile_collection(namespace: str | None, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                               body: kopf.Body, patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
    ns = str(namespace)
    current = effective(status, memo)
    generation = meta.get("generation")
    try:
        result = await collection.sync_collection(
            namespace=ns, spec=spec, chain=await registered_chain(kwargs, ns, spec.get("chainRef")),
            registry=memo.registry, catalog=memo.catalog, abi_cache=memo.abi_cache)
    except ReconcileError as exc:
        desired = collection.desired_status(
            status=current, generation=generation, synced=Condition("Synced", False, exc.reason, exc.message),
            catalog=collection.catalog_condition(current.get("catalogCollectionId"), None),
            contract_id=None, catalog_id=None)
        write_status(body, patch, status, desired, memo)
        raise kopf_error(exc, memo, kwargs) from None
    desired = collection.desired_status(
        status=current, generation=generation,
        synced=Condition("Synced", True, "Synced", f"registry contract {result.contract_id}"),
        catalog=collection.catalog_condition(result.catalog_id, result.catalog_error),
        contract_id=result.contract_id, catalog_id=result.catalog_id)
    write_status(body, patch, status, desired, memo)


@kopf.timer(GROUP, VERSION, COLLECTIONS, id="catalog", interval=get_settings().catalog_poll_seconds,
            initial_delay=get_settings().catalog_poll_seconds)
async def poll_catalog(namespace: str | None, spec: kopf.Spec, status: kopf.Status, body: kopf.Body,
                       patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
    """Register with the catalog once it can answer, then keep indexedTokens and metadata current."""
    current = effective(status, memo)
    chain = chain_of(kwargs, str(namespace), spec.get("chainRef"))
    synced_found = find(current.get("conditions"), "Synced")
    if chain is None or synced_found is None or not is_true(current.get("conditions"), "Synced"):
        return
    synced = Condition("Synced", True, str(synced_found.get("reason")), str(synced_found.get("message", "")))
    catalog_id = current.get("catalogCollectionId")
    progress = None
    error: ReconcileError | None = None
    try:
        if not catalog_id:
            catalog_id = await collection.register_in_catalog(spec, chain.caip2, memo.catalog)
        progress = await memo.catalog.progress(catalog_id)
    except ServiceError as exc:
        error = classify(exc, what="catalog")
    desired = collection.desired_status(
        status=current, generation=None, synced=synced, catalog=collection.catalog_condition(catalog_id, error),
        contract_id=None, catalog_id=catalog_id, progress=progress)
    write_status(body, patch, status, desired, memo)


@kopf.on.delete(GROUP, VERSION, COLLECTIONS)
async def delete_collection(namespace: str | None, spec: kopf.Spec, memo: Any, **kwargs: Any) -> None:
    try:
        await collection.remove_collection(spec=spec, chain=chain_of(kwargs, str(namespace), spec.get("chainRef")),
                                           registry=memo.registry)
    except ReconcileError as exc:
        raise kopf_error(exc, memo, kwargs) from None

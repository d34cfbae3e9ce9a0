"""Collection: the contract and its standard ABI in the registry, the catalog collection, indexed tokens and
metadata progress."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from mintplane.common.contracts import ERC721_CONTRACT, ERC1155_CONTRACT, load_artifact
from mintplane.operator import specs
from mintplane.operator.catalog import Catalog, CollectionProgress, CollectionRegistration
from mintplane.operator.conditions import Condition, merge
from mintplane.operator.errors import ReconcileError, classify
from mintplane.operator.registry import AbiRecord, Registry
from mintplane.operator.rpc import ServiceError

ARTIFACTS = {"ERC721": ERC721_CONTRACT, "ERC1155": ERC1155_CONTRACT}


@dataclass(frozen=True, slots=True)
class CollectionSync:
    contract_id: int
    catalog_id: str | None
    catalog_error: ReconcileError | None


async def standard_abi(registry: Registry, standard: str, cache: MutableMapping[str, str]) -> str:
    """The sha256 of the standard's compiled ABI, stored once per operator process."""
    if standard not in cache:
        artifact = load_artifact(ARTIFACTS[standard])
        record = AbiRecord(abi_json=specs.canonical_json(list(artifact.abi)), contract_name=artifact.name,
                           standard=standard, source="solc")
        cache[standard] = await registry.put_abi(record)
    return cache[standard]


async def register_in_catalog(spec: Mapping[str, Any], caip2: str, catalog: Catalog) -> str:
    registration = CollectionRegistration(
        caip2=caip2, address=specs.checksum_address(str(spec["address"])), name=str(spec["name"]),
        slug=str(spec["slug"]), standard=str(spec["standard"]), deploy_block=int(spec.get("startBlock", 0)),
    )
    return await catalog.register_collection(registration)


async def sync_collection(*, namespace: str, spec: Mapping[str, Any], chain: specs.ChainRef | None,
                          registry: Registry, catalog: Catalog, abi_cache: MutableMapping[str, str]) -> CollectionSync:
    if chain is None:
        raise ReconcileError("ChainNotFound", f"no Chain {spec.get('chainRef')!r} in namespace {namespace}",
                             retryable=True, delay=1)
    try:
        abi_sha = await standard_abi(registry, str(spec["standard"]), abi_cache)
        contract_id = await registry.upsert_contract(specs.contract_record(spec, chain.caip2, abi_sha))
    except Exception as exc:
        raise classify(exc, what="chain registry") from None
    try:
        catalog_id: str | None = await register_in_catalog(spec, chain.caip2, catalog)
        catalog_error = None
    except ServiceError as exc:
        catalog_id, catalog_error = None, classify(exc, what="catalog")
    return CollectionSync(contract_id, catalog_id, catalog_error)


async def remove_collection(*, spec: Mapping[str, Any], chain: specs.ChainRef | None, registry: Registry) -> None:
    """Stop tracking the contract; the catalog keeps the collection and its history."""
    if chain is None:
        return
    try:
        await registry.delete_contract(chain.caip2, specs.checksum_address(str(spec["address"])))
    except Exception as exc:
        raise classify(exc, what="chain registry") from None


def catalog_condition(catalog_id: str | None, error: ReconcileError | None) -> Condition:
    if catalog_id:
        return Condition("CatalogSynced", True, "Registered", f"catalog collection {catalog_id}")
    if error is None:
        return Condition("CatalogSynced", False, "Pending", "not registered in the catalog yet")
    if error.reason == "CatalogUnavailable":
        return Condition("CatalogSynced", False, "CatalogUnavailable",
                         "the catalog service cannot register collections yet; retrying periodically")
    return Condition("CatalogSynced", False, error.reason, error.message)


def desired_status(*, status: Mapping[str, Any], generation: int | None, synced: Condition,
                   catalog: Condition, contract_id: int | None, catalog_id: str | None,
                   progress: CollectionProgress | None = None) -> dict[str, Any]:
    if not synced.status:
        phase = "Failed" if synced.reason in ("InvalidSpec", "RegistryRejected") else "Pending"
        ready = Condition("Ready", False, synced.reason, synced.message)
    elif catalog.status:
        phase, ready = "Ready", Condition("Ready", True, "Registered", "tracked by the registry and in the catalog")
    else:
        phase = "Indexing"
        ready = Condition("Ready", False, catalog.reason, catalog.message)
    result: dict[str, Any] = {
        "phase": phase,
        "conditions": merge(status.get("conditions"), [synced, catalog, ready],
                            generation=generation or status.get("observedGeneration")),
        "contractId": contract_id if contract_id is not None else status.get("contractId"),
        "catalogCollectionId": catalog_id or status.get("catalogCollectionId"),
    }
    if generation is not None:
        result["observedGeneration"] = generation
    if progress is not None:
        result["indexedTokens"] = progress.indexed_tokens
        result["metadata"] = metadata_status(progress)
    return result


def metadata_status(progress: CollectionProgress) -> dict[str, int]:
    """status.metadata: how many of the collection's tokens have their metadata fetched (ok), are waiting
    for a fetch or a retry (pending), or failed for good (failed, the reason is on each token)."""
    return {"pending": progress.metadata_pending, "ok": progress.metadata_ok, "failed": progress.metadata_failed}

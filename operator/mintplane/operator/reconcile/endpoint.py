"""ChainEndpoint: its registry row, and the periodic probe whose result goes to status and the registry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from mintplane.common.endpoint_auth import Credential
from mintplane.operator import probe, specs
from mintplane.operator.conditions import Condition, merge
from mintplane.operator.errors import ReconcileError, classify
from mintplane.operator.kube import SecretUnavailable
from mintplane.operator.reconcile.workloads import Workloads
from mintplane.operator.registry import HealthRecord, Registry
from mintplane.operator.rpc import ServiceError, ServiceNotFound, ServiceRejected
from mintplane.operator.settings import OperatorSettings
from mintplane.operator.views import EndpointView


def chain_missing(namespace: str, spec: Mapping[str, Any]) -> ReconcileError:
    return ReconcileError(
        "ChainNotFound", f"no Chain {spec.get('chainRef')!r} in namespace {namespace}", retryable=True, delay=1
    )


async def sync_endpoint(*, namespace: str, spec: Mapping[str, Any], status: Mapping[str, Any],
                        chain: specs.ChainRef | None, registry: Registry) -> int:
    """Upsert the registry row (by its id once known, so a URL change updates the same row)."""
    if chain is None:
        raise chain_missing(namespace, spec)
    known_id = int(status.get("registryId") or 0)
    try:
        record = specs.endpoint_record(namespace, spec, chain.caip2, registry_id=known_id)
        try:
            registry_id = await registry.upsert_endpoint(record)
        except ServiceNotFound:
            if not known_id:
                raise
            # The row vanished behind our back: recreate it by (caip2, url).
            registry_id = await registry.upsert_endpoint(specs.endpoint_record(namespace, spec, chain.caip2))
        if not spec.get("enabled", True):
            await registry.set_endpoint_health(registry_id, _disabled_health(), active=False)
        return registry_id
    except ServiceNotFound:
        raise ReconcileError("ChainNotRegistered", f"chain {chain.caip2} is not in the registry yet",
                             retryable=True, delay=1) from None
    except Exception as exc:
        raise classify(exc, what="chain registry") from None


def _disabled_health() -> HealthRecord:
    return HealthRecord(False, 0, 0, "Disabled: spec.enabled is false", datetime.now(UTC))


async def remove_endpoint(*, spec: Mapping[str, Any], status: Mapping[str, Any], chain: specs.ChainRef | None,
                          registry: Registry) -> None:
    registry_id = int(status.get("registryId") or 0)
    try:
        if not registry_id and chain is not None:
            registry_id = await registry.find_endpoint(chain.caip2, str(spec["url"])) or 0
        if registry_id:
            await registry.delete_endpoint(registry_id)
    except ServiceRejected:
        return  # the chain is disabled: its endpoints stay as history
    except Exception as exc:
        raise classify(exc, what="chain registry") from None


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    status: dict[str, Any]
    registry_error: ServiceError | None  # why the registry was not updated, if it was not


def probe_due(last_probe: float | None, now: float, spec: Mapping[str, Any], settings: OperatorSettings) -> bool:
    interval = float(spec.get("probeIntervalSeconds") or settings.probe_interval_seconds)
    return last_probe is None or now - last_probe >= interval - settings.probe_tick_seconds / 2


def best_peer_head(peers: Iterable[EndpointView], own_name: str) -> int | None:
    heads = [p.head_block for p in peers if p.name != own_name and p.enabled and p.healthy and p.head_block is not None]
    return max(heads) if heads else None


async def _credential(namespace: str, spec: Mapping[str, Any], workloads: Workloads) -> Credential | None:
    """The spec's credential with the Secret's value; ValueError for an authType the operator cannot map."""
    auth = str(spec.get("authType", "none"))
    ref = spec.get("secretRef")
    if auth == "none" or not ref:
        return None
    kind = probe.crd_auth_type(auth)  # before reading the Secret: an unknown type cannot use it anyway
    value = await workloads.secret_value(namespace, str(ref["name"]), str(ref.get("key", "apiKey")))
    return Credential(auth_type=kind, value=value, param=str(spec.get("authParam", "")))


async def run_probe(
    *, namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any],
    generation: int | None, chain: specs.ChainRef | None, peers: Iterable[EndpointView],
    registry: Registry, workloads: Workloads, session: aiohttp.ClientSession, settings: OperatorSettings,
) -> ProbeOutcome:
    """Probe once, assess against the chain and its peers, record health in the registry, return status."""
    checked_at = datetime.now(UTC).replace(microsecond=0)
    try:
        credential = await _credential(namespace, spec, workloads)
    except SecretUnavailable as exc:
        result = probe.ProbeResult(latency_ms=0, reason="SecretUnavailable", error=f"SecretUnavailable: {exc}")
    except ValueError as exc:  # an authType this operator does not know (an older CRD let it through)
        result = probe.ProbeResult(latency_ms=0, reason="InvalidSpec", error=f"InvalidSpec: {exc}")
    else:
        result = await probe.probe(session, str(spec["url"]), credential=credential,
                                   timeout=settings.probe_timeout_seconds)
    assessment = probe.assess(result, expected_chain_id=chain.chain_id if chain else None,
                              best_peer_head=best_peer_head(peers, name),
                              max_blocks_behind=settings.max_blocks_behind)
    if chain is None:
        missing = chain_missing(namespace, spec)
        assessment = probe.Assessment(False, assessment.blocks_behind, "red", missing.reason,
                                      f"{missing.reason}: {missing.message}")

    registry_id = int(status.get("registryId") or 0)
    registry_error: ServiceError | None = None
    if registry_id:
        health = HealthRecord(assessment.healthy, result.latency_ms, result.head_block or 0, assessment.error,
                              checked_at)
        try:
            await registry.set_endpoint_health(registry_id, health, active=assessment.healthy)
        except ServiceError as exc:
            registry_error = exc

    if not assessment.healthy:
        reason = assessment.reason
        ready = Condition("Ready", False, reason, assessment.error.removeprefix(f"{reason}: "))
    elif not registry_id:
        ready = Condition("Ready", False, "NotRegistered", "probe succeeded; waiting for the registry row")
    else:
        ready = Condition("Ready", True, "ProbeSucceeded",
                          f"chain id {result.chain_id}, head {result.head_block}, {result.latency_ms} ms")
    stamp = checked_at.isoformat().replace("+00:00", "Z")
    new_status: dict[str, Any] = {
        "healthy": assessment.healthy,
        "score": assessment.score,
        "latencyMs": result.latency_ms,
        "headBlock": result.head_block if result.head_block is not None else status.get("headBlock"),
        "blocksBehind": assessment.blocks_behind,
        "reportedChainId": result.chain_id,
        "lastError": assessment.error or None,
        "lastProbeTime": stamp,
        "host": specs.host_of(str(spec["url"])),
        "conditions": merge(status.get("conditions"), [ready], generation=generation, now=stamp),
    }
    return ProbeOutcome(new_status, registry_error)


def disabled_status(status: Mapping[str, Any], generation: int | None) -> dict[str, Any]:
    ready = Condition("Ready", False, "Disabled", "spec.enabled is false: not probed, inactive in the registry")
    return {"healthy": False, "score": "red", "lastError": None,
            "conditions": merge(status.get("conditions"), [ready], generation=generation)}

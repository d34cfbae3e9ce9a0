"""Custom-resource specs read into the registry's records, with the checks the API server cannot make.

The CRD schemas already refuse malformed values with clear messages; these functions only raise
:class:`SpecError` for what needs cross-object knowledge or what an older CRD may have let through, so a
handler can turn it into ``kopf.PermanentError`` (retrying cannot fix a spec).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from eth_utils.address import is_hex_address, to_checksum_address

from mintplane.operator.registry import ChainRecord, ContractRecord, EndpointRecord, GasPolicyRecord

Spec = Mapping[str, Any]

# CRD authType -> registry auth type (mintplane.operator.registry.AUTH_TYPES).
ENDPOINT_AUTH = {
    "none": "none",
    "bearer": "bearer",
    "basic": "basic",
    "header": "apiKeyHeader",
    "query": "apiKeyQuery",
    "path": "apiKeyPath",
}
# Auth types whose key travels under the name in spec.authParam (a header, or a query parameter).
NAMED_AUTH = frozenset({"header", "query"})


class SpecError(ValueError):
    """The spec cannot be reconciled as written; the message says what to change."""


@dataclass(frozen=True, slots=True)
class ChainRef:
    """What children need to know about their Chain (kept in a Kopf index)."""

    name: str
    caip2: str
    chain_id: int | None
    enabled: bool
    indexer: Mapping[str, Any] = field(default_factory=dict)  # image/resources overrides backfills reuse
    registered: bool = False  # the registry has the chain (its Chain reported Synced with a registry id)


def chain_record(spec: Spec) -> ChainRecord:
    caip2 = str(spec["caip2"])
    chain_id = spec.get("chainId")
    if caip2.startswith("eip155:") and (chain_id is None or f"eip155:{int(chain_id)}" != caip2):
        raise SpecError(f"chainId must equal the number in caip2 {caip2!r} (got {chain_id!r})")
    return ChainRecord(
        caip2=caip2,
        chain_numeric=int(chain_id or 0),
        name=str(spec["name"]),
        native_symbol=str(spec["nativeSymbol"]),
        decimals=int(spec.get("decimals", 18)),
        explorer_url=str(spec.get("explorerUrl", "")),
        enabled=bool(spec.get("enabled", True)),
        features=tuple(sorted(str(f) for f in spec.get("features", ()))),
    )


def _gwei(value: Any, field: str) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise SpecError(f"gasPolicy.{field} must be a decimal number of gwei, got {value!r}") from None
    if amount < 0:
        raise SpecError(f"gasPolicy.{field} must not be negative")
    return format(amount.normalize(), "f")


def gas_policy_record(spec: Spec) -> GasPolicyRecord | None:
    """None when the Chain has no gas policy; missing fields fall back to the CRD's documented defaults."""
    policy = spec.get("gasPolicy")
    if not policy:
        return None
    max_fee = _gwei(policy.get("maxFeeGwei", "0"), "maxFeeGwei")
    priority = _gwei(policy.get("priorityFeeGwei", "0"), "priorityFeeGwei")
    if Decimal(max_fee) and Decimal(priority) > Decimal(max_fee):
        raise SpecError("gasPolicy.priorityFeeGwei must not exceed gasPolicy.maxFeeGwei")
    multiplier = _gwei(policy.get("multiplier", 1.25), "multiplier")
    return GasPolicyRecord(max_fee_gwei=max_fee, priority_fee_gwei=priority, multiplier=multiplier)


def indexer_enabled(spec: Spec) -> bool:
    """The indexer runs only for an enabled chain that asks for it."""
    return bool(spec.get("enabled", True)) and bool((spec.get("indexer") or {}).get("enabled", False))


def chain_ref(name: str, spec: Spec, status: Spec | None = None) -> ChainRef:
    chain_id = spec.get("chainId")
    status = status or {}
    synced = any(c.get("type") == "Synced" and c.get("status") == "True" for c in status.get("conditions") or ())
    return ChainRef(
        name=name, caip2=str(spec["caip2"]), chain_id=int(chain_id) if chain_id is not None else None,
        enabled=bool(spec.get("enabled", True)),
        indexer={k: v for k, v in (spec.get("indexer") or {}).items() if k in ("image", "resources")},
        registered=synced and bool(status.get("registryId")),
    )


def secret_ref_uri(namespace: str, spec: Spec) -> str:
    """Where consumers find the credential (secret://<namespace>/<name>/<key>); never the key itself."""
    ref = spec.get("secretRef")
    if str(spec.get("authType", "none")) == "none" or not ref:
        return ""
    return f"secret://{namespace}/{ref['name']}/{ref.get('key', 'apiKey')}"


def endpoint_record(namespace: str, spec: Spec, caip2: str, *, registry_id: int = 0) -> EndpointRecord:
    url = str(spec["url"])
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise SpecError(f"url must be an http(s) or ws(s) URL with a host, got scheme {parts.scheme!r}")
    if parts.username or parts.password:
        raise SpecError("url must not embed credentials; store them in a Secret and set authType and secretRef")
    auth = str(spec.get("authType", "none"))
    if auth not in ENDPOINT_AUTH:
        raise SpecError(f"authType {auth!r} is not one of {sorted(ENDPOINT_AUTH)}")
    if auth != "none" and not spec.get("secretRef"):
        raise SpecError("secretRef is required when authType is not none")
    auth_param = str(spec.get("authParam") or "")
    if (auth in NAMED_AUTH) != bool(auth_param):
        raise SpecError("authParam (header or query parameter name) is required for authType header or query, "
                        "and only allowed there")
    return EndpointRecord(
        caip2=caip2,
        url=url,
        priority=int(spec.get("priority", 100)),
        weight=int(spec.get("weight", 100)),
        auth_type=ENDPOINT_AUTH[auth],
        auth_secret_ref=secret_ref_uri(namespace, spec),
        rate_limit=int(spec.get("rateLimit", 0)),
        id=registry_id,
        auth_param=auth_param,
    )


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "")


def checksum_address(address: str) -> str:
    if not is_hex_address(address):
        raise SpecError(f"address {address!r} is not a 20-byte hex address")
    return str(to_checksum_address(address))


def contract_record(spec: Spec, caip2: str, abi_sha256: str) -> ContractRecord:
    return ContractRecord(
        caip2=caip2,
        name=str(spec.get("name") or spec.get("slug") or ""),
        address=checksum_address(str(spec["address"])),
        start_block=int(spec.get("startBlock", 0)),
        abi_sha256=abi_sha256,
        standard=str(spec.get("standard", "ERC721")),
    )


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

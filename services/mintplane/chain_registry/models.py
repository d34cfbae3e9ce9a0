"""Plain values the registry passes between its layers.

Specs are validated, normalised inputs (built by `validation`, written by `repository`); rows are what the
repository reads back. Neither knows about protobuf or asyncpg, so domain rules and SQL can be tested and
changed apart from the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class AuthType(StrEnum):
    """chain_endpoints.auth_type vocabulary (mirrors EndpointAuthType)."""

    NONE = "none"
    API_KEY_PATH = "api_key_path"
    API_KEY_HEADER = "api_key_header"
    BEARER = "bearer"
    BASIC = "basic"
    API_KEY_QUERY = "api_key_query"


class Standard(StrEnum):
    """abi_blobs.standard / chain_contracts.standard vocabulary (mirrors TokenStandard)."""

    ERC721 = "ERC721"
    ERC1155 = "ERC1155"
    ERC20 = "ERC20"
    OTHER = "OTHER"


@dataclass(frozen=True)
class ChainSpec:
    caip2: str
    chain_numeric: int
    name: str
    native_symbol: str | None
    decimals: int
    explorer_url: str | None
    enabled: bool | None  # None: true on creation, unchanged on update
    features: list[str]


@dataclass(frozen=True)
class EndpointSpec:
    caip2: str
    url: str
    priority: int
    weight: int
    auth_type: AuthType
    auth_secret_ref: str | None
    rate_limit: int | None  # None: no limit
    active_on_create: bool
    endpoint_id: int | None = None  # update this row instead of keying by (caip2, url)
    auth_param: str | None = None  # header / query parameter name; set exactly for API_KEY_HEADER/QUERY


@dataclass(frozen=True)
class HealthReport:
    endpoint_id: int
    active: bool
    latency_ms: int
    head_block: int
    last_error: str | None
    checked_at: datetime | None  # None: the server's clock


@dataclass(frozen=True)
class AbiSpec:
    sha256: str
    canonical_json: str
    abi: list[dict[str, object]]
    size_bytes: int
    source: str | None
    compiler: str | None
    contract_name: str | None
    standard: Standard | None


@dataclass(frozen=True)
class ContractSpec:
    caip2: str
    address: str
    name: str | None
    start_block: int | None
    abi_sha256: str | None
    impl_address: str | None
    standard: Standard | None  # None: take the ABI's detected standard


@dataclass(frozen=True)
class ContractFilter:
    caip2: str
    standard: Standard | None
    addresses: list[str]


# Gas policy fields a FieldMask may name, in column order.
GAS_FIELDS: tuple[str, ...] = ("max_fee_gwei", "priority_fee_gwei", "multiplier", "last_observed_base_fee_gwei")


@dataclass(frozen=True)
class GasPolicyPatch:
    caip2: str
    values: dict[str, Decimal | None]  # only the masked fields; None clears a nullable field


@dataclass(frozen=True)
class ChainRow:
    id: int
    caip2: str
    chain_numeric: int
    name: str
    native_symbol: str | None
    decimals: int
    explorer_url: str | None
    enabled: bool
    features: list[str] | None
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class EndpointRow:
    id: int
    url: str
    priority: int
    weight: int
    auth_type: str | None
    auth_secret_ref: str | None
    rate_limit: int | None
    active: bool
    latency_ms: int | None
    head_block: int | None
    blocks_behind: int | None
    last_error: str | None
    checked_at: datetime | None
    auth_param: str | None = None  # None for rows that need none, and for header rows older than revision 0006


@dataclass(frozen=True)
class ContractRow:
    id: int
    name: str | None
    address: str
    start_block: int | None
    abi_sha256: str | None
    impl_address: str | None
    standard: str | None
    first_seen_at: datetime


@dataclass(frozen=True)
class GasPolicyRow:
    max_fee_gwei: Decimal | None
    priority_fee_gwei: Decimal | None
    multiplier: Decimal
    last_observed_base_fee_gwei: Decimal | None
    updated_at: datetime


@dataclass(frozen=True)
class AbiRow:
    sha256: str
    size_bytes: int | None
    source: str | None
    compiler: str | None
    contract_name: str | None
    standard: str | None
    s3_key: str | None
    created_at: datetime
    abi: list[dict[str, object]] | None  # None when the caller did not ask for the body


@dataclass(frozen=True)
class ChainConfig:
    chain: ChainRow
    endpoints: list[EndpointRow]
    gas_policy: GasPolicyRow | None
    contracts: list[ContractRow]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_after: int | None  # key of the last item when more follow
    total: int

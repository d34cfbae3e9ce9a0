"""The operator's view of the chain-registry service: the few writes it needs, in plain records.

Handlers depend on the :class:`Registry` protocol, not on gRPC, so the reconcile logic is unit-tested
against an in-memory fake and the e2e tests run it against the real service. Failures surface as
:mod:`mintplane.operator.rpc` errors (retryable or not).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc as pb_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.operator.rpc import ServiceNotFound, ServiceRejected, classify

AUTH_TYPES: dict[str, int] = {
    "none": pb.ENDPOINT_AUTH_TYPE_NONE,
    "apiKeyPath": pb.ENDPOINT_AUTH_TYPE_API_KEY_PATH,
    "apiKeyHeader": pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER,
    "bearer": pb.ENDPOINT_AUTH_TYPE_BEARER,
    "basic": pb.ENDPOINT_AUTH_TYPE_BASIC,
    "apiKeyQuery": pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY,
}
STANDARDS: dict[str, int] = {
    "ERC721": common_pb2.TOKEN_STANDARD_ERC721,
    "ERC1155": common_pb2.TOKEN_STANDARD_ERC1155,
}


@dataclass(frozen=True, slots=True)
class ChainRecord:
    caip2: str
    chain_numeric: int
    name: str
    native_symbol: str
    decimals: int
    explorer_url: str
    enabled: bool
    features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GasPolicyRecord:
    """Decimal strings in gwei, as the registry stores them."""

    max_fee_gwei: str
    priority_fee_gwei: str
    multiplier: str


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    caip2: str
    url: str
    priority: int
    weight: int
    auth_type: str  # a key of AUTH_TYPES
    auth_secret_ref: str  # "secret://<namespace>/<name>/<key>", never the credential
    rate_limit: int
    id: int = 0  # 0: create or find by (caip2, url)
    auth_param: str = ""  # header (apiKeyHeader) or query parameter (apiKeyQuery) name; empty otherwise


@dataclass(frozen=True, slots=True)
class HealthRecord:
    healthy: bool
    latency_ms: int
    head_block: int
    last_error: str
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class AbiRecord:
    abi_json: str
    contract_name: str
    standard: str  # a key of STANDARDS
    source: str = "solc"
    compiler: str = ""


@dataclass(frozen=True, slots=True)
class ContractRecord:
    caip2: str
    name: str
    address: str
    start_block: int
    abi_sha256: str
    standard: str  # a key of STANDARDS


class Registry(Protocol):
    async def upsert_chain(self, chain: ChainRecord) -> int:
        """Returns the chain's registry id."""

    async def disable_chain(self, caip2: str) -> int | None:
        """Idempotent; returns the registry id, None for a chain the registry never had."""

    async def upsert_gas_policy(self, caip2: str, policy: GasPolicyRecord) -> None: ...

    async def upsert_endpoint(self, endpoint: EndpointRecord) -> int:
        """Returns the endpoint's registry id."""

    async def find_endpoint(self, caip2: str, url: str) -> int | None: ...

    async def delete_endpoint(self, endpoint_id: int) -> None:
        """Idempotent."""

    async def set_endpoint_health(self, endpoint_id: int, health: HealthRecord, *, active: bool) -> None: ...

    async def put_abi(self, abi: AbiRecord) -> str:
        """Returns the ABI's sha256."""

    async def upsert_contract(self, contract: ContractRecord) -> int:
        """Returns the contract's registry id."""

    async def delete_contract(self, caip2: str, address: str) -> None:
        """Idempotent."""


T = TypeVar("T")
SERVICE = "chain_registry"


class GrpcRegistry:
    """:class:`Registry` over the chain-registry gRPC API; every call has a deadline."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout: float) -> None:
        self._stub = pb_grpc.ChainRegistryServiceStub(channel)
        self._timeout = timeout

    async def _call(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            raise classify(SERVICE, method, exc) from None

    async def upsert_chain(self, chain: ChainRecord) -> int:
        message = pb.Chain(
            caip2=chain.caip2, chain_numeric=chain.chain_numeric, name=chain.name,
            native_symbol=chain.native_symbol, decimals=chain.decimals, explorer_url=chain.explorer_url,
            enabled=chain.enabled, features=list(chain.features),
        )
        response = await self._call(
            "UpsertChain", lambda: self._stub.UpsertChain(pb.UpsertChainRequest(chain=message), timeout=self._timeout)
        )
        return int(response.chain.id)

    async def disable_chain(self, caip2: str) -> int | None:
        try:
            response = await self._call(
                "DisableChain",
                lambda: self._stub.DisableChain(pb.DisableChainRequest(caip2=caip2), timeout=self._timeout),
            )
        except ServiceNotFound:
            return None
        return int(response.chain.id)

    async def upsert_gas_policy(self, caip2: str, policy: GasPolicyRecord) -> None:
        message = pb.GasPolicy(
            caip2=caip2, max_fee_gwei=policy.max_fee_gwei, priority_fee_gwei=policy.priority_fee_gwei,
            multiplier=policy.multiplier,
        )
        # Only the fields the Chain owns: consumers write last_observed_base_fee_gwei.
        mask = FieldMask(paths=["max_fee_gwei", "priority_fee_gwei", "multiplier"])
        await self._call(
            "UpsertGasPolicy",
            lambda: self._stub.UpsertGasPolicy(
                pb.UpsertGasPolicyRequest(gas_policy=message, update_mask=mask), timeout=self._timeout
            ),
        )

    async def upsert_endpoint(self, endpoint: EndpointRecord) -> int:
        message = pb.Endpoint(
            id=endpoint.id, caip2=endpoint.caip2, url=endpoint.url, priority=endpoint.priority,
            weight=endpoint.weight, auth_type=AUTH_TYPES[endpoint.auth_type],  # type: ignore[arg-type]
            auth_secret_ref=endpoint.auth_secret_ref, auth_param=endpoint.auth_param, rate_limit=endpoint.rate_limit,
            active=True,
        )
        response = await self._call(
            "UpsertEndpoint",
            lambda: self._stub.UpsertEndpoint(pb.UpsertEndpointRequest(endpoint=message), timeout=self._timeout),
        )
        return int(response.endpoint.id)

    async def find_endpoint(self, caip2: str, url: str) -> int | None:
        try:
            response = await self._call(
                "ListEndpoints",
                lambda: self._stub.ListEndpoints(
                    pb.ListEndpointsRequest(caip2=caip2, include_inactive=True), timeout=self._timeout
                ),
            )
        except ServiceNotFound:
            return None
        return next((int(e.id) for e in response.endpoints if e.url == url), None)

    async def delete_endpoint(self, endpoint_id: int) -> None:
        try:
            await self._call(
                "DeleteEndpoint",
                lambda: self._stub.DeleteEndpoint(pb.DeleteEndpointRequest(id=endpoint_id), timeout=self._timeout),
            )
        except ServiceNotFound:
            return

    async def set_endpoint_health(self, endpoint_id: int, health: HealthRecord, *, active: bool) -> None:
        checked_at = Timestamp()
        checked_at.FromDatetime(health.checked_at)
        request = pb.SetEndpointHealthRequest(
            id=endpoint_id, active=active, latency_ms=health.latency_ms, head_block=health.head_block,
            last_error=health.last_error, checked_at=checked_at,
        )
        await self._call(
            "SetEndpointHealth", lambda: self._stub.SetEndpointHealth(request, timeout=self._timeout)
        )

    async def put_abi(self, abi: AbiRecord) -> str:
        request = pb.PutAbiRequest(
            abi_json=abi.abi_json, source=abi.source, compiler=abi.compiler, contract_name=abi.contract_name,
            standard=STANDARDS[abi.standard],  # type: ignore[arg-type]
        )
        response = await self._call("PutAbi", lambda: self._stub.PutAbi(request, timeout=self._timeout))
        return str(response.abi.sha256)

    async def upsert_contract(self, contract: ContractRecord) -> int:
        message = pb.Contract(
            caip2=contract.caip2, name=contract.name, address=contract.address, start_block=contract.start_block,
            abi_sha256=contract.abi_sha256, standard=STANDARDS[contract.standard],  # type: ignore[arg-type]
        )
        response = await self._call(
            "UpsertContract",
            lambda: self._stub.UpsertContract(pb.UpsertContractRequest(contract=message), timeout=self._timeout),
        )
        return int(response.contract.id)

    async def delete_contract(self, caip2: str, address: str) -> None:
        try:
            await self._call(
                "DeleteContract",
                lambda: self._stub.DeleteContract(
                    pb.DeleteContractRequest(caip2=caip2, address=address), timeout=self._timeout
                ),
            )
        except (ServiceNotFound, ServiceRejected) as exc:
            # A disabled chain refuses writes (FAILED_PRECONDITION); its contracts stay as history.
            if isinstance(exc, ServiceRejected) and exc.code != grpc.StatusCode.FAILED_PRECONDITION:
                raise

"""What the indexer needs from the chain registry, behind a small interface so tests can fake it.

`GetChainConfig` gives everything in one call: the chain (enabled or not), its active endpoints in
failover order, and its tracked contracts. Credentials never pass through the registry: an endpoint
that needs one names a secret (``secret://<namespace>/<name>/<key>``); in a pod the Secret's keys arrive
as environment variables (the operator mounts the indexer's env Secret), which :func:`resolve_headers`
looks up as ``MINTPLANE_RPC_SECRET_<NAME>_<KEY>`` (upper case, other characters as ``_``).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import grpc

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc as pb_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.indexer.endpoints import EndpointSpec

_STANDARDS = {
    common_pb2.TOKEN_STANDARD_ERC721: "ERC721",
    common_pb2.TOKEN_STANDARD_ERC1155: "ERC1155",
    common_pb2.TOKEN_STANDARD_ERC20: "ERC20",
    common_pb2.TOKEN_STANDARD_OTHER: "OTHER",
}
_AUTH = {
    pb.ENDPOINT_AUTH_TYPE_API_KEY_PATH: "api_key_path",
    pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER: "api_key_header",
    pb.ENDPOINT_AUTH_TYPE_BEARER: "bearer",
    pb.ENDPOINT_AUTH_TYPE_BASIC: "basic",
}
_SECRET_REF = re.compile(r"^secret://([^/]+)/([^/]+)/([^/]+)$")


@dataclass(frozen=True)
class TrackedContract:
    address: str  # lowercase
    standard: str  # ERC721 | ERC1155 | ERC20 | OTHER
    start_block: int


@dataclass(frozen=True)
class EndpointConfig:
    id: int
    url: str
    priority: int
    weight: int
    rate_limit: int
    auth_type: str = "none"
    auth_secret_ref: str = ""


@dataclass(frozen=True)
class ChainConfig:
    caip2: str
    chain_numeric: int
    enabled: bool
    endpoints: tuple[EndpointConfig, ...]
    contracts: tuple[TrackedContract, ...]

    @property
    def token_contracts(self) -> tuple[TrackedContract, ...]:
        """Contracts whose transfers the indexer decodes (ERC-721 and ERC-1155)."""
        return tuple(c for c in self.contracts if c.standard in ("ERC721", "ERC1155"))


class ChainNotFound(Exception):
    pass


class RegistryUnavailable(Exception):
    pass


class RegistryClient(Protocol):
    async def get_chain_config(self, caip2: str) -> ChainConfig: ...


class GrpcRegistryClient:
    def __init__(self, channel: grpc.aio.Channel, *, timeout: float = 5.0) -> None:
        self._stub = pb_grpc.ChainRegistryServiceStub(channel)
        self._timeout = timeout

    async def get_chain_config(self, caip2: str) -> ChainConfig:
        try:
            response = await self._stub.GetChainConfig(
                pb.GetChainConfigRequest(caip2=caip2, include_disabled=True), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise ChainNotFound(f"chain {caip2} is not in the chain registry") from None
            raise RegistryUnavailable(f"chain registry: {exc.code().name}: {exc.details() or ''}") from None
        return config_from_proto(response)


def config_from_proto(response: pb.GetChainConfigResponse) -> ChainConfig:
    chain = response.chain
    enabled = chain.enabled if chain.HasField("enabled") else True
    endpoints = tuple(
        EndpointConfig(
            id=e.id, url=e.url, priority=e.priority, weight=e.weight, rate_limit=e.rate_limit,
            auth_type=_AUTH.get(e.auth_type, "none"), auth_secret_ref=e.auth_secret_ref,
        )
        for e in response.endpoints
        if not e.HasField("active") or e.active
    )
    contracts = tuple(
        TrackedContract(address=c.address.lower(), standard=_STANDARDS.get(c.standard, "OTHER"),
                        start_block=int(c.start_block))
        for c in response.contracts
    )
    return ChainConfig(chain.caip2, int(chain.chain_numeric), enabled, endpoints, contracts)


def secret_env_name(ref: str) -> str:
    match = _SECRET_REF.match(ref)
    if match is None:
        raise ValueError(f"invalid secret reference {ref!r}")
    name, key = match[2], match[3]
    return "MINTPLANE_RPC_SECRET_" + re.sub(r"[^A-Z0-9]", "_", f"{name}_{key}".upper())


def resolve_endpoint(endpoint: EndpointConfig, env: Mapping[str, str] | None = None) -> EndpointSpec:
    """The endpoint with its credential applied; ValueError when the credential is not available."""
    env = os.environ if env is None else env
    url = endpoint.url
    headers: list[tuple[str, str]] = []
    if endpoint.auth_type != "none":
        if not endpoint.auth_secret_ref:
            raise ValueError(f"endpoint {endpoint.id} needs {endpoint.auth_type} credentials but names no secret")
        variable = secret_env_name(endpoint.auth_secret_ref)
        secret = env.get(variable)
        if not secret:
            raise ValueError(f"endpoint {endpoint.id}: credential {variable} is not set")
        if endpoint.auth_type == "api_key_path":
            url = url.rstrip("/") + "/" + secret
        elif endpoint.auth_type == "api_key_header":
            headers.append(("X-API-Key", secret))
        elif endpoint.auth_type == "bearer":
            headers.append(("Authorization", f"Bearer {secret}"))
        elif endpoint.auth_type == "basic":
            headers.append(("Authorization", "Basic " + base64.b64encode(secret.encode()).decode()))
    return EndpointSpec(id=endpoint.id, url=url, priority=endpoint.priority, weight=endpoint.weight,
                        rate_limit=endpoint.rate_limit, headers=tuple(headers), shown_as=endpoint.url)

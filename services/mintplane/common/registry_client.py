"""The chain registry as its consumers see it: one ``GetChainConfig`` call gives a chain (enabled or not),
its active endpoints in failover order and its tracked contracts, behind a small interface tests can fake.

Shared by the indexer (which follows a chain) and the catalog (which reads ``tokenURI`` through the same
endpoints). Credentials never pass through the registry: an endpoint that needs one names a secret
(``secret://<namespace>/<name>/<key>``); in a pod the Secret's keys arrive as environment variables (the
operator mounts them), which :func:`endpoint_request` looks up as ``MINTPLANE_RPC_SECRET_<NAME>_<KEY>``
(upper case, other characters as ``_``) and attaches with :mod:`mintplane.common.endpoint_auth`, exactly
as the operator's prober does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc as pb_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.common.endpoint_auth import AuthType, Credential, check_shape, request_target, secret_forms

_STANDARDS = {
    common_pb2.TOKEN_STANDARD_ERC721: "ERC721",
    common_pb2.TOKEN_STANDARD_ERC1155: "ERC1155",
    common_pb2.TOKEN_STANDARD_ERC20: "ERC20",
    common_pb2.TOKEN_STANDARD_OTHER: "OTHER",
}
_AUTH: dict[int, AuthType] = {
    pb.ENDPOINT_AUTH_TYPE_UNSPECIFIED: AuthType.NONE,
    pb.ENDPOINT_AUTH_TYPE_NONE: AuthType.NONE,
    pb.ENDPOINT_AUTH_TYPE_API_KEY_PATH: AuthType.API_KEY_PATH,
    pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER: AuthType.API_KEY_HEADER,
    pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY: AuthType.API_KEY_QUERY,
    pb.ENDPOINT_AUTH_TYPE_BEARER: AuthType.BEARER,
    pb.ENDPOINT_AUTH_TYPE_BASIC: AuthType.BASIC,
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
    auth_type: str = AuthType.NONE  # an AuthType value, or "EndpointAuthType=<n>" from a newer registry
    auth_secret_ref: str = ""
    auth_param: str = ""  # header (api_key_header) or query parameter (api_key_query) carrying the key


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
    """The registry did not answer the call; ``code`` is the gRPC status it failed with."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


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
            raise RegistryUnavailable(f"chain registry: {exc.code().name}: {exc.details() or ''}", exc.code()) from None
        return config_from_proto(response)


def config_from_proto(response: pb.GetChainConfigResponse) -> ChainConfig:
    chain = response.chain
    enabled = chain.enabled if chain.HasField("enabled") else True
    endpoints = tuple(
        EndpointConfig(
            id=e.id, url=e.url, priority=e.priority, weight=e.weight, rate_limit=e.rate_limit,
            auth_type=_AUTH.get(e.auth_type, f"EndpointAuthType={e.auth_type}"), auth_secret_ref=e.auth_secret_ref,
            auth_param=e.auth_param,
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


@dataclass(frozen=True)
class EndpointRequest:
    """Where and how to send requests to an endpoint: ``url`` and ``headers`` carry the credential (so they
    stay out of reprs); ``masks`` are the key's forms to blank out of error texts."""

    url: str = field(repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    masks: tuple[str, ...] = field(default=(), repr=False)


def endpoint_request(endpoint: EndpointConfig, env: Mapping[str, str] | None = None) -> EndpointRequest:
    """The endpoint with its credential applied.

    ValueError (never quoting the key) when the credential cannot be attached; callers prefix the
    endpoint's key-free URL and skip it.
    """
    env = os.environ if env is None else env
    credential = None
    if endpoint.auth_type != AuthType.NONE:
        check_shape(endpoint.auth_type, endpoint.auth_param)  # the registry's fault: say so before the env's
        credential = Credential(AuthType(endpoint.auth_type), _secret(endpoint, env), endpoint.auth_param)
    url, headers = request_target(endpoint.url, credential)
    return EndpointRequest(url=url, headers=tuple(headers.items()), masks=secret_forms(credential))


def _secret(endpoint: EndpointConfig, env: Mapping[str, str]) -> str:
    if not endpoint.auth_secret_ref:
        raise ValueError(f"auth type {endpoint.auth_type} needs a credential, but the endpoint names no secret")
    variable = secret_env_name(endpoint.auth_secret_ref)
    secret = env.get(variable)
    if not secret:
        raise ValueError(f"credential {variable} is not set (the key of {endpoint.auth_secret_ref})")
    return secret

"""What the indexer needs from the chain registry: the shared client (:mod:`mintplane.common.registry_client`)
and endpoints turned into the pool's :class:`EndpointSpec`, credential applied.
"""

from __future__ import annotations

from collections.abc import Mapping

from mintplane.common.registry_client import (
    ChainConfig,
    ChainNotFound,
    EndpointConfig,
    GrpcRegistryClient,
    RegistryClient,
    RegistryUnavailable,
    TrackedContract,
    config_from_proto,
    endpoint_request,
    secret_env_name,
)
from mintplane.indexer.endpoints import EndpointSpec, display_url

__all__ = [
    "ChainConfig", "ChainNotFound", "EndpointConfig", "GrpcRegistryClient", "RegistryClient", "RegistryUnavailable",
    "TrackedContract", "config_from_proto", "resolve_endpoint", "secret_env_name",
]


def resolve_endpoint(endpoint: EndpointConfig, env: Mapping[str, str] | None = None) -> EndpointSpec:
    """The endpoint with its credential applied, shown everywhere by the registry's key-free URL.

    ValueError (naming the endpoint, never the key) when the credential cannot be attached: the lane skips
    that endpoint with a warning and keeps the others.
    """
    try:
        target = endpoint_request(endpoint, env)
    except ValueError as exc:
        raise ValueError(f"endpoint {endpoint.id} ({display_url(endpoint.url)}): {exc}") from None
    return EndpointSpec(id=endpoint.id, url=target.url, priority=endpoint.priority, weight=endpoint.weight,
                        rate_limit=endpoint.rate_limit, headers=target.headers, shown_as=endpoint.url,
                        masks=target.masks)

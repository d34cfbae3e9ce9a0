"""Settings of the gateway process; every field is an env var `MINTPLANE_GATEWAY_<FIELD>`.

Logging follows the variables every service reads (`MINTPLANE_LOG_LEVEL`, `MINTPLANE_LOG_JSON`), so one
environment configures the whole dev stack the same way.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mintplane.common.settings import GATEWAY_PORT, SERVICE_PORTS

_LOOPBACK = "127.0.0.1"


def _upstream(service: str) -> str:
    return f"{_LOOPBACK}:{SERVICE_PORTS[service]}"


class GatewaySettings(BaseSettings):
    """Where the gateway listens, what it lets through, and where its upstream services are."""

    model_config = SettingsConfigDict(env_prefix="MINTPLANE_GATEWAY_", extra="ignore")

    host: str = _LOOPBACK
    port: int = Field(default=GATEWAY_PORT, ge=0, le=65535)
    # Comma-separated list (or JSON array) of browser origins allowed by CORS; empty allows none.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    graphiql: bool = False
    introspection: bool = True
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)
    max_query_depth: int = Field(default=10, ge=2)
    max_aliases: int = Field(default=30, ge=0)
    max_tokens: int = Field(default=2000, ge=100)
    # Estimated number of resolved fields (list fields multiply their children by `first`).
    max_complexity: int = Field(default=5000, ge=10)
    # Default `domain` of sign-in messages when the client names none and sends no Origin header.
    siwe_domain: str = "localhost"

    auth_addr: str = _upstream("auth")
    user_addr: str = _upstream("user")
    wallet_addr: str = _upstream("wallet")
    catalog_addr: str = _upstream("catalog")
    chain_registry_addr: str = _upstream("chain_registry")
    media_addr: str = _upstream("media")
    # POST /media: the largest request body (the file plus multipart framing; the media service's per-purpose
    # limits are below it), the bytes per UploadChunk message, and how long one upload or download may take.
    media_max_upload_bytes: int = Field(default=65 * 1024 * 1024, ge=1024)
    media_chunk_bytes: int = Field(default=1024 * 1024, ge=16 * 1024, le=1024 * 1024)
    media_timeout_seconds: float = Field(default=300.0, gt=0)
    rpc_timeout_seconds: float = Field(default=5.0, gt=0)
    readiness_timeout_seconds: float = Field(default=1.0, gt=0)
    jwks_cache_seconds: float = Field(default=300.0, ge=0)

    # Addresses of reverse proxies whose X-Forwarded-For is trusted for the client IP (uvicorn's setting).
    forwarded_allow_ips: str = _LOOPBACK
    workers: int = Field(default=1, ge=1)
    access_log: bool = True
    shutdown_grace_seconds: int = Field(default=5, ge=0)

    # The hot read path (persisted.py, result_cache.py, invalidation.py): Redis and RabbitMQ come from the
    # MINTPLANE_REDIS_URL / MINTPLANE_AMQP_URL every service reads.
    persisted_queries: bool = True
    persisted_query_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    persisted_query_local_size: int = Field(default=2048, ge=0)
    result_cache: bool = True
    # Catalog data is invalidated by the catalog's change events; the TTL is only a safety net.
    result_cache_ttl_seconds: int = Field(default=300, ge=1)
    # Data with no change events (profiles, wallets, chain heads) is only kept this long; 0: never cached.
    result_cache_unevented_ttl_seconds: int = Field(default=0, ge=0)
    result_cache_local_size: int = Field(default=4096, ge=0)
    result_cache_local_ttl_seconds: float = Field(default=60.0, gt=0)
    # An entry whose execution began less than this before an invalidation of one of its tags is refused
    # (covers clock skew between gateway processes sharing Redis).
    result_cache_clock_skew_seconds: float = Field(default=0.25, ge=0)
    result_cache_namespace: str = "mintplane:gateway"
    # Cache-Control of cacheable GET responses.
    http_max_age_seconds: int = Field(default=5, ge=0)
    http_stale_while_revalidate_seconds: int = Field(default=30, ge=0)

    log_level: str = Field(default="INFO", validation_alias=AliasChoices("MINTPLANE_LOG_LEVEL"))
    log_json: bool = Field(default=True, validation_alias=AliasChoices("MINTPLANE_LOG_JSON"))

    def upstream_addresses(self) -> dict[str, str]:
        """gRPC address of every upstream, by the names clients.UPSTREAM_SERVICES uses."""
        return {
            "auth": self.auth_addr, "user": self.user_addr, "wallet": self.wallet_addr,
            "catalog": self.catalog_addr, "chain_registry": self.chain_registry_addr, "media": self.media_addr,
        }

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept `https://a.example,https://b.example` as well as a JSON array in the env var."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip().rstrip("/") for item in text.split(",") if item.strip()]
        return value

"""Operator settings, every one an environment variable ``MINTPLANE_OPERATOR_<NAME>``.

Defaults point at the local dev stack so ``python -m mintplane.operator`` works on a developer machine with
no configuration; the Helm chart sets the in-cluster values (service addresses, image, namespaces).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mintplane.common.settings import SERVICE_PORTS


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MINTPLANE_OPERATOR_", extra="ignore")

    # Where the services the operator writes to live.
    registry_target: str = f"127.0.0.1:{SERVICE_PORTS['chain_registry']}"
    catalog_target: str = f"127.0.0.1:{SERVICE_PORTS['catalog']}"
    # The indexer's gRPC status service (GetStatus answers from its checkpoints): fills Chain indexerLag.
    indexer_target: str = f"127.0.0.1:{SERVICE_PORTS['indexer']}"
    # Indexers run outside the cluster (the dev stack's local follower processes, which have no kubelet to
    # start a pod): no indexer Deployment is created, and IndexerReady follows the indexer's GetStatus at
    # indexer_target instead of a Deployment's availability. Off in a cluster.
    indexer_external: bool = False
    rpc_timeout_seconds: float = Field(default=5.0, gt=0)

    # What to watch: empty means cluster-wide; otherwise names or globs ("mintplane-*"), comma-separated.
    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Kopf behaviour.
    finalizer: str = "mintplane.io/finalizer"
    field_manager: str = "mintplane-operator"
    liveness_endpoint: str = "http://127.0.0.1:8080/healthz"
    retry_delay_seconds: float = Field(default=5.0, gt=0)
    post_events: bool = True

    # Indexer workloads.
    indexer_image: str = "mintplane:latest"
    image_pull_policy: str = "IfNotPresent"
    indexer_env_secret: str = "mintplane-indexer-env"  # noqa: S105 - a Secret name, not a value
    indexer_service_account: str = ""
    indexer_cpu_request: str = "100m"
    indexer_memory_request: str = "256Mi"
    indexer_cpu_limit: str = "1"
    indexer_memory_limit: str = "512Mi"
    backfill_backoff_limit: int = Field(default=3, ge=0)
    backfill_ttl_seconds: int = Field(default=86400, ge=0)

    # Endpoint probing and status refresh.
    probe_interval_seconds: float = Field(default=10.0, ge=1)
    probe_timeout_seconds: float = Field(default=3.0, gt=0)
    probe_tick_seconds: float = Field(default=1.0, gt=0)
    max_blocks_behind: int = Field(default=10, ge=0)
    secret_cache_seconds: float = Field(default=30.0, ge=0)
    status_interval_seconds: float = Field(default=2.0, gt=0)
    catalog_poll_seconds: float = Field(default=30.0, gt=0)
    indexer_poll_seconds: float = Field(default=10.0, gt=0)

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> OperatorSettings:
    """One settings object per process: handler decorators read intervals from it at import time."""
    return OperatorSettings()

"""Environment-driven settings shared by every service.

Each service subclasses :class:`ServiceSettings` and adds its own fields; every field can be set through an
environment variable with the ``MINTPLANE_`` prefix (``MINTPLANE_PG_DSN``...). Defaults point at the local
dev stack (``make up``), so a developer never needs an env file on their own machine.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_PORTS: dict[str, int] = {
    "auth": 50051,
    "user": 50052,
    "wallet": 50053,
    "orchestrator": 50054,
    "media": 50055,
    "chain_registry": 50056,
    "catalog": 50057,
    "indexer": 50058,
}
GATEWAY_PORT = 8081


class InfraSettings(BaseSettings):
    """Where the data layer lives. Secrets are SecretStr so they never print in logs or reprs."""

    model_config = SettingsConfigDict(env_prefix="MINTPLANE_", extra="ignore")

    pg_dsn: SecretStr = SecretStr("postgresql://mintplane:mintplane@127.0.0.1:5432/mintplane")
    pg_pool_min: int = Field(default=1, ge=0)
    pg_pool_max: int = Field(default=10, ge=1)
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    amqp_url: SecretStr = SecretStr("amqp://mintplane:mintplane@127.0.0.1:5672/")
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    eth_rpc_url: str = "http://127.0.0.1:8545"
    log_level: str = "INFO"
    log_json: bool = True


class ServiceSettings(InfraSettings):
    """Settings of one gRPC service: where it listens and how long it drains on shutdown."""

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a cluster so Prometheus can scrape it
    metrics_port: int = 0  # 0: no separate Prometheus HTTP listener
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)

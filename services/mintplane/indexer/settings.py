"""Settings of the indexer; every field is also an environment variable (MINTPLANE_...).

The operator's indexer Deployment sets MINTPLANE_INDEXER_CHAIN, _CONFIRMATIONS, _BATCH_SIZE and
_START_BLOCK; the rest have defaults that suit a public chain and the local dev stack alike.
"""

from pydantic import Field

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class IndexerSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["indexer"]

    indexer_chain: str = ""  # CAIP-2 id of the chain to follow; empty: serve status only
    indexer_chain_registry_target: str = f"127.0.0.1:{SERVICE_PORTS['chain_registry']}"
    indexer_mongo_database: str = "indexer"
    indexer_events_exchange: str = "mintplane.events"  # topic exchange the events are published to
    indexer_confirmations: int = Field(default=12, ge=0)
    indexer_start_block: int | None = Field(default=None, ge=0)
    indexer_batch_size: int = Field(default=500, ge=1)  # first getLogs range; adapts from there
    indexer_max_batch_size: int = Field(default=5_000, ge=1)
    indexer_target_logs: int = Field(default=5_000, ge=1)  # logs per batch the range steers toward
    indexer_rpc_timeout_seconds: float = Field(default=15.0, gt=0)
    indexer_poll_interval_seconds: float = Field(default=1.0, gt=0)
    indexer_verify_window: int = Field(default=128, ge=0)
    indexer_max_reorg_depth: int = Field(default=1_000, ge=1)
    indexer_max_outbox_pending: int = Field(default=50_000, ge=1)  # unsent events before reads wait
    indexer_publish_batch: int = Field(default=20_000, ge=1)  # events per confirmed publish
    indexer_registry_refresh_seconds: float = Field(default=30.0, gt=0)
    indexer_stall_seconds: float = Field(default=120.0, gt=0)
    indexer_endpoint_cooldown_seconds: float = Field(default=1.0, gt=0)
    indexer_endpoint_max_cooldown_seconds: float = Field(default=30.0, gt=0)

"""Settings of the catalog service; every field is also an environment variable (MINTPLANE_...)."""

from pydantic import Field

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class CatalogSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["catalog"]

    catalog_consume: bool = True  # run the indexer-event consumer inside the service process
    catalog_queue: str = "catalog.transfers"
    catalog_events_exchange: str = "mintplane.events"
    catalog_routing_keys: list[str] = Field(default_factory=lambda: ["chain.*.transfer", "chain.*.transfer.retracted"])
    catalog_prefetch: int = Field(default=50, ge=1)  # messages (each carries up to 1,000 events)
    catalog_batch_size: int = Field(default=5000, ge=1)  # events per ingestion transaction
    catalog_batch_wait_seconds: float = Field(default=0.05, ge=0)

    # token metadata (mintplane.catalog.metadata): the worker beside the consumer, its fetcher, the refresh RPC
    metadata_worker: bool = True  # run the metadata worker inside the service process
    metadata_chains: list[str] = Field(default_factory=list)  # CAIP-2 ids to work on; empty: every chain
    metadata_chain_registry_target: str = f"127.0.0.1:{SERVICE_PORTS['chain_registry']}"
    metadata_batch_size: int = Field(default=200, ge=1)  # tokens claimed and written per transaction
    metadata_idle_seconds: float = Field(default=1.0, gt=0)  # poll interval when nothing is due
    metadata_lease_seconds: float = Field(default=300.0, gt=0)  # a claim's lifetime (a crashed worker's expire)
    metadata_rpc_batch_size: int = Field(default=100, ge=1)  # eth_calls per JSON-RPC batch request
    metadata_rpc_timeout_seconds: float = Field(default=15.0, gt=0)
    metadata_registry_cache_seconds: float = Field(default=30.0, ge=0)  # how long a chain's endpoints are reused
    metadata_ipfs_gateways: list[str] = Field(default_factory=lambda: ["https://ipfs.io"])  # rotated per attempt
    metadata_arweave_gateways: list[str] = Field(default_factory=lambda: ["https://arweave.net"])
    # host[:port] entries exempt from the SSRF address checks (and allowed over plain http); the dev stack
    # sets its own loopback file server here. Empty in production unless an operator decides otherwise.
    metadata_allow_hosts: list[str] = Field(default_factory=list)
    metadata_concurrency: int = Field(default=64, ge=1)  # documents fetched at once, all hosts
    metadata_per_host_concurrency: int = Field(default=8, ge=1)
    metadata_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    metadata_total_timeout_seconds: float = Field(default=15.0, gt=0)  # one document, all redirect hops
    metadata_idle_timeout_seconds: float = Field(default=5.0, gt=0)  # longest silence while reading
    metadata_min_bytes_per_second: int = Field(default=1024, ge=0)  # slower transfers are cut off...
    metadata_min_rate_grace_seconds: float = Field(default=2.0, ge=0)  # ...once this long has passed
    metadata_max_bytes: int = Field(default=1024 * 1024, ge=1024)  # document size cap (decoded)
    metadata_max_redirects: int = Field(default=3, ge=0)
    metadata_max_json_depth: int = Field(default=32, ge=2)
    metadata_max_json_elements: int = Field(default=50_000, ge=10)
    metadata_max_attempts: int = Field(default=5, ge=1)  # transient failures before a token is failed
    metadata_retry_base_seconds: float = Field(default=30.0, ge=0)  # backoff: base * 2^(attempt-1), jittered
    metadata_retry_max_seconds: float = Field(default=6 * 3600.0, ge=0)
    metadata_refresh_token_cooldown_seconds: float = Field(default=60.0, ge=0)
    metadata_refresh_collection_cooldown_seconds: float = Field(default=600.0, ge=0)

    rarity_worker: bool = True  # recompute dirty collections' rarity inside the service process
    rarity_poll_seconds: float = Field(default=1.0, gt=0)  # how often dirty collections are looked for
    rarity_min_interval_seconds: float = Field(default=5.0, ge=0)  # debounce: per collection, at most one per interval
    rarity_batch: int = Field(default=20, ge=1)  # collections recomputed per round
    rarity_sweep_seconds: float = Field(default=60.0, gt=0)  # how often burns / failed refreshes are looked for

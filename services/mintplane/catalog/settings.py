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

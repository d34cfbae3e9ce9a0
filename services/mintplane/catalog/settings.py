"""Settings of the catalog service; every field is also an environment variable (MINTPLANE_...)."""

from pydantic import Field

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class CatalogSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["catalog"]

    catalog_consume: bool = True  # run the indexer-event consumer inside the service process
    catalog_queue: str = "catalog.transfers"
    catalog_events_exchange: str = "mintplane.events"
    catalog_routing_keys: list[str] = Field(default_factory=lambda: ["chain.*.transfer", "chain.*.transfer.retracted"])
    catalog_prefetch: int = Field(default=2000, ge=1)
    catalog_batch_size: int = Field(default=1000, ge=1)
    catalog_batch_wait_seconds: float = Field(default=0.05, ge=0)

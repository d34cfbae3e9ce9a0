"""Settings of the indexer service; every field is also an env var (MINTPLANE_...)."""

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class IndexerSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["indexer"]

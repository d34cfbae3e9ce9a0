"""Settings of the catalog service; every field is also an env var (MINTPLANE_...)."""

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class CatalogSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["catalog"]

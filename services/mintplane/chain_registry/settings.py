"""Settings of the chain-registry service; every field is also an env var (MINTPLANE_...)."""

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class ChainRegistrySettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["chain_registry"]

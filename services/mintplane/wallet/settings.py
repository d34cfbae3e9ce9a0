"""Settings of the wallet service; every field is also an env var (MINTPLANE_...)."""

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class WalletSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["wallet"]

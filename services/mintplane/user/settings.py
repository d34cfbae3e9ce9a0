"""Settings of the user service; every field is also an env var (MINTPLANE_...)."""

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class UserSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["user"]

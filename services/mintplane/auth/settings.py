"""Settings of the auth service; every field is also an env var (MINTPLANE_...)."""

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class AuthSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["auth"]

"""Settings of the media service; every field is also an env var (MINTPLANE_...)."""

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class MediaSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["media"]

"""Settings of the orchestrator service; every field is also an env var (MINTPLANE_...)."""

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class OrchestratorSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["orchestrator"]

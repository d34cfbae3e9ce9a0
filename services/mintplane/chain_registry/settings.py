"""Settings of the chain-registry service; every field is also an env var (MINTPLANE_...)."""

from pydantic import Field

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class ChainRegistrySettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["chain_registry"]
    # Probes older than this, counted back from a chain's newest probe, do not set the pace for
    # blocks_behind: a head reported an hour ago says nothing about lag now (MINTPLANE_HEALTH_WINDOW_SECONDS).
    health_window_seconds: float = Field(default=300.0, gt=0)
    # Largest ABI PutAbi accepts; real ABIs are tens of kilobytes (MINTPLANE_MAX_ABI_BYTES).
    max_abi_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

"""`python -m mintplane.chain_registry` runs the service on its port (MINTPLANE_GRPC_PORT overrides it)."""

from mintplane.chain_registry.server import NEEDS, build_server
from mintplane.chain_registry.settings import ChainRegistrySettings
from mintplane.common.service import main

main("chain_registry", ChainRegistrySettings, NEEDS, build_server)

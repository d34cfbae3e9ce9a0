"""`python -m mintplane.orchestrator` runs the service on its port (MINTPLANE_GRPC_PORT overrides it)."""

from mintplane.common.service import main
from mintplane.orchestrator.server import NEEDS, build_server
from mintplane.orchestrator.settings import OrchestratorSettings

main("orchestrator", OrchestratorSettings, NEEDS, build_server)

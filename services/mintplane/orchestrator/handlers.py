"""gRPC servicer of the orchestrator service: thin, it translates messages and calls domain code.

RPCs not implemented yet answer UNIMPLEMENTED (the generated base class does that).
"""

from mintplane.api.orchestrator.v1 import orchestrator_pb2_grpc
from mintplane.common.service import Resources


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServiceServicer):
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

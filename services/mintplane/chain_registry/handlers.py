"""gRPC servicer of the chain-registry service: thin, it translates messages and calls domain code.

RPCs not implemented yet answer UNIMPLEMENTED (the generated base class does that).
"""

from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc
from mintplane.common.service import Resources


class ChainRegistryServicer(chain_registry_pb2_grpc.ChainRegistryServiceServicer):
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

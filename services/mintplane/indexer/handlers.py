"""gRPC servicer of the indexer service: thin, it translates messages and calls domain code.

RPCs not implemented yet answer UNIMPLEMENTED (the generated base class does that).
"""

from mintplane.api.indexer.v1 import indexer_pb2_grpc
from mintplane.common.service import Resources


class IndexerServicer(indexer_pb2_grpc.IndexerServiceServicer):
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

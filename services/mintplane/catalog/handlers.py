"""gRPC servicer of the catalog service: thin, it translates messages and calls domain code.

RPCs not implemented yet answer UNIMPLEMENTED (the generated base class does that).
"""

from mintplane.api.catalog.v1 import catalog_pb2_grpc
from mintplane.common.service import Resources


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

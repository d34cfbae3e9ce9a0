"""Builds the indexer gRPC server from its servicer (the shape every service shares)."""

from mintplane.api.indexer.v1 import indexer_pb2, indexer_pb2_grpc
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings
from mintplane.indexer.handlers import IndexerServicer

NEEDS = Needs(postgres=True, mongo=True)
SERVICE_NAME = indexer_pb2.DESCRIPTOR.services_by_name["IndexerService"].full_name


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    servicer = IndexerServicer(resources)  # type: ignore[abstract]  # RPCs land with their issues; until then UNIMPLEMENTED
    return build_grpc_server(
        settings,
        [lambda server: indexer_pb2_grpc.add_IndexerServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

"""Builds the orchestrator gRPC server from its servicer (the shape every service shares)."""

from mintplane.api.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings
from mintplane.orchestrator.handlers import OrchestratorServicer

NEEDS = Needs(postgres=True)
SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    servicer = OrchestratorServicer(resources)  # type: ignore[abstract]  # RPCs land with their issues; until then UNIMPLEMENTED
    return build_grpc_server(
        settings,
        [lambda server: orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

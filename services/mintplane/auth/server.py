"""Builds the auth gRPC server from its servicer (the shape every service shares)."""

from mintplane.api.auth.v1 import auth_pb2, auth_pb2_grpc
from mintplane.auth.handlers import AuthServicer
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings

NEEDS = Needs(postgres=True, redis=True)
SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    servicer = AuthServicer(resources)  # type: ignore[abstract]  # RPCs land with their issues; until then UNIMPLEMENTED
    return build_grpc_server(
        settings,
        [lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

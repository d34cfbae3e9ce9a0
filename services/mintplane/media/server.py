"""Builds the media gRPC server from its servicer (the shape every service shares)."""

from mintplane.api.media.v1 import media_pb2, media_pb2_grpc
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings
from mintplane.media.handlers import MediaServicer

NEEDS = Needs(mongo=True)
SERVICE_NAME = media_pb2.DESCRIPTOR.services_by_name["MediaService"].full_name


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    servicer = MediaServicer(resources)  # type: ignore[abstract]  # RPCs land with their issues; until then UNIMPLEMENTED
    return build_grpc_server(
        settings,
        [lambda server: media_pb2_grpc.add_MediaServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

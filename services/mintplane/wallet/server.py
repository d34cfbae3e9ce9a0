"""Builds the wallet gRPC server from its servicer (the shape every service shares)."""

from mintplane.api.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings
from mintplane.wallet.handlers import WalletServicer

NEEDS = Needs(postgres=True)
SERVICE_NAME = wallet_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    servicer = WalletServicer(resources)  # type: ignore[abstract]  # RPCs land with their issues; until then UNIMPLEMENTED
    return build_grpc_server(
        settings,
        [lambda server: wallet_pb2_grpc.add_WalletServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

"""Builds the chain-registry gRPC server from its servicer (the shape every service shares)."""

from datetime import timedelta

from mintplane.api.chain_registry.v1 import chain_registry_pb2, chain_registry_pb2_grpc
from mintplane.chain_registry.handlers import ChainRegistryServicer
from mintplane.chain_registry.repository import Repository
from mintplane.chain_registry.settings import ChainRegistrySettings
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings

NEEDS = Needs(postgres=True)
SERVICE_NAME = chain_registry_pb2.DESCRIPTOR.services_by_name["ChainRegistryService"].full_name


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    # Tests and tools may pass plain ServiceSettings; the registry's own knobs then take their defaults.
    own = settings if isinstance(settings, ChainRegistrySettings) else ChainRegistrySettings(**settings.model_dump())
    repository = Repository(resources.pg, health_window=timedelta(seconds=own.health_window_seconds))
    servicer = ChainRegistryServicer(repository, max_abi_bytes=own.max_abi_bytes)
    return build_grpc_server(
        settings,
        [lambda server: chain_registry_pb2_grpc.add_ChainRegistryServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

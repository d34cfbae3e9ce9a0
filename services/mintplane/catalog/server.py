"""Builds the catalog gRPC server from its servicer (the shape every service shares)."""

from collections.abc import Awaitable, Callable
from uuid import UUID

from mintplane.api.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from mintplane.catalog.collections import Collections
from mintplane.catalog.handlers import CatalogServicer
from mintplane.catalog.metadata.refresh import MetadataRefresh
from mintplane.catalog.metadata.store import MetadataStore
from mintplane.catalog.queries import CatalogQueries
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.settings import CatalogSettings
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings

NEEDS = Needs(postgres=True)
SERVICE_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name


async def build_server(
    settings: ServiceSettings, resources: Resources, *,
    on_change: Callable[[set[UUID], set[UUID]], Awaitable[None]] | None = None,
) -> BuiltServer:
    """`on_change` hears what a refresh made pending (catalog/changes.py publishes it)."""
    repository = CatalogRepository(resources.pg)
    # the marketplace, trait and pending-collection RPCs land with their issues; until then UNIMPLEMENTED
    catalog = settings if isinstance(settings, CatalogSettings) else CatalogSettings()
    refresh = MetadataRefresh(MetadataStore(resources.pg), repository,
                              token_cooldown=catalog.metadata_refresh_token_cooldown_seconds,
                              collection_cooldown=catalog.metadata_refresh_collection_cooldown_seconds,
                              on_change=on_change)
    servicer = CatalogServicer(Collections(repository), CatalogQueries(repository),  # type: ignore[abstract]
                               refresh=refresh)
    return build_grpc_server(
        settings,
        [lambda server: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

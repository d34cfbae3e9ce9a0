"""Builds the indexer gRPC server (the shape every service shares).

Without a status board (``python -m mintplane.indexer`` with no chain, as the dev stack runs it) GetStatus
answers from the stored checkpoints; a worker process passes its board so GetStatus reports its live lane.
"""

from __future__ import annotations

from mintplane.api.indexer.v1 import indexer_pb2, indexer_pb2_grpc
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings
from mintplane.indexer.handlers import IndexerServicer
from mintplane.indexer.queries import IndexerQueries
from mintplane.indexer.repository import IndexerRepository
from mintplane.indexer.settings import IndexerSettings
from mintplane.indexer.status import StatusBoard

NEEDS = Needs(postgres=True, mongo=True)
SERVICE_NAME = indexer_pb2.DESCRIPTOR.services_by_name["IndexerService"].full_name


async def build_server(
    settings: ServiceSettings, resources: Resources, *, board: StatusBoard | None = None
) -> BuiltServer:
    own = settings if isinstance(settings, IndexerSettings) else IndexerSettings(**settings.model_dump())
    repository = IndexerRepository(resources.pg) if resources.pg is not None else None
    queries = IndexerQueries(repository, board or StatusBoard(), stall_seconds=own.indexer_stall_seconds)
    # StartBackfill & co. stay UNIMPLEMENTED: backfills are Jobs (see handlers.py)
    servicer = IndexerServicer(queries)  # type: ignore[abstract]
    return build_grpc_server(
        settings,
        [lambda server: indexer_pb2_grpc.add_IndexerServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

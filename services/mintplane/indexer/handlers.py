"""gRPC servicer of the indexer: thin, it hands requests to :mod:`mintplane.indexer.queries`.

Backfills run as Kubernetes Jobs (``python -m mintplane.indexer backfill ...``, created by the operator
for IndexerJob resources), so StartBackfill / GetBackfill / ListBackfills / CancelBackfill still answer
UNIMPLEMENTED (the generated base class does that).
"""

from __future__ import annotations

from typing import Any

from mintplane.api.indexer.v1 import indexer_pb2 as pb
from mintplane.api.indexer.v1 import indexer_pb2_grpc
from mintplane.indexer.queries import IndexerQueries

Context = Any  # grpc.aio.ServicerContext; unused: errors travel as DomainError


class IndexerServicer(indexer_pb2_grpc.IndexerServiceServicer):
    def __init__(self, queries: IndexerQueries) -> None:
        self._queries = queries

    async def GetStatus(self, request: pb.GetStatusRequest, context: Context) -> pb.GetStatusResponse:
        return await self._queries.status(request)

    async def ListCheckpoints(self, request: pb.ListCheckpointsRequest, context: Context) -> pb.ListCheckpointsResponse:
        return await self._queries.checkpoints(request)

    async def ListTokenBalances(
        self, request: pb.ListTokenBalancesRequest, context: Context
    ) -> pb.ListTokenBalancesResponse:
        return await self._queries.balances(request)

    async def ListTransfers(self, request: pb.ListTransfersRequest, context: Context) -> pb.ListTransfersResponse:
        return await self._queries.transfers(request)

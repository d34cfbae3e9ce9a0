"""gRPC servicer of the catalog service: thin, it hands requests to the domain modules.

Implemented: RegisterCollection, GetCollection, GetCollectionBySlug, GetCollectionByContract,
BatchGetCollections, ListCollections, GetCollectionStats, BatchGetCollectionStats, GetToken, BatchGetTokens,
ListTokens, ListTraits, ListActivities, RefreshMetadata. The other RPCs answer UNIMPLEMENTED (the generated base
class does that).
"""

from __future__ import annotations

from typing import Any

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.catalog.v1 import catalog_pb2_grpc
from mintplane.catalog.collections import Collections
from mintplane.catalog.facets import Facets
from mintplane.catalog.metadata.refresh import MetadataRefresh
from mintplane.catalog.queries import CatalogQueries
from mintplane.common.errors import Unavailable

Context = Any  # grpc.aio.ServicerContext; unused: errors travel as DomainError


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, collections: Collections, queries: CatalogQueries, *,
                 refresh: MetadataRefresh | None = None) -> None:
        self._collections = collections
        self._queries = queries
        self._refresh = refresh
        self._facets = Facets(queries.repository)

    async def RegisterCollection(
        self, request: pb.RegisterCollectionRequest, context: Context
    ) -> pb.RegisterCollectionResponse:
        return await self._collections.register(request)

    async def GetCollection(self, request: pb.GetCollectionRequest, context: Context) -> pb.GetCollectionResponse:
        return await self._collections.get(request)

    async def GetCollectionByContract(
        self, request: pb.GetCollectionByContractRequest, context: Context
    ) -> pb.GetCollectionByContractResponse:
        return await self._collections.get_by_contract(request)

    async def GetCollectionStats(
        self, request: pb.GetCollectionStatsRequest, context: Context
    ) -> pb.GetCollectionStatsResponse:
        return await self._collections.stats(request)

    async def GetToken(self, request: pb.GetTokenRequest, context: Context) -> pb.GetTokenResponse:
        return await self._queries.get_token(request)

    async def ListTokens(self, request: pb.ListTokensRequest, context: Context) -> pb.ListTokensResponse:
        return await self._queries.list_tokens(request)

    async def ListActivities(self, request: pb.ListActivitiesRequest, context: Context) -> pb.ListActivitiesResponse:
        return await self._queries.list_activities(request)

    async def GetCollectionBySlug(
        self, request: pb.GetCollectionBySlugRequest, context: Context
    ) -> pb.GetCollectionBySlugResponse:
        return await self._collections.get_by_slug(request)

    async def BatchGetCollections(
        self, request: pb.BatchGetCollectionsRequest, context: Context
    ) -> pb.BatchGetCollectionsResponse:
        return await self._collections.batch_get(request)

    async def ListCollections(
        self, request: pb.ListCollectionsRequest, context: Context
    ) -> pb.ListCollectionsResponse:
        return await self._collections.list_collections(request)

    async def BatchGetCollectionStats(
        self, request: pb.BatchGetCollectionStatsRequest, context: Context
    ) -> pb.BatchGetCollectionStatsResponse:
        return await self._collections.batch_stats(request)

    async def BatchGetTokens(self, request: pb.BatchGetTokensRequest, context: Context) -> pb.BatchGetTokensResponse:
        return await self._queries.batch_get_tokens(request)

    async def ListTraits(self, request: pb.ListTraitsRequest, context: Context) -> pb.ListTraitsResponse:
        return await self._facets.list_traits(request)

    async def RefreshMetadata(
        self, request: pb.RefreshMetadataRequest, context: Context
    ) -> pb.RefreshMetadataResponse:
        if self._refresh is None:
            raise Unavailable("metadata refresh is not configured on this server")
        return await self._refresh.refresh(request)

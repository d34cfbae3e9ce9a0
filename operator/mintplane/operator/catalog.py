"""The operator's view of the catalog service: register a Collection's contract, read how much of it is
indexed and how far its token metadata has been fetched. The catalog is optional for the operator: when it
cannot answer (down, or not implementing the call yet) Collections report ``CatalogSynced=False`` and are
retried on a timer, never error-looped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.api.catalog.v1 import catalog_pb2_grpc as pb_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.operator.registry import STANDARDS
from mintplane.operator.rpc import classify

SERVICE = "catalog"


@dataclass(frozen=True, slots=True)
class CollectionRegistration:
    caip2: str
    address: str
    name: str
    slug: str
    standard: str  # a key of registry.STANDARDS
    deploy_block: int


@dataclass(frozen=True, slots=True)
class CollectionProgress:
    """What GetCollectionStats says about a collection's progress: tokens indexed, metadata fetched."""

    indexed_tokens: int
    metadata_pending: int
    metadata_ok: int
    metadata_failed: int


class Catalog(Protocol):
    async def register_collection(self, registration: CollectionRegistration) -> str:
        """Returns the catalog collection id; idempotent on (chain, address)."""

    async def progress(self, collection_id: str) -> CollectionProgress: ...


class GrpcCatalog:
    def __init__(self, channel: grpc.aio.Channel, *, timeout: float) -> None:
        self._stub = pb_grpc.CatalogServiceStub(channel)
        self._timeout = timeout

    async def register_collection(self, registration: CollectionRegistration) -> str:
        request = pb.RegisterCollectionRequest(
            contract=common_pb2.ContractRef(
                chain=common_pb2.ChainRef(caip2=registration.caip2), address=registration.address
            ),
            name=registration.name,
            slug=registration.slug,
            standard=STANDARDS[registration.standard],  # type: ignore[arg-type]
            deploy_block=registration.deploy_block,
        )
        try:
            response = await self._stub.RegisterCollection(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise classify(SERVICE, "RegisterCollection", exc) from None
        return str(response.collection.id)

    async def progress(self, collection_id: str) -> CollectionProgress:
        try:
            response = await self._stub.GetCollectionStats(
                pb.GetCollectionStatsRequest(collection_id=collection_id), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise classify(SERVICE, "GetCollectionStats", exc) from None
        stats = response.stats
        return CollectionProgress(
            indexed_tokens=int(stats.items_count), metadata_pending=int(stats.metadata_pending),
            metadata_ok=int(stats.metadata_ok), metadata_failed=int(stats.metadata_failed),
        )

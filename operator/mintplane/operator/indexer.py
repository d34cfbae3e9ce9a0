"""The operator's view of the indexer service: how far a chain is indexed, for the Chain's indexerLag.

The indexer is optional for the operator, like the catalog: when it cannot answer, or has no checkpoint
for a chain yet, the Chain says so in a condition and keeps its last lag; nothing is retried in a loop.

Two kinds of process answer ``GetStatus``: the status server (the chart's ``indexer`` Service, the dev
stack's 50058) reads the persisted checkpoint and knows no head; a follower process reports its live lane,
head and confirmation depth included. :class:`IndexReport` keeps that difference (``head_block`` None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc

from mintplane.api.common.v1 import common_pb2
from mintplane.api.indexer.v1 import indexer_pb2 as pb
from mintplane.api.indexer.v1 import indexer_pb2_grpc as pb_grpc
from mintplane.operator.rpc import classify

SERVICE = "indexer"
_STATE_PREFIX = "INDEXER_STATE_"


@dataclass(frozen=True, slots=True)
class IndexReport:
    """One chain's indexing progress as the indexer reports it."""

    state: str  # IndexerState without its prefix: FOLLOWING, BACKFILLING, STALLED, ..., UNSPECIFIED
    last_indexed_block: int
    head_block: int | None  # None: the answering process does not follow the chain (checkpoint only)
    confirmations: int | None  # the lane's confirmation depth; None with head_block None
    last_error: str


class Indexer(Protocol):
    async def chain_status(self, caip2: str) -> IndexReport:
        """Raises rpc.ServiceNotFound when the indexer has no checkpoint for the chain."""


def report_of(status: pb.ChainIndexStatus) -> IndexReport:
    """proto3 has no presence for scalars: a head of 0 means "not reported" (no real chain is at block 0
    with an indexer following it; the status server leaves head and confirmations unset)."""
    live = status.head_block > 0
    return IndexReport(
        state=pb.IndexerState.Name(status.state).removeprefix(_STATE_PREFIX),
        last_indexed_block=int(status.last_indexed_block),
        head_block=int(status.head_block) if live else None,
        confirmations=int(status.confirmations) if live else None,
        last_error=status.last_error,
    )


class GrpcIndexer:
    def __init__(self, channel: grpc.aio.Channel, *, timeout: float) -> None:
        self._stub = pb_grpc.IndexerServiceStub(channel)
        self._timeout = timeout

    async def chain_status(self, caip2: str) -> IndexReport:
        request = pb.GetStatusRequest(chain=common_pb2.ChainRef(caip2=caip2))
        try:
            response = await self._stub.GetStatus(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise classify(SERVICE, "GetStatus", exc) from None
        return report_of(response.status)

"""RefreshMetadata: put one token, or every token of a collection, back in the worker's queue, rate limited.

A refresh makes the tokens pending and due now with a fresh round of attempts; their current name, image
and traits stay until the new fetch succeeds. A fetch already in flight for a refreshed token is dropped
when it completes (its claim lease no longer matches) and the token is fetched again.

Rate limits, both from settings and both answered with RESOURCE_EXHAUSTED saying when to retry:
- a token: not again within ``token_cooldown`` of its last fetch (a never-fetched token that is already
  due is simply reported as queued);
- a collection: not again within ``collection_cooldown`` of its last collection-wide refresh
  (``collection_stats.metadata_refresh_requested_at``, checked under the collection's lock).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from uuid import UUID

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.catalog import views
from mintplane.catalog.metadata.store import MetadataStore
from mintplane.catalog.queries import _UINT, contract_of, uuid_of
from mintplane.catalog.repository import CatalogRepository
from mintplane.common.errors import InvalidArgument, NotFound, ResourceExhausted


def _when(moment: datetime, now: datetime) -> str:
    wait = max(1, math.ceil((moment - now).total_seconds()))
    return f"retry after {moment.strftime('%Y-%m-%dT%H:%M:%SZ')} (in {wait} s)"


class MetadataRefresh:
    def __init__(self, store: MetadataStore, repository: CatalogRepository, *, token_cooldown: float = 60.0,
                 collection_cooldown: float = 600.0,
                 on_change: Callable[[set[UUID], set[UUID]], Awaitable[None]] | None = None) -> None:
        self._on_change = on_change  # the refreshed tokens now show pending: the gateway's cache must hear it
        self._store = store
        self._repo = repository
        self._token_cooldown = token_cooldown
        self._collection_cooldown = collection_cooldown

    async def refresh(self, request: pb.RefreshMetadataRequest) -> pb.RefreshMetadataResponse:
        target = request.WhichOneof("target")
        if target == "collection_id":
            collection_id = uuid_of(request.collection_id, "collection_id")
            assert collection_id is not None
            if await self._repo.collection(collection_id) is None:
                raise NotFound(f"collection {request.collection_id} not found")
            queued, retry_at, now = await self._store.requeue_collection(collection_id, self._collection_cooldown)
            if retry_at is not None:
                raise ResourceExhausted(
                    f"collection {collection_id} was refreshed less than {self._collection_cooldown:g} s ago "
                    f"(one collection refresh per {self._collection_cooldown:g} s); {_when(retry_at, now)}")
        elif target in ("token_id", "token_key"):
            collection_id = await self._refresh_token(request)
            queued = 1
        else:
            raise InvalidArgument("one of token_id, token_key and collection_id is required")
        if self._on_change is not None:
            await self._on_change({collection_id}, set())
        row = await self._repo.stats(collection_id)
        assert row is not None
        return pb.RefreshMetadataResponse(queued=queued, stats=views.stats(row))

    async def _refresh_token(self, request: pb.RefreshMetadataRequest) -> UUID:
        if request.WhichOneof("target") == "token_id":
            token_id = uuid_of(request.token_id, "token_id")
            assert token_id is not None
            row = await self._store.token(token_id)
            label = request.token_id
        else:
            chain, contract = contract_of(request.token_key.contract, "token_key.contract")
            number = request.token_key.token_number
            if not _UINT.match(number):
                raise InvalidArgument("token_key.token_number must be a base-10 uint256")
            row = await self._store.token_by_key(chain, contract, number)
            label = f"{chain}/{contract}/{number}"
        if row is None:
            raise NotFound(f"token {label} not found")
        now, fetched = row["now"], row["metadata_fetched_at"]
        if fetched is not None and (now - fetched).total_seconds() < self._token_cooldown:
            since = int((now - fetched).total_seconds())
            retry_at = fetched + timedelta(seconds=self._token_cooldown)
            raise ResourceExhausted(f"token {label} was fetched {since} s ago (one refresh per "
                                    f"{self._token_cooldown:g} s); {_when(retry_at, now)}")
        due = row["metadata_next_attempt_at"]
        already_due = row["metadata_status"] == "pending" and (due is None or due <= now)
        if not already_due:
            await self._store.requeue_token(row["id"], row["collection_id"])
        collection: UUID = row["collection_id"]
        return collection


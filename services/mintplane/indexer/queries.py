"""Read side of the indexer API: status, checkpoints, balances and transfers as protobuf messages.

Kept apart from the gRPC servicer so the rules (validation, paging, what a status says without a live
lane) are plain functions over the repository and the status board.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from mintplane.api.common.v1 import common_pb2
from mintplane.api.indexer.v1 import indexer_pb2 as pb
from mintplane.common.errors import InvalidArgument, NotFound
from mintplane.common.pagination import decode_key_token, encode_key_token, page_size
from mintplane.common.timestamps import timestamp
from mintplane.indexer.repository import Checkpoint, IndexerRepository
from mintplane.indexer.status import LaneStatus, State, StatusBoard

_CAIP2 = re.compile(r"^eip155:[1-9][0-9]{0,18}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UINT = re.compile(r"^(0|[1-9][0-9]{0,77})$")
_STATES = {
    State.STARTING: pb.INDEXER_STATE_STARTING,
    State.FOLLOWING: pb.INDEXER_STATE_FOLLOWING,
    State.BACKFILLING: pb.INDEXER_STATE_BACKFILLING,
    State.STALLED: pb.INDEXER_STATE_STALLED,
    State.ENDPOINTS_DOWN: pb.INDEXER_STATE_ENDPOINTS_DOWN,
    State.DISABLED: pb.INDEXER_STATE_DISABLED,
}


def chain_of(ref: common_pb2.ChainRef, field: str = "chain.caip2") -> str:
    if not ref.caip2:
        raise InvalidArgument(f"{field} is required")
    if not _CAIP2.match(ref.caip2):
        raise InvalidArgument(f"{field} must be a CAIP-2 id like eip155:1, got {ref.caip2!r}")
    return ref.caip2


def address_of(value: str, field: str, *, required: bool = False) -> str | None:
    if not value:
        if required:
            raise InvalidArgument(f"{field} is required")
        return None
    if not _ADDRESS.match(value):
        raise InvalidArgument(f"{field} must be a 0x-prefixed 20-byte hex address")
    return value.lower()


def token_id_of(value: str, field: str) -> str | None:
    if not value:
        return None
    if not _UINT.match(value):
        raise InvalidArgument(f"{field} must be a base-10 uint256")
    return value


def status_message(lane: LaneStatus, stall_seconds: float) -> pb.ChainIndexStatus:
    state = lane.state
    if state in (State.BACKFILLING, State.FOLLOWING) and lane.lag_blocks > 0 and (
        lane.seconds_without_progress() > stall_seconds
    ):
        state = State.STALLED
    blocks_per_second, logs_per_second = lane.rates()
    message = pb.ChainIndexStatus(
        chain=common_pb2.ChainRef(caip2=lane.chain), state=_STATES[state], head_block=lane.head_block,
        confirmations=lane.confirmations, last_indexed_block=lane.last_block,
        last_indexed_block_hash=lane.last_block_hash, lag_blocks=lane.lag_blocks,
        blocks_per_second=blocks_per_second, logs_per_second=logs_per_second, reorg_count=lane.reorg_count,
        last_reorg_depth=lane.last_reorg_depth, endpoint_id=lane.endpoint_id, endpoint_url=lane.endpoint_url,
        tracked_contracts=lane.tracked_contracts, outbox_pending=lane.outbox_pending(),
        last_error=lane.last_error or lane.outbox_error(),
    )
    if (at := timestamp(lane.last_reorg_at)) is not None:
        message.last_reorg_at.CopyFrom(at)
    if (updated := timestamp(lane.checkpoint_updated_at)) is not None:
        message.checkpoint_updated_at.CopyFrom(updated)
    return message


def stored_status(checkpoint: Checkpoint, stall_seconds: float) -> pb.ChainIndexStatus:
    """What can be said from the checkpoint alone, when no lane of this process follows the chain."""
    stale = datetime.now(UTC) - checkpoint.updated_at > timedelta(seconds=stall_seconds)
    message = pb.ChainIndexStatus(
        chain=common_pb2.ChainRef(caip2=checkpoint.chain_id),
        state=pb.INDEXER_STATE_STALLED if stale else pb.INDEXER_STATE_UNSPECIFIED,
        last_indexed_block=checkpoint.last_block, last_indexed_block_hash=checkpoint.last_block_hash or "",
        last_error="" if not stale else "no indexer process has advanced this checkpoint recently",
    )
    if (updated := timestamp(checkpoint.updated_at)) is not None:
        message.checkpoint_updated_at.CopyFrom(updated)
    return message


class IndexerQueries:
    def __init__(self, repository: IndexerRepository | None, board: StatusBoard, *, stall_seconds: float) -> None:
        self._repo = repository
        self._board = board
        self._stall = stall_seconds

    def _repository(self) -> IndexerRepository:
        if self._repo is None:
            raise NotFound("this process keeps no indexer database")
        return self._repo

    async def status(self, request: pb.GetStatusRequest) -> pb.GetStatusResponse:
        chain = chain_of(request.chain)
        lane = self._board.for_chain(chain)
        if lane is not None:
            return pb.GetStatusResponse(status=status_message(lane, self._stall))
        checkpoint = await self._repository().load_checkpoint(chain)
        if checkpoint is None:
            raise NotFound(f"chain {chain} is not indexed by this deployment")
        return pb.GetStatusResponse(status=stored_status(checkpoint, self._stall))

    async def checkpoints(self, request: pb.ListCheckpointsRequest) -> pb.ListCheckpointsResponse:
        limit = page_size(request.page.page_size)
        key = decode_key_token(request.page.page_token, ["checkpoints"], 1)
        rows = await self._repository().list_checkpoints(str(key[0]) if key else "", limit + 1)
        page = rows[:limit]
        items = []
        for checkpoint in page:
            item = pb.Checkpoint(chain=common_pb2.ChainRef(caip2=checkpoint.scope),
                                 last_block=checkpoint.last_block,
                                 last_block_hash=checkpoint.last_block_hash or "")
            if (updated := timestamp(checkpoint.updated_at)) is not None:
                item.updated_at.CopyFrom(updated)
            items.append(item)
        token = encode_key_token([page[-1].scope], ["checkpoints"]) if len(rows) > limit else ""
        return pb.ListCheckpointsResponse(checkpoints=items, page=common_pb2.PageResponse(next_page_token=token))

    async def balances(self, request: pb.ListTokenBalancesRequest) -> pb.ListTokenBalancesResponse:
        chain = chain_of(request.chain)
        contract = address_of(request.contract, "contract")
        owner = address_of(request.owner, "owner")
        token_id = token_id_of(request.token_id, "token_id")
        if contract is None and owner is None:
            raise InvalidArgument("at least one of contract and owner must be set")
        if token_id is not None and contract is None:
            raise InvalidArgument("token_id requires contract")
        params = ["balances", chain, contract, token_id, owner]
        limit = page_size(request.page.page_size)
        key = decode_key_token(request.page.page_token, params, 4)
        after: Any = tuple(key) if key else None
        rows = await self._repository().list_balances(chain, contract=contract, token_id=token_id, owner=owner,
                                                      after=after, limit=limit + 1)
        page = rows[:limit]
        items = [
            pb.TokenBalance(chain=common_pb2.ChainRef(caip2=chain), contract=r["contract"], token_id=r["token_id"],
                            owner=r["owner"], quantity=str(int(r["quantity"])))
            for r in page
        ]
        token = ""
        if len(rows) > limit:
            last = page[-1]
            token = encode_key_token([last["contract"], len(last["token_id"]), last["token_id"], last["owner"]], params)
        return pb.ListTokenBalancesResponse(balances=items, page=common_pb2.PageResponse(next_page_token=token))

    async def transfers(self, request: pb.ListTransfersRequest) -> pb.ListTransfersResponse:
        chain = chain_of(request.chain)
        contract = address_of(request.contract, "contract", required=True)
        assert contract is not None
        address = address_of(request.address, "address")
        token_id = token_id_of(request.token_id, "token_id")
        if request.to_block and request.to_block < request.from_block:
            raise InvalidArgument("to_block must not be below from_block")
        params = ["transfers", chain, contract, token_id, address, request.from_block, request.to_block]
        limit = page_size(request.page.page_size)
        key = decode_key_token(request.page.page_token, params, 3)
        before: Any = tuple(int(k) for k in key) if key else None
        rows = await self._repository().list_transfers(
            chain, contract=contract, token_id=token_id, address=address, from_block=request.from_block,
            to_block=request.to_block or None, before=before, limit=limit + 1,
        )
        page = rows[:limit]
        items = []
        for r in page:
            item = pb.Transfer(
                chain=common_pb2.ChainRef(caip2=chain), contract=r["contract"], token_id=r["token_id"],
                from_address=r["from_addr"], to_address=r["to_addr"], quantity=str(int(r["quantity"])),
                tx_hash=r["tx_hash"], block_number=r["block_number"], block_hash=r["block_hash"],
                log_index=r["log_index"],
            )
            if (at := timestamp(r["timestamp"])) is not None:
                item.block_time.CopyFrom(at)
            items.append(item)
        token = ""
        if len(rows) > limit:
            last = page[-1]
            token = encode_key_token([last["block_number"], last["log_index"], last["batch_index"]], params)
        return pb.ListTransfersResponse(transfers=items, page=common_pb2.PageResponse(next_page_token=token))

"""The indexer gRPC API against real PostgreSQL: balances, transfers and checkpoints written by the same
batch transaction the lanes use, read back through a server running in this process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from mintplane.api.common.v1 import common_pb2
from mintplane.api.indexer.v1 import indexer_pb2 as pb
from mintplane.api.indexer.v1 import indexer_pb2_grpc
from mintplane.common.service import Resources
from mintplane.indexer.events import ZERO_ADDRESS, Transfer
from mintplane.indexer.repository import CheckpointConflict, HistoryMissing, IndexerRepository
from mintplane.indexer.server import NEEDS, build_server
from mintplane.indexer.settings import IndexerSettings

pytestmark = pytest.mark.integration


def _address() -> str:
    return "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


def _hash() -> str:
    return "0x" + uuid.uuid4().hex * 2


class Env:
    def __init__(self, stub: indexer_pb2_grpc.IndexerServiceStub, repo: IndexerRepository, caip2: str) -> None:
        self.stub, self.repo, self.caip2 = stub, repo, caip2
        self.ref = common_pb2.ChainRef(caip2=caip2)


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    settings = IndexerSettings(grpc_port=0)
    resources = await Resources.open(settings, NEEDS, name="indexer-test")
    built = await build_server(settings, resources)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    caip2 = f"eip155:{3_000_000 + uuid.uuid4().int % 90_000_000}"
    try:
        yield Env(indexer_pb2_grpc.IndexerServiceStub(channel), IndexerRepository(resources.pg), caip2)
    finally:
        for table in ("ownership_transfers", "token_balances"):
            await resources.pg.execute(f"DELETE FROM indexer.{table} WHERE chain_id = $1", caip2)  # noqa: S608
        await resources.pg.execute("DELETE FROM indexer.indexer_checkpoints WHERE chain_id = $1", caip2)
        await channel.close(None)
        await built.server.stop(None)
        await resources.close()


def _transfer(caip2: str, contract: str, token: int, sender: str, recipient: str, block: int, block_hash: str,
              log: int, quantity: int = 1, standard: Any = "ERC721") -> Transfer:
    return Transfer(chain_id=caip2, contract=contract, standard=standard, token_id=token, from_addr=sender,
                    to_addr=recipient, quantity=quantity, block_number=block, block_hash=block_hash, log_index=log,
                    batch_index=0, tx_hash=_hash(), timestamp=1_767_225_600 + block * 12, event_type="Transfer")


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    code: grpc.StatusCode = error.value.code()
    return code


async def test_batches_balances_transfers_and_checkpoints_through_the_api(env: Env) -> None:
    contract, alice, bob = _address(), _address(), _address()
    await env.repo.ensure_checkpoint(env.caip2, last_block=9, last_block_hash=None, first_block=10,
                                     target_block=None, contracts=None)
    h10, h11 = _hash(), _hash()
    mints = [_transfer(env.caip2, contract, n, ZERO_ADDRESS, alice, 10, h10, n) for n in range(1, 31)]
    assert await env.repo.apply_batch(env.caip2, expected_last=9, transfers=mints, last_block=10, last_hash=h10) == 30
    moves = [_transfer(env.caip2, contract, n, alice, bob, 11, h11, n) for n in range(1, 6)]
    assert await env.repo.apply_batch(env.caip2, expected_last=10, transfers=moves, last_block=11, last_hash=h11) == 5
    with pytest.raises(CheckpointConflict):  # a second writer of the same scope is refused
        await env.repo.apply_batch(env.caip2, expected_last=10, transfers=moves, last_block=11, last_hash=h11)
    with pytest.raises(HistoryMissing):  # bob never received token 30: its history is missing
        await env.repo.apply_batch(env.caip2, expected_last=11, last_block=12, last_hash=_hash(),
                                   transfers=[_transfer(env.caip2, contract, 30, bob, alice, 12, _hash(), 0)])

    balances: list[pb.TokenBalance] = []
    token = ""
    while True:
        page = await env.stub.ListTokenBalances(pb.ListTokenBalancesRequest(
            chain=env.ref, contract=contract, page=common_pb2.PageRequest(page_size=7, page_token=token)))
        balances += page.balances
        token = page.page.next_page_token
        if not token:
            break
    assert [(b.token_id, b.owner) for b in balances] == [
        (str(n), bob if n <= 5 else alice) for n in range(1, 31)]  # numeric token order, 0 balances gone
    owned = await env.stub.ListTokenBalances(pb.ListTokenBalancesRequest(chain=env.ref, owner=bob.upper()[2:].join(
        ["0x", ""])))
    assert [b.token_id for b in owned.balances] == ["1", "2", "3", "4", "5"]

    history = await env.stub.ListTransfers(pb.ListTransfersRequest(chain=env.ref, contract=contract, token_id="3"))
    assert [(t.from_address, t.to_address, t.block_number) for t in history.transfers] == [
        (alice, bob, 11), (ZERO_ADDRESS, alice, 10)]
    assert history.transfers[0].block_time.seconds == 1_767_225_600 + 11 * 12
    newest = await env.stub.ListTransfers(pb.ListTransfersRequest(
        chain=env.ref, contract=contract, page=common_pb2.PageRequest(page_size=4)))
    assert [t.block_number for t in newest.transfers] == [11, 11, 11, 11] and newest.page.next_page_token

    status = await env.stub.GetStatus(pb.GetStatusRequest(chain=env.ref))
    assert status.status.last_indexed_block == 11 and status.status.last_indexed_block_hash == h11
    checkpoints = await env.stub.ListCheckpoints(pb.ListCheckpointsRequest(page=common_pb2.PageRequest(page_size=100)))
    assert any(c.chain.caip2 == env.caip2 and c.last_block == 11 for c in checkpoints.checkpoints) or (
        checkpoints.page.next_page_token)

    orphans, epoch = await env.repo.rollback(env.caip2, expected_last=11, ancestor=10, ancestor_hash=h10,
                                             contracts=None)
    assert len(orphans) == 5 and epoch == 1
    after = await env.stub.ListTokenBalances(pb.ListTokenBalancesRequest(chain=env.ref, owner=alice,
                                                                          page=common_pb2.PageRequest(page_size=100)))
    assert len(after.balances) == 30  # the orphaned moves are undone exactly
    checkpoint = await env.repo.load_checkpoint(env.caip2)
    assert checkpoint is not None and checkpoint.last_block == 10 and len(checkpoint.pending_retractions) == 5
    await env.repo.clear_pending_retractions(env.caip2, epoch)
    checkpoint = await env.repo.load_checkpoint(env.caip2)
    assert checkpoint is not None and checkpoint.pending_retractions == [] and checkpoint.reorg_epoch == 1

    codes = [
        await _code(env.stub.GetStatus(pb.GetStatusRequest(chain=common_pb2.ChainRef(caip2="eip155:1234567891")))),
        await _code(env.stub.GetStatus(pb.GetStatusRequest())),
        await _code(env.stub.ListTokenBalances(pb.ListTokenBalancesRequest(chain=env.ref))),
        await _code(env.stub.ListTokenBalances(pb.ListTokenBalancesRequest(chain=env.ref, owner=alice, token_id="1"))),
        await _code(env.stub.ListTransfers(pb.ListTransfersRequest(chain=env.ref))),
        await _code(env.stub.ListTransfers(pb.ListTransfersRequest(chain=env.ref, contract=contract, from_block=9,
                                                                   to_block=3))),
    ]
    assert codes == [grpc.StatusCode.NOT_FOUND] + [grpc.StatusCode.INVALID_ARGUMENT] * 5

"""Runs a lane (a chain's follower, or one backfill) as a process: clients, publisher, status server.

A follower also serves the indexer gRPC API on its port, so GetStatus reports its live lane and the
Deployment's gRPC probes work. A backfill runs to completion: exit 0 once its range is indexed and every
message is confirmed by the broker, 1 when it cannot go on (unknown chain or contract, another writer).
SIGTERM/SIGINT stop either gracefully: in-flight work is simply redone, idempotently, by the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import aiohttp
import grpc

from mintplane.common import amqp
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.log import get_logger
from mintplane.common.metrics import serve_metrics
from mintplane.common.service import Resources
from mintplane.indexer import metrics
from mintplane.indexer.documents import EventDocuments
from mintplane.indexer.endpoints import EndpointPool, PoolEvents
from mintplane.indexer.lane import Lane, LaneFailed, LaneSpec, Tuning
from mintplane.indexer.publisher import OutboxPublisher
from mintplane.indexer.registry import GrpcRegistryClient, RegistryClient
from mintplane.indexer.repository import IndexerRepository
from mintplane.indexer.server import NEEDS, build_server
from mintplane.indexer.settings import IndexerSettings
from mintplane.indexer.status import LaneStatus, StatusBoard

log = get_logger(__name__)


def tuning_from(settings: IndexerSettings) -> Tuning:
    return Tuning(
        initial_range=settings.indexer_batch_size, max_range=settings.indexer_max_batch_size,
        target_logs=settings.indexer_target_logs, poll_interval=settings.indexer_poll_interval_seconds,
        verify_window=settings.indexer_verify_window, max_reorg_depth=settings.indexer_max_reorg_depth,
        max_outbox_pending=settings.indexer_max_outbox_pending,
        registry_refresh=settings.indexer_registry_refresh_seconds, stall_seconds=settings.indexer_stall_seconds,
    )


async def run_lane(
    settings: IndexerSettings, spec: LaneSpec, *, serve: bool, registry: RegistryClient | None = None,
) -> int:
    """Run one lane until it completes (backfill) or a signal arrives. Returns the process exit code."""
    serve_metrics(settings.metrics_port)
    resources = await Resources.open(settings, NEEDS, name="indexer")
    connection = await amqp.connect(settings, name=f"mintplane-indexer {spec.scope}")
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16, ttl_dns_cache=300))
    channel = grpc.aio.insecure_channel(settings.indexer_chain_registry_target)
    server: BuiltServer | None = None
    try:
        documents = EventDocuments(resources.mongo, settings.indexer_mongo_database)
        await documents.ensure_indexes()
        publisher = OutboxPublisher(
            documents, amqp.ConfirmingPublisher(connection, settings.indexer_events_exchange), spec.scope,
            batch_size=settings.indexer_publish_batch,
        )
        pool = EndpointPool(
            session, timeout=settings.indexer_rpc_timeout_seconds,
            base_cooldown=settings.indexer_endpoint_cooldown_seconds,
            max_cooldown=settings.indexer_endpoint_max_cooldown_seconds,
            events=PoolEvents(on_failure=lambda _id, url, _error: metrics.RPC_ERRORS.labels(spec.chain, url).inc()),
        )
        board = StatusBoard()
        status = board.add(LaneStatus(chain=spec.chain, scope=spec.scope, confirmations=spec.confirmations))
        lane = Lane(spec, tuning_from(settings), repository=IndexerRepository(resources.pg), documents=documents,
                    publisher=publisher, pool=pool, registry=registry or GrpcRegistryClient(channel), status=status)
        if serve:
            server = await build_server(settings, resources, board=board)
            await server.server.start()
            await server.set_serving(True)
            log.info("serving", service="indexer", port=server.port, scope=spec.scope)
        return await _until_done_or_signal(lane, publisher)
    finally:
        if server is not None:
            await server.set_serving(False)
            await server.server.stop(settings.shutdown_grace_seconds)
        await channel.close(None)
        await session.close()
        with contextlib.suppress(Exception):
            await connection.close()
        await resources.close()
        log.info("stopped", service="indexer", scope=spec.scope)


async def _until_done_or_signal(lane: Lane, publisher: OutboxPublisher) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    lane_task = asyncio.create_task(lane.run(), name=f"lane {lane.spec.scope}")
    publisher_task = asyncio.create_task(publisher.run(), name=f"publisher {lane.spec.scope}")
    stop_task = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({lane_task, publisher_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if stop_task in done:
            log.info("shutting down", scope=lane.spec.scope)
            return 0
        finished = lane_task if lane_task in done else publisher_task
        try:
            finished.result()
        except LaneFailed as exc:
            log.error("lane failed", scope=lane.spec.scope, error=str(exc))
            return 1
        except Exception:
            log.exception("indexer task crashed", scope=lane.spec.scope, task=finished.get_name())
            return 1
        return 0 if finished is lane_task else 1
    finally:
        for task in (lane_task, publisher_task, stop_task):
            task.cancel()
        for task in (lane_task, publisher_task, stop_task):
            with contextlib.suppress(BaseException):
                await task
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

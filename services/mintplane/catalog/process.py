"""The catalog process: the gRPC service with its event consumer and metadata worker beside it, or the
consumer alone.

``python -m mintplane.catalog`` serves gRPC, consumes indexer events (MINTPLANE_CATALOG_CONSUME=false
turns the consumer off) and fetches token metadata (MINTPLANE_METADATA_WORKER=false turns that off);
``python -m mintplane.catalog consume`` only consumes. Both stop gracefully on SIGTERM/SIGINT: an unacked
batch is simply redelivered, an unsaved metadata batch's claims expire and are fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import grpc
from aio_pika.abc import AbstractRobustConnection

from mintplane.catalog.changes import ChangePublisher
from mintplane.catalog.consumer import TransferConsumer
from mintplane.catalog.metadata.worker import MetadataWorker, make_worker
from mintplane.catalog.rarity import RarityWorker
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.server import NEEDS, build_server
from mintplane.catalog.settings import CatalogSettings
from mintplane.common import amqp
from mintplane.common.grpc_server import BuiltServer, run
from mintplane.common.log import configure_logging, get_logger
from mintplane.common.metrics import serve_metrics
from mintplane.common.registry_client import GrpcRegistryClient
from mintplane.common.service import Resources

log = get_logger(__name__)


def make_change_publisher(settings: CatalogSettings, resources: Resources) -> ChangePublisher:
    """The one publisher of the process's change events (catalog/changes.py), closed on shutdown."""

    async def connect() -> AbstractRobustConnection:
        return await amqp.connect(settings, name="mintplane-catalog-changes")

    publisher = ChangePublisher(connect, exchange=settings.catalog_events_exchange)
    resources.add_closer(publisher.close)
    return publisher


def make_consumer(
    settings: CatalogSettings, resources: Resources, changes: ChangePublisher | None = None,
) -> TransferConsumer:
    async def connect() -> AbstractRobustConnection:
        return await amqp.connect(settings, name="mintplane-catalog")

    return TransferConsumer(
        CatalogRepository(resources.pg), connect, queue=settings.catalog_queue,
        routing_keys=settings.catalog_routing_keys, prefetch=settings.catalog_prefetch,
        batch_size=settings.catalog_batch_size, batch_wait=settings.catalog_batch_wait_seconds,
        exchange=settings.catalog_events_exchange, on_change=changes.listener("ingest") if changes else None,
    )


def make_metadata_worker(
    settings: CatalogSettings, resources: Resources, changes: ChangePublisher | None = None,
) -> MetadataWorker:
    """The metadata worker, reading endpoints from the chain registry over a channel closed on shutdown."""
    channel = grpc.aio.insecure_channel(settings.metadata_chain_registry_target)

    async def close_channel() -> None:
        await channel.close(None)

    resources.add_closer(close_channel)
    return make_worker(settings, resources.pg, GrpcRegistryClient(channel),
                       on_change=changes.listener("metadata") if changes else None)


def make_rarity_worker(
    settings: CatalogSettings, resources: Resources, changes: ChangePublisher | None = None,
) -> RarityWorker:
    """The rarity worker: re-scores collections whose traits changed, and says which tokens moved."""
    return RarityWorker(resources.pg, poll_seconds=settings.rarity_poll_seconds,
                        min_interval_seconds=settings.rarity_min_interval_seconds, batch=settings.rarity_batch,
                        sweep_seconds=settings.rarity_sweep_seconds,
                        on_change=changes.listener("rarity") if changes else None)


async def _stop(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def serve() -> None:
    settings = CatalogSettings()
    configure_logging(settings.log_level, json=settings.log_json, service="catalog")

    async def main() -> None:
        resources = await Resources.open(settings, NEEDS, name="catalog")
        changes = make_change_publisher(settings, resources)
        consuming: asyncio.Task[None] | None = None
        fetching: asyncio.Task[None] | None = None
        ranking: asyncio.Task[None] | None = None

        async def build() -> BuiltServer:
            nonlocal consuming, fetching, ranking
            built = await build_server(settings, resources, on_change=changes.listener("refresh", background=True))
            if settings.catalog_consume:
                consuming = asyncio.create_task(make_consumer(settings, resources, changes).run(),
                                                name="catalog consumer")
            if settings.metadata_worker:
                fetching = asyncio.create_task(make_metadata_worker(settings, resources, changes).run(),
                                               name="catalog metadata worker")
            if settings.rarity_worker:
                ranking = asyncio.create_task(make_rarity_worker(settings, resources, changes).run(),
                                              name="catalog rarity worker")
            return built

        async def shutdown() -> None:
            await _stop(ranking)  # an unfinished recompute rolls back; the collection stays dirty
            await _stop(fetching)  # an unsaved batch's claims simply expire and are fetched again
            await _stop(consuming)
            await resources.close()

        await run("catalog", settings, build, on_shutdown=shutdown)

    asyncio.run(main())


def consume_only() -> None:
    settings = CatalogSettings()
    configure_logging(settings.log_level, json=settings.log_json, service="catalog-consumer")

    async def main() -> None:
        serve_metrics(settings.metrics_port)
        resources = await Resources.open(settings, NEEDS, name="catalog-consumer")
        changes = make_change_publisher(settings, resources)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        consuming = asyncio.create_task(make_consumer(settings, resources, changes).run(), name="catalog consumer")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({consuming, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if consuming.done() and not consuming.cancelled() and consuming.exception() is not None:
                log.error("consumer crashed", error=str(consuming.exception()))
        finally:
            await _stop(consuming)
            await _stop(stopping)
            await resources.close()
            log.info("stopped", service="catalog-consumer")

    asyncio.run(main())

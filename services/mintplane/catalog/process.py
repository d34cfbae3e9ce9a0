"""The catalog process: the gRPC service with its event consumer beside it, or the consumer alone.

``python -m mintplane.catalog`` serves gRPC and consumes indexer events (MINTPLANE_CATALOG_CONSUME=false
turns the consumer off); ``python -m mintplane.catalog consume`` only consumes. Both stop gracefully on
SIGTERM/SIGINT: an unacked batch is simply redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from mintplane.catalog.consumer import TransferConsumer
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.server import NEEDS, build_server
from mintplane.catalog.settings import CatalogSettings
from mintplane.common import amqp
from mintplane.common.grpc_server import BuiltServer, run
from mintplane.common.log import configure_logging, get_logger
from mintplane.common.metrics import serve_metrics
from mintplane.common.service import Resources

log = get_logger(__name__)


def make_consumer(settings: CatalogSettings, resources: Resources) -> TransferConsumer:
    async def connect() -> AbstractRobustConnection:
        return await amqp.connect(settings, name="mintplane-catalog")

    return TransferConsumer(
        CatalogRepository(resources.pg), connect, queue=settings.catalog_queue,
        routing_keys=settings.catalog_routing_keys, prefetch=settings.catalog_prefetch,
        batch_size=settings.catalog_batch_size, batch_wait=settings.catalog_batch_wait_seconds,
        exchange=settings.catalog_events_exchange,
    )


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
        consuming: asyncio.Task[None] | None = None

        async def build() -> BuiltServer:
            nonlocal consuming
            built = await build_server(settings, resources)
            if settings.catalog_consume:
                consuming = asyncio.create_task(make_consumer(settings, resources).run(), name="catalog consumer")
            return built

        async def shutdown() -> None:
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
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        consuming = asyncio.create_task(make_consumer(settings, resources).run(), name="catalog consumer")
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

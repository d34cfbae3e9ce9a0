"""What every service process shares around its servicer: the clients it opens at start (only those it
declares it needs), closing them on shutdown, and the `main` its `__main__` calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mintplane.common import mongo, postgres, redis_client
from mintplane.common.grpc_server import BuiltServer, run
from mintplane.common.log import configure_logging
from mintplane.common.settings import ServiceSettings


@dataclass(frozen=True)
class Needs:
    postgres: bool = False
    redis: bool = False
    mongo: bool = False


@dataclass
class Resources:
    """Open clients of one process. A client the service did not declare stays None."""

    pg: Any = None
    redis: Any = None
    mongo: Any = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: ServiceSettings, needs: Needs, *, name: str) -> Resources:
        resources = cls()
        if needs.postgres:
            resources.pg = await postgres.create_pool(settings, application_name=f"mintplane-{name}")
            resources._closers.append(resources.pg.close)
        if needs.redis:
            resources.redis = redis_client.create_client(settings)
            await resources.redis.ping()
            resources._closers.append(resources.redis.aclose)
        if needs.mongo:
            resources.mongo = mongo.create_client(settings, app_name=f"mintplane-{name}")
            await resources.mongo.admin.command("ping")

            async def close_mongo() -> None:
                resources.mongo.close()

            resources._closers.append(close_mongo)
        return resources

    def add_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Register something the service opened itself (gRPC channels to peers, web3 sessions) to be
        closed on shutdown, after the servers stop and before the shared clients close."""
        self._closers.append(closer)

    async def close(self) -> None:
        for closer in reversed(self._closers):
            await closer()
        self._closers.clear()


BuildServer = Callable[[ServiceSettings, Resources], Awaitable[BuiltServer]]


def main(name: str, settings_type: type[ServiceSettings], needs: Needs, build_server: BuildServer) -> None:
    """Entry point of `python -m mintplane.<service>`: configure logging, open clients, serve, clean up."""
    settings = settings_type()
    configure_logging(settings.log_level, json=settings.log_json, service=name)

    async def serve() -> None:
        resources = await Resources.open(settings, needs, name=name)

        async def build() -> BuiltServer:
            return await build_server(settings, resources)

        await run(name, settings, build, on_shutdown=resources.close)

    asyncio.run(serve())

"""`python -m mintplane.gateway` serves GraphQL on 127.0.0.1:8081 (MINTPLANE_GATEWAY_HOST/PORT override)."""

import contextlib
import signal
from collections.abc import Iterator

import uvicorn
from uvicorn.supervisors import Multiprocess

from mintplane.common.log import configure_logging
from mintplane.gateway.settings import GatewaySettings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Drain on SIGTERM/SIGINT and exit 0, like the gRPC services (uvicorn re-raises the signal)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.handle_exit)
        yield


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, json=settings.log_json, service="gateway")
    config = uvicorn.Config(
        "mintplane.gateway.app:app_from_env",
        factory=True,  # each worker process configures logging and builds its own app and channels
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,  # keep the structlog JSON handlers configured above
        access_log=settings.access_log,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        server_header=False,
    )
    if settings.workers > 1:
        sock = config.bind_socket()
        Multiprocess(config, sockets=[sock]).run()  # the supervisor exits 0 after draining its workers
    else:
        _Server(config).run()


main()

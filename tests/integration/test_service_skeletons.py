"""Every service starts as its own process (`python -m mintplane.<svc>`), opens the clients it declares,
serves grpc.health.v1 for its proto service, and stops gracefully on SIGTERM. The dev stack's copies on the
seed ports answer too."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import socket
import sys

import pytest

from mintplane.common.settings import SERVICE_PORTS
from mintplane.devstack import probes

pytestmark = pytest.mark.integration


def _full_service_name(service: str) -> str:
    server = importlib.import_module(f"mintplane.{service}.server")
    name: str = server.SERVICE_NAME
    return name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _start_check_stop(service: str) -> str:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"mintplane.{service}",
        env={**os.environ, "MINTPLANE_GRPC_PORT": str(port), "MINTPLANE_LOG_JSON": "true"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        status = ""
        for _ in range(300):  # up to a minute: a loaded 2-core machine starts eight interpreters at once
            try:
                status = await probes.grpc_health(f"127.0.0.1:{port}", _full_service_name(service))
                break
            except Exception:
                if proc.returncode is not None:
                    break
                await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
    log = output.decode(errors="replace")
    assert status == "SERVING", f"{service} never served; output:\n{log[-2000:]}"
    assert proc.returncode == 0, f"{service} exited {proc.returncode} on SIGTERM:\n{log[-2000:]}"
    assert '"event": "stopped"' in log
    return service


async def test_every_service_starts_serves_health_and_stops_gracefully() -> None:
    done = await asyncio.gather(*(_start_check_stop(service) for service in SERVICE_PORTS))
    assert sorted(done) == sorted(SERVICE_PORTS)


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
async def test_dev_stack_service_answers_on_seed_port(service: str) -> None:
    status = await probes.grpc_health(f"127.0.0.1:{SERVICE_PORTS[service]}", _full_service_name(service))
    assert status == "SERVING"

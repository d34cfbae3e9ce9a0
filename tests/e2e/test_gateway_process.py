"""`python -m mintplane.gateway` as the dev stack and a container run it: serves, logs JSON, stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import httpx
import pytest

from mintplane.gateway.localstack import free_port

pytestmark = pytest.mark.e2e


async def wait_healthy(url: str, process: asyncio.subprocess.Process) -> httpx.Response:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(150):
            if process.returncode is not None:
                break
            try:
                return await client.get(url)
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
    raise AssertionError("gateway never answered")


@pytest.mark.parametrize("workers", [1, 2])
async def test_gateway_serves_and_stops_gracefully_on_sigterm(workers: int) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mintplane.gateway",
        env={**os.environ, "MINTPLANE_GATEWAY_PORT": str(port), "MINTPLANE_GATEWAY_WORKERS": str(workers),
             "MINTPLANE_LOG_JSON": "true"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        health = await wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert "server" not in health.headers  # no version banner
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = output.decode().splitlines()
    assert process.returncode == 0, "\n".join(lines[-20:])
    events = [json.loads(line)["event"] for line in lines if line.startswith("{")]
    assert "Application shutdown complete." in events
    assert all(line.startswith("{") for line in lines if line.strip()), "every log line is JSON"

"""Runs the gateway with its own auth, user and wallet processes on free loopback ports, over the dev
stack's PostgreSQL and Redis: what the end-to-end tests and the sign-in benchmark drive over real HTTP.

Each piece is started from the source tree exactly as a deployment starts it (`python -m mintplane.<x>`),
so the tests exercise the current code rather than whatever the dev stack's copies were started with.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _Process:
    name: str
    process: asyncio.subprocess.Process
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class LocalStack:
    """Addresses of a running gateway and its upstreams."""

    url: str
    ports: dict[str, int]
    processes: list[_Process] = field(default_factory=list)

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.processes)


async def _spawn(name: str, module: str, env: Mapping[str, str], folder: Path) -> _Process:
    log = folder / f"{name}.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env={**os.environ, **env}, stdout=sink, stderr=asyncio.subprocess.STDOUT,
        )
    return _Process(name=name, process=process, log=log)


async def _stop(processes: list[_Process]) -> None:
    for item in reversed(processes):
        if item.process.returncode is None:
            item.process.send_signal(signal.SIGTERM)
    for item in processes:
        try:
            await asyncio.wait_for(item.process.wait(), 15)
        except TimeoutError:
            item.process.kill()
            await item.process.wait()


async def _wait_ready(stack: LocalStack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            for item in stack.processes:
                if item.process.returncode is not None:
                    raise RuntimeError(f"{item.name} exited with {item.process.returncode}:\n{stack.logs()}")
            try:
                if (await client.get(f"{stack.url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not ready after {timeout:.0f}s:\n{stack.logs()}")
            await asyncio.sleep(0.2)


@asynccontextmanager
async def local_stack(
    *, extra_env: Mapping[str, Mapping[str, str]] | None = None, ready_timeout: float = 60.0,
) -> AsyncIterator[LocalStack]:
    """Start user, wallet, auth and the gateway; stop them (SIGTERM) on exit.

    `extra_env` adds variables per piece ("user", "wallet", "auth", "gateway"), e.g. auth rate limits.
    """
    extra = extra_env or {}
    ports = {name: free_port() for name in ("user", "wallet", "auth", "gateway")}
    common = {"MINTPLANE_LOG_JSON": "true", "MINTPLANE_METRICS_PORT": "0"}
    envs: dict[str, dict[str, str]] = {
        "user": {"MINTPLANE_GRPC_PORT": str(ports["user"])},
        "wallet": {"MINTPLANE_GRPC_PORT": str(ports["wallet"])},
        "auth": {
            "MINTPLANE_GRPC_PORT": str(ports["auth"]),
            "MINTPLANE_AUTH_USER_TARGET": f"127.0.0.1:{ports['user']}",
            "MINTPLANE_AUTH_WALLET_TARGET": f"127.0.0.1:{ports['wallet']}",
        },
        "gateway": {
            "MINTPLANE_GATEWAY_PORT": str(ports["gateway"]),
            "MINTPLANE_GATEWAY_AUTH_ADDR": f"127.0.0.1:{ports['auth']}",
            "MINTPLANE_GATEWAY_USER_ADDR": f"127.0.0.1:{ports['user']}",
            "MINTPLANE_GATEWAY_WALLET_ADDR": f"127.0.0.1:{ports['wallet']}",
        },
    }
    stack = LocalStack(url=f"http://127.0.0.1:{ports['gateway']}", ports=ports)
    with tempfile.TemporaryDirectory(prefix="mintplane-gateway-") as tmp:
        try:
            for name in ("user", "wallet", "auth", "gateway"):
                env = {**common, **envs[name], **extra.get(name, {})}
                stack.processes.append(await _spawn(name, f"mintplane.{name}", env, Path(tmp)))
            await _wait_ready(stack, ready_timeout)
            yield stack
        finally:
            await _stop(stack.processes)


# Parameters: $1 user ids, then $2 lowercase addresses when the statement names them.
_BY_USER = (
    "DELETE FROM auth.login_events WHERE user_id = ANY($1::uuid[]) OR lower(account_id) = ANY($2::text[])",
    "DELETE FROM auth.sessions WHERE user_id = ANY($1::uuid[])",
    "DELETE FROM wallet.wallet_activity WHERE user_id = ANY($1::uuid[])",
    "DELETE FROM wallet.wallet_verifications WHERE user_id = ANY($1::uuid[]) OR lower(address) = ANY($2::text[])",
    "DELETE FROM wallet.wallet_links WHERE user_id = ANY($1::uuid[])",
    "DELETE FROM users.users WHERE user_id = ANY($1::uuid[])",  # profiles, preferences, stats, follows cascade
)
_BY_ADDRESS = "DELETE FROM auth.auth_nonces WHERE lower(account_id) = ANY($1::text[])"


async def delete_identities(user_ids: list[str], addresses: list[str]) -> None:
    """Remove what test sign-ins created, across the three services' schemas, in one transaction.

    No API deletes users for good (accounts are soft-deleted), so test harnesses clean up in SQL; the tables
    and columns are the seed's (the schema of record)."""
    import asyncpg

    from mintplane.common.settings import InfraSettings

    if not user_ids and not addresses:
        return
    connection = await asyncpg.connect(InfraSettings().pg_dsn.get_secret_value())
    try:
        async with connection.transaction():
            lowered = [address.lower() for address in addresses]
            for statement in _BY_USER:
                await connection.execute(statement, *((user_ids, lowered) if "$2" in statement else (user_ids,)))
            await connection.execute(_BY_ADDRESS, lowered)
    finally:
        await connection.close()

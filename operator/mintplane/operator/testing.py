"""Helpers the operator's e2e tests and benchmarks share: run the operator as a real process (so it can
be SIGKILLed and restarted), run the chain-registry in-process, a second anvil, and async Kubernetes
helpers with bounded waits. Nothing here is imported by the operator itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mintplane.operator.kinds import GROUP, VERSION
from mintplane.operator.kube import load_api_client

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def eventually(probe: Callable[[], Awaitable[T]], *, timeout: float, what: str,
                     interval: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last value: {last!r}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def registry_server() -> AsyncIterator[str]:
    """The real chain-registry service on an ephemeral port, in this event loop; yields its target."""
    from mintplane.chain_registry.server import NEEDS, build_server
    from mintplane.common.service import Resources
    from mintplane.common.settings import ServiceSettings

    settings = ServiceSettings(grpc_port=0)
    resources = await Resources.open(settings, NEEDS, name="chain_registry-test")
    built = await build_server(settings, resources)
    await built.server.start()
    try:
        yield f"127.0.0.1:{built.port}"
    finally:
        await built.server.stop(0)
        await resources.close()


def ensure_crds(kubectl: Path, kubeconfig: Path, crd_dir: Path) -> None:
    """Apply the repository's CRDs (server-side, idempotent) so tests run against the current schemas."""
    crds = sorted(crd_dir.glob("*.yaml"))
    if not crds:
        raise FileNotFoundError(f"no CRDs in {crd_dir}")
    files = [arg for crd in crds for arg in ("-f", str(crd))]
    subprocess.run([str(kubectl), "--kubeconfig", str(kubeconfig), "apply", "--server-side", "--force-conflicts",
                    "--field-manager", "mintplane-operator-tests", *files], check=True, capture_output=True)


class OperatorProcess:
    """``python -m mintplane.operator`` as a subprocess with its own settings and log file."""

    def __init__(self, *, namespaces: list[str], registry_target: str, log_path: Path, kubeconfig: Path,
                 catalog_target: str | None = None, indexer_target: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.health_port = free_port()
        self.log_path = log_path
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "MINTPLANE_OPERATOR_LOG_JSON": "true",
            "MINTPLANE_OPERATOR_REGISTRY_TARGET": registry_target,
            # Nothing listens there: the catalog and indexer count as unavailable, deterministically.
            "MINTPLANE_OPERATOR_CATALOG_TARGET": catalog_target or f"127.0.0.1:{free_port()}",
            "MINTPLANE_OPERATOR_INDEXER_TARGET": indexer_target or f"127.0.0.1:{free_port()}",
            "MINTPLANE_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{self.health_port}/healthz",
            "MINTPLANE_OPERATOR_NAMESPACES": ",".join(namespaces),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mintplane.operator"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()

    async def wait_live(self, timeout: float = 30.0) -> None:
        url = f"http://127.0.0.1:{self.health_port}/healthz"

        async def live() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"operator exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with await asyncio.to_thread(urllib.request.urlopen, url, timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        await eventually(live, timeout=timeout, what="the operator's liveness endpoint")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finalizer work, exactly like a crashed pod."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_kib(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class Anvil:
    """A second local chain (e.g. with a wrong chain id); stopped with SIGINT so it cleans its state."""

    def __init__(self, binary: Path, *, port: int, chain_id: int) -> None:
        self.binary, self.port, self.chain_id = binary, port, chain_id
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: ASYNC220
            [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(self.chain_id),
             "--prune-history", "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        async def listening() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            return True

        await eventually(listening, timeout=20, what=f"anvil on port {self.port}")

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self.process.wait, 15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


class Cluster:
    """Async wrappers over the Kubernetes client for tests (each call runs in a worker thread)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api = load_api_client(str(kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    @staticmethod
    async def _call(fn: Callable[[], T], *, missing_ok: bool = False) -> T | None:
        try:
            return await asyncio.to_thread(fn)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    async def create_namespace(self, name: str) -> None:
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"mintplane.io/test": "operator"}))
        await self._call(lambda: self.core.create_namespace(body))

    async def namespace_exists(self, name: str) -> bool:
        return await self._call(lambda: self.core.read_namespace(name), missing_ok=True) is not None

    async def delete_namespace(self, name: str) -> None:
        await self._call(lambda: self.core.delete_namespace(name), missing_ok=True)

    async def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", **body}
        body.setdefault("metadata", {})["namespace"] = namespace
        created = await self._call(
            lambda: self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body))
        return cast(dict[str, Any], created)

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = await self._call(
            lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name), missing_ok=True)
        return cast(dict[str, Any] | None, found)

    async def patch(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        await self._call(lambda: self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, body, _content_type="application/merge-patch+json"))

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        await self._call(lambda: self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name),
                         missing_ok=True)

    async def status(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        found = await self.get(plural, namespace, name)
        return dict((found or {}).get("status") or {})

    async def condition(self, plural: str, namespace: str, name: str, type_: str) -> dict[str, Any]:
        conditions = (await self.status(plural, namespace, name)).get("conditions") or []
        return next((dict(c) for c in conditions if c.get("type") == type_), {})

    async def deployment(self, namespace: str, name: str) -> Any:
        return await self._call(lambda: self.apps.read_namespaced_deployment(name, namespace), missing_ok=True)

    async def job(self, namespace: str, name: str) -> Any:
        return await self._call(lambda: self.batch.read_namespaced_job(name, namespace), missing_ok=True)

    async def patch_job_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self._call(lambda: self.batch.patch_namespaced_job_status(
            name, namespace, {"status": status}, _content_type="application/merge-patch+json"))

    async def create_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        body = client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data, type="Opaque")
        await self._call(lambda: self.core.create_namespaced_secret(namespace, body))

    async def event_messages(self, namespace: str) -> list[str]:
        events = await self._call(lambda: self.core.list_namespaced_event(namespace))
        return [f"{e.reason}: {e.message}" for e in (events.items if events else [])]

    def close(self) -> None:
        close = cast(Callable[[], None], self.api.close)  # unannotated in the client
        close()


async def wait_handling(cluster: Cluster, namespace: str, *, timeout: float = 60.0) -> None:
    """Wait until the operator handles objects in ``namespace`` (created by the caller).

    The liveness endpoint answers before Kopf has listed namespaces; a namespace created in that window
    is only noticed on the next re-list. A canary Collection whose chain does not exist gets a status
    without touching any registry row, which proves the operator is watching.
    """
    await cluster.create("collections", namespace, {
        "kind": "Collection", "metadata": {"name": "canary"},
        "spec": {"chainRef": "no-such-chain", "address": "0x" + "11" * 20, "standard": "ERC721",
                 "slug": f"canary-{namespace}", "name": "canary"},
    })

    async def handled() -> bool:
        return (await cluster.condition("collections", namespace, "canary", "Synced")).get("reason") == "ChainNotFound"

    await eventually(handled, timeout=timeout, what=f"the operator to handle objects in {namespace}")
    await cluster.delete("collections", namespace, "canary")


@contextlib.asynccontextmanager
async def operator_running(cluster: Cluster, process: OperatorProcess, warmup: str,
                           *, timeout: float = 120.0) -> AsyncIterator[OperatorProcess]:
    """Start ``process`` and yield once it provably handles objects; stop it and drop ``warmup`` after.

    The warm-up namespace is created before the start, so Kopf's first namespace listing sees it (one
    created later waits for the next re-list, which a loaded machine can push past any short wait).
    """
    await cluster.create_namespace(warmup)
    process.start()
    try:
        await process.wait_live()
        await wait_handling(cluster, warmup, timeout=timeout)
        yield process
    finally:
        await cluster.delete_namespace(warmup)
        process.stop()


@contextlib.asynccontextmanager
async def scratch_namespace(cluster: Cluster, name: str) -> AsyncIterator[str]:
    """A namespace for one test, deleted after it, waiting until its finalizers have run."""
    await cluster.create_namespace(name)
    yield name
    await cluster.delete_namespace(name)

    async def gone() -> bool:
        return not await cluster.namespace_exists(name)

    await eventually(gone, timeout=90, what=f"namespace {name} to be deleted (finalizers processed)")

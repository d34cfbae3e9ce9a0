"""Chain indexerLag end to end: the real kube-apiserver, the operator as its own process, the real chain
registry and the indexer's status server in this process (ephemeral ports), an anvil of our own, and a
real indexer follower (``python -m mintplane.indexer --chain``) as a subprocess.

No kubelet runs here, so the indexer Deployment the operator creates never starts a pod; the follower this
test starts plays its part, with the same settings the Deployment would pass. The status server answers
GetStatus from the checkpoint the follower writes to PostgreSQL, exactly as the chart's indexer Service
does in a cluster, and the operator turns it into status.indexedBlock / indexerLag, read back through
``kubectl get chain``.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mintplane.common.grpc_server import BuiltServer
from mintplane.common.service import Resources
from mintplane.devstack.layout import Layout
from mintplane.indexer.server import NEEDS, build_server
from mintplane.indexer.settings import IndexerSettings
from mintplane.operator.testing import (
    Anvil,
    Cluster,
    OperatorProcess,
    ensure_crds,
    eventually,
    free_port,
    operator_running,
    registry_server,
    scratch_namespace,
)

pytestmark = pytest.mark.e2e

PREFIX = f"mplag-{uuid.uuid4().hex[:6]}"
WAIT = 60.0
CONFIRMATIONS = 2
STALL_SECONDS = 4.0  # the status server calls a checkpoint this old "stalled" (lag > 0) or idle (lag 0)
TEST_EXCHANGE = "mintplane.test.events"  # never where the dev stack's catalog listens


@dataclass
class StatusServer:
    """The indexer's status server (no lane of its own) in this event loop."""

    target: str
    built: BuiltServer
    resources: Resources
    running: bool = True

    async def stop(self) -> None:
        if self.running:
            self.running = False
            await self.built.server.stop(0)


class Follower:
    """``python -m mintplane.indexer --chain <caip2>``, configured like the operator's Deployment."""

    def __init__(self, caip2: str, registry: str, log_path: Path) -> None:
        self.caip2, self.log_path = caip2, log_path
        self.env = {
            **os.environ,
            "MINTPLANE_INDEXER_CHAIN_REGISTRY_TARGET": registry,
            "MINTPLANE_INDEXER_CONFIRMATIONS": str(CONFIRMATIONS),
            "MINTPLANE_INDEXER_POLL_INTERVAL_SECONDS": "0.2",
            "MINTPLANE_INDEXER_EVENTS_EXCHANGE": TEST_EXCHANGE,
            "MINTPLANE_GRPC_PORT": str(free_port()),  # not the dev stack's 50058
            "MINTPLANE_METRICS_PORT": "0",
            "MINTPLANE_LOG_LEVEL": "INFO",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mintplane.indexer", "--chain", self.caip2], env=self.env,
                stdout=log, stderr=subprocess.STDOUT,
            )

    def alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
            raise AssertionError(f"the indexer follower exited with {self.process.returncode}:\n{tail}")

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait, 5)
        self.process = None


@pytest.fixture(scope="module")
def cluster(kubeconfig: Path, layout: Layout) -> Iterator[Cluster]:
    ensure_crds(layout.bin / "kubectl", kubeconfig, layout.root / "crds")
    api = Cluster(kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="module")
async def registry() -> AsyncIterator[str]:
    async with registry_server() as target:
        yield target


@pytest.fixture(scope="module")
async def status_server() -> AsyncIterator[StatusServer]:
    settings = IndexerSettings(grpc_port=0, indexer_stall_seconds=STALL_SECONDS)
    resources = await Resources.open(settings, NEEDS, name="indexer-status-lag-test")
    built = await build_server(settings, resources)
    await built.server.start()
    server = StatusServer(f"127.0.0.1:{built.port}", built, resources)
    try:
        yield server
    finally:
        await server.stop()
        await resources.close()


@pytest.fixture(scope="module")
async def operator(registry: str, status_server: StatusServer, kubeconfig: Path, cluster: Cluster,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OperatorProcess]:
    process = OperatorProcess(
        namespaces=[f"{PREFIX}-*"], registry_target=registry, kubeconfig=kubeconfig,
        log_path=tmp_path_factory.mktemp("operator") / "operator.log",
        env={"MINTPLANE_OPERATOR_INDEXER_TARGET": status_server.target,
             "MINTPLANE_OPERATOR_INDEXER_POLL_SECONDS": "1"},
    )
    async with operator_running(cluster, process, f"{PREFIX}-warmup") as running:
        yield running


@pytest.fixture
async def namespace(cluster: Cluster, operator: OperatorProcess) -> AsyncIterator[str]:
    async with scratch_namespace(cluster, f"{PREFIX}-{uuid.uuid4().hex[:6]}") as name:
        yield name


@pytest.fixture
async def chain_node(layout: Layout) -> AsyncIterator[Anvil]:
    node = Anvil(layout.anvil, port=free_port(), chain_id=random.randint(10**8, 2 * 10**9))
    await node.start()
    yield node
    await node.stop()


async def rpc(url: str, method: str, *params: Any) -> Any:
    async with aiohttp.ClientSession() as session, session.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    ) as response:
        reply = await response.json()
    assert "error" not in reply, reply
    return reply["result"]


async def mine(node: Anvil, blocks: int) -> int:
    await rpc(node.url, "anvil_mine", hex(blocks))
    return int(await rpc(node.url, "eth_blockNumber"), 16)


async def kubectl_get_chain(layout: Layout, kubeconfig: Path, namespace: str, name: str) -> dict[str, str]:
    """The row `kubectl get chain -o wide` prints, by column header (what a platform engineer reads)."""
    result = await asyncio.to_thread(
        subprocess.run,
        [str(layout.bin / "kubectl"), "--kubeconfig", str(kubeconfig), "get", "chain", name, "-n", namespace,
         "-o", "wide"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    # kubectl aligns each cell under its header and prints an empty cell (e.g. no Ready condition yet) as
    # blanks, so cells are cut at the headers' offsets rather than split on whitespace.
    starts = [(m.group(), m.start()) for m in re.finditer(r"\S+", header)]
    ends = [start for _, start in starts[1:]] + [len(row)]
    return {name: row[start:end].strip() for (name, start), end in zip(starts, ends, strict=True)}


async def test_kubectl_get_chain_shows_an_indexer_lag_that_tracks_the_head(
    cluster: Cluster, namespace: str, chain_node: Anvil, registry: str, status_server: StatusServer,
    layout: Layout, kubeconfig: Path, tmp_path: Path,
) -> None:
    caip2 = f"eip155:{chain_node.chain_id}"
    follower = Follower(caip2, registry, tmp_path / "follower.log")
    head = await mine(chain_node, 10)
    await cluster.create("chains", namespace, {
        "kind": "Chain", "metadata": {"name": "lagnet"},
        "spec": {"caip2": caip2, "chainId": chain_node.chain_id, "name": "lagnet", "nativeSymbol": "ETH",
                 "indexer": {"enabled": True, "confirmations": CONFIRMATIONS}},
    })
    await cluster.create("chainendpoints", namespace, {
        "kind": "ChainEndpoint", "metadata": {"name": "primary"},
        "spec": {"chainRef": "lagnet", "url": chain_node.url, "probeIntervalSeconds": 5},
    })

    async def row_where(**wanted: str) -> dict[str, str] | None:
        follower.alive()
        row = await kubectl_get_chain(layout, kubeconfig, namespace, "lagnet")
        return row if all(row.get(column) == value for column, value in wanted.items()) else None

    async def shows(head: int, lag: int, indexed: int, when: str) -> dict[str, str]:
        return await eventually(lambda: row_where(HEAD=str(head), LAG=str(lag), INDEXED=str(indexed)), timeout=WAIT,
                                what=f"HEAD {head} LAG {lag} INDEXED {indexed} {when}")

    async def indexing(reason: str) -> dict[str, Any]:
        found = await cluster.condition("chains", namespace, "lagnet", "Indexing")
        return found if found.get("reason") == reason else {}

    try:
        # Registered and probed, but nothing has indexed this chain yet: no lag, and status says why.
        await eventually(lambda: row_where(HEAD=str(head), HEALTHY="1"), timeout=WAIT, what="head from the probe")
        no_checkpoint = await eventually(lambda: indexing("NoCheckpoint"), timeout=WAIT,
                                         what="Indexing=False NoCheckpoint")
        assert no_checkpoint["status"] == "False" and caip2 in no_checkpoint["message"]
        status = await cluster.status("chains", namespace, "lagnet")
        assert "indexerLag" not in status and "indexedBlock" not in status
        assert (await kubectl_get_chain(layout, kubeconfig, namespace, "lagnet"))["LAG"] == ""  # an empty cell

        # The follower starts at head - confirmations and keeps up: lag 0 at every head.
        follower.start()
        caught_up = await shows(head, 0, head - CONFIRMATIONS, "once the follower runs")
        assert caught_up["CAIP2"] == caip2
        assert (await cluster.condition("chains", namespace, "lagnet", "Indexing"))["status"] == "True"
        for step in (7, 13):
            head = await mine(chain_node, step)
            await shows(head, 0, head - CONFIRMATIONS, f"after mining {step} blocks")

        # Caught up on an idle chain: every timer keeps running, and nothing is written.
        await eventually(lambda: indexing("CaughtUp"), timeout=WAIT, what="Indexing=True CaughtUp on an idle chain")
        before = (await cluster.get("chains", namespace, "lagnet") or {})["metadata"]["resourceVersion"]
        await asyncio.sleep(6)  # 6 indexer polls, 3 status ticks, a probe
        after = (await cluster.get("chains", namespace, "lagnet") or {})["metadata"]["resourceVersion"]
        assert after == before, "the operator patched an unchanged Chain status"

        # The follower stops; the head moves on: the lag grows by exactly the new blocks, and once the
        # checkpoint is older than the stall threshold the condition says the indexer is stalled.
        indexed = head - CONFIRMATIONS
        await follower.stop()
        head = await mine(chain_node, 6)
        behind = await shows(head, 6, indexed, "with the follower stopped")
        assert int(behind["LAG"]) == head - CONFIRMATIONS - indexed
        stalled = await eventually(lambda: indexing("Stalled"), timeout=WAIT, what="Indexing=False Stalled")
        assert stalled["status"] == "False"

        # Restarted, it catches up from its checkpoint and the lag returns to 0.
        follower.start()
        await shows(head, 0, head - CONFIRMATIONS, "after the follower restarts")

        # The status server goes away: the lag stays at its last value, the condition and an Event say why.
        await follower.stop()
        await status_server.stop()
        unreachable = await eventually(lambda: indexing("IndexerUnreachable"), timeout=WAIT,
                                       what="Indexing=Unknown IndexerUnreachable")
        assert unreachable["status"] == "Unknown" and status_server.target in unreachable["message"]
        head = await mine(chain_node, 4)
        await eventually(lambda: row_where(HEAD=str(head)), timeout=WAIT, what=f"head {head} with no indexer")
        kept = await kubectl_get_chain(layout, kubeconfig, namespace, "lagnet")
        assert (kept["LAG"], kept["INDEXED"]) == ("0", str(head - 4 - CONFIRMATIONS))

        async def told() -> list[str]:
            return [m for m in await cluster.event_messages(namespace) if m.startswith("IndexerUnreachable:")]

        assert await eventually(told, timeout=WAIT, what="an IndexerUnreachable Event")
    finally:
        await follower.stop()
        await status_server.resources.pg.execute(
            "DELETE FROM indexer.indexer_checkpoints WHERE chain_id = $1", caip2)

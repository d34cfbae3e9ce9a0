"""How fast a Chain becomes Ready, and how much memory the operator needs for many Chains.

    .venv/bin/python bench/operator_ready_latency.py [--runs 10] [--chains 100] [--settle 20]

Needs the dev stack (`make up`): the kube-apiserver and PostgreSQL. It runs the real chain-registry
in-process, its own anvil (unique chain id), and the operator as a subprocess watching only this run's
namespaces, so it leaves the dev stack's chains alone.

1. Ready latency: apply a Chain and its ChainEndpoint, time until the Chain's Ready condition is True
   (registry upsert, endpoint registration, first probe, status roll-up); delete both; repeat.
2. RSS: apply --chains Chains, each with a ChainEndpoint probed every 30 s (against one anvil, so all but
   none report ChainIdMismatch: the same probing work as healthy ones), wait until all are Synced, let it
   settle, read the operator's VmRSS. The baseline RSS (no objects) is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from mintplane.devstack.layout import Layout
from mintplane.operator.testing import (
    Anvil,
    Cluster,
    OperatorProcess,
    ensure_crds,
    eventually,
    free_port,
    registry_server,
    wait_handling,
)


def chain(name: str, chain_id: int) -> dict[str, Any]:
    return {"kind": "Chain", "metadata": {"name": name},
            "spec": {"caip2": f"eip155:{chain_id}", "chainId": chain_id, "name": name, "nativeSymbol": "ETH"}}


def endpoint(name: str, chain_name: str, url: str, interval: int) -> dict[str, Any]:
    return {"kind": "ChainEndpoint", "metadata": {"name": name},
            "spec": {"chainRef": chain_name, "url": url, "probeIntervalSeconds": interval}}


async def ready(cluster: Cluster, namespace: str, name: str) -> bool:
    return (await cluster.condition("chains", namespace, name, "Ready")).get("status") == "True"


async def synced(cluster: Cluster, namespace: str, name: str) -> bool:
    return (await cluster.condition("chains", namespace, name, "Synced")).get("status") == "True"


async def gone(cluster: Cluster, namespace: str, *names: tuple[str, str]) -> bool:
    return all([await cluster.get(plural, namespace, name) is None for plural, name in names])


async def ready_latency(cluster: Cluster, namespace: str, node: Anvil, runs: int) -> list[float]:
    samples = []
    for run in range(runs):
        name = f"lat-{run}"
        started = time.perf_counter()
        await cluster.create("chains", namespace, chain(name, node.chain_id))
        await cluster.create("chainendpoints", namespace, endpoint(f"{name}-rpc", name, node.url, 30))
        await eventually(lambda name=name: ready(cluster, namespace, name), timeout=60, what=f"{name} Ready",
                         interval=0.05)
        samples.append(time.perf_counter() - started)
        await cluster.delete("chainendpoints", namespace, f"{name}-rpc")
        await cluster.delete("chains", namespace, name)
        await eventually(
            lambda name=name: gone(cluster, namespace, ("chains", name), ("chainendpoints", f"{name}-rpc")),
            timeout=60, what=f"{name} deleted")
    return samples


async def many_chains(cluster: Cluster, namespace: str, node: Anvil, count: int, base_id: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        name = f"many-{index}"
        await cluster.create("chains", namespace, chain(name, base_id + index))
        await cluster.create("chainendpoints", namespace, endpoint(f"{name}-rpc", name, node.url, 30))

    async def all_synced() -> bool:
        results = await asyncio.gather(*(synced(cluster, namespace, f"many-{i}") for i in range(count)))
        return all(results)

    await eventually(all_synced, timeout=600, what=f"{count} chains Synced", interval=1.0)
    return time.perf_counter() - started


async def main(runs: int, chains: int, settle: float) -> None:
    layout = Layout.default()
    kubeconfig = Path(os.environ.get("KUBECONFIG", str(layout.kubeconfig)))
    ensure_crds(layout.bin / "kubectl", kubeconfig, layout.root / "crds")
    cluster = Cluster(kubeconfig)
    prefix = f"mpbench-{uuid.uuid4().hex[:6]}"
    namespace = f"{prefix}-run"
    base_id = random.randint(10**8, 2 * 10**9 - chains - 1)
    node = Anvil(layout.anvil, port=free_port(), chain_id=base_id + chains)
    log_dir = Path(tempfile.mkdtemp(prefix="operator-bench-"))
    async with registry_server() as registry:
        operator = OperatorProcess(namespaces=[f"{prefix}-*"], registry_target=registry, kubeconfig=kubeconfig,
                                   log_path=log_dir / "operator.log")
        await node.start()
        await cluster.create_namespace(namespace)
        try:
            operator.start()
            await operator.wait_live()
            await wait_handling(cluster, namespace)
            await asyncio.sleep(2)
            baseline = operator.rss_kib()

            samples = await ready_latency(cluster, namespace, node, runs)
            print(f"chain apply -> Ready, {runs} runs: median {statistics.median(samples):.2f} s, "
                  f"min {min(samples):.2f} s, max {max(samples):.2f} s, "
                  f"samples {', '.join(f'{s:.2f}' for s in samples)}")

            elapsed = await many_chains(cluster, namespace, node, chains, base_id)
            print(f"{chains} Chains + {chains} ChainEndpoints applied and Synced in {elapsed:.1f} s")
            await asyncio.sleep(settle)
            rss = operator.rss_kib()
            print(f"operator RSS: {baseline / 1024:.0f} MiB idle, {rss / 1024:.0f} MiB with {chains} Chains "
                  f"+ {chains} ChainEndpoints (after {settle:.0f} s of probing)")
        finally:
            await cluster.delete_namespace(namespace)
            if operator.process is not None and operator.process.poll() is None:
                async def deleted() -> bool:
                    return not await cluster.namespace_exists(namespace)

                await eventually(deleted, timeout=300, what="bench namespace deleted", interval=1.0)
            operator.stop()
            await node.stop()
            cluster.close()
            print(f"operator log: {log_dir / 'operator.log'}", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--settle", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.chains, args.settle))

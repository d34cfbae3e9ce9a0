"""GetChainConfig throughput over gRPC for a chain with 5 endpoints and 50 tracked contracts.

    .venv/bin/python bench/chain_registry_get_config.py                  # starts the service as a subprocess
    .venv/bin/python bench/chain_registry_get_config.py --target 127.0.0.1:50056 --seconds 10

The service runs in its own process (or is the one at --target) so client and server do not share one
interpreter. The fixture chain is written through the service's own RPCs and deleted afterwards. Prints
calls/s and latency percentiles for a few concurrency levels.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sys
import time
import uuid
from contextlib import suppress

import asyncpg
import grpc

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc
from mintplane.common.settings import InfraSettings

ERC721_ABI = [
    {
        "type": "event",
        "name": "Transfer",
        "inputs": [
            {"name": "from", "type": "address", "indexed": True},
            {"name": "to", "type": "address", "indexed": True},
            {"name": "tokenId", "type": "uint256", "indexed": True},
        ],
    }
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _start_service() -> tuple[asyncio.subprocess.Process, str]:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mintplane.chain_registry",
        env={**os.environ, "MINTPLANE_GRPC_PORT": str(port), "MINTPLANE_LOG_LEVEL": "WARNING"},
    )
    target = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
    return proc, target


async def _fixture(stub: chain_registry_pb2_grpc.ChainRegistryServiceAsyncStub) -> tuple[str, str]:
    numeric = 1_900_000_000 + random.randrange(100_000_000)
    caip2 = f"eip155:{numeric}"
    await stub.UpsertChain(pb.UpsertChainRequest(chain=pb.Chain(caip2=caip2, name="bench", native_symbol="ETH")))
    await stub.UpsertGasPolicy(
        pb.UpsertGasPolicyRequest(
            gas_policy=pb.GasPolicy(caip2=caip2, max_fee_gwei="150", priority_fee_gwei="1.5", multiplier="2")
        )
    )
    for index in range(5):
        await stub.UpsertEndpoint(
            pb.UpsertEndpointRequest(
                endpoint=pb.Endpoint(
                    caip2=caip2, url=f"https://rpc{index}.bench.example/", priority=index % 2, weight=index
                )
            )
        )
    abi = await stub.PutAbi(pb.PutAbiRequest(abi_json=json.dumps(ERC721_ABI), source="bench"))
    await asyncio.gather(
        *(
            stub.UpsertContract(
                pb.UpsertContractRequest(
                    contract=pb.Contract(
                        caip2=caip2,
                        address="0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8],
                        name=f"bench {i}",
                        start_block=i,
                        abi_sha256=abi.abi.sha256,
                    )
                )
            )
            for i in range(50)
        )
    )
    return caip2, abi.abi.sha256


async def _cleanup(caip2: str, abi_sha256: str) -> None:
    conn = await asyncpg.connect(InfraSettings().pg_dsn.get_secret_value())
    try:
        async with conn.transaction():
            chain_id = await conn.fetchval("SELECT id FROM chain_registry.chains WHERE caip2 = $1", caip2)
            await conn.execute("DELETE FROM chain_registry.chain_contracts WHERE chain_id = $1", chain_id)
            await conn.execute("DELETE FROM chain_registry.chains WHERE id = $1", chain_id)
            await conn.execute(
                "DELETE FROM chain_registry.abi_blobs a WHERE sha256 = $1 AND NOT EXISTS "
                "(SELECT 1 FROM chain_registry.chain_contracts k WHERE k.abi_sha256 = a.sha256)",
                abi_sha256,
            )
    finally:
        await conn.close()


async def _run(
    stub: chain_registry_pb2_grpc.ChainRegistryServiceAsyncStub, caip2: str, concurrency: int, seconds: float
) -> tuple[int, list[float]]:
    request = pb.GetChainConfigRequest(caip2=caip2)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await stub.GetChainConfig(request)
            latencies.append(time.perf_counter() - started)
            assert len(response.endpoints) == 5 and len(response.contracts) == 50

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), sorted(latencies)


def _pct(sorted_values: list[float], pct: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * pct))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", help="host:port of a running chain-registry (default: start one)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()

    proc = None
    target = args.target
    if target is None:
        proc, target = await _start_service()
    caip2 = abi_sha256 = ""
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = chain_registry_pb2_grpc.ChainRegistryServiceStub(channel)
            caip2, abi_sha256 = await _fixture(stub)
            await _run(stub, caip2, 4, 1.0)  # warm up: connections, prepared statements
            print(f"GetChainConfig over gRPC at {target}: 1 chain, 5 endpoints, 50 contracts, gas policy")
            for concurrency in args.concurrency:
                calls, latencies = await _run(stub, caip2, concurrency, args.seconds)
                print(
                    f"  concurrency {concurrency:>3}: {calls / args.seconds:8.0f} calls/s   "
                    f"p50 {_pct(latencies, 0.50):6.2f} ms   p99 {_pct(latencies, 0.99):6.2f} ms"
                )
    finally:
        if caip2:
            await _cleanup(caip2, abi_sha256)
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            with suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)


if __name__ == "__main__":
    asyncio.run(main())

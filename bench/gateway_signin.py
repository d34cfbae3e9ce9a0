"""Sign-In with Ethereum through the GraphQL gateway over HTTP, beside the floor it cannot beat.

    .venv/bin/python bench/gateway_signin.py                       # 300 sign-ins, 8 clients
    .venv/bin/python bench/gateway_signin.py --count 1000 --concurrency 16

Starts its own gateway, auth, user and wallet processes (mintplane.gateway.localstack) over the dev stack's
PostgreSQL and Redis, with the auth rate limits raised for the run. One sign-in round trip is what a
front end does: `nonce` mutation → sign the message with the wallet key (eth-account, in this process) →
`signIn` mutation. It is measured for new users (first login: the user and wallet are created) and for
returning users, and beside it, in the same run, the raw cost of one secp256k1 public-key recovery
(coincurve) and of eth-account's `recover_message` — the work a verifier must do per sign-in at the least.
Finally the authenticated `me` query (ValidateSession + BatchGetUsers + BatchListWallets) is timed.
Users created are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import coincurve
import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from mintplane.gateway.localstack import LocalStack, delete_identities, local_stack

NONCE = "mutation($a: String!) { nonce(address: $a, chainId: 31337) { message } }"
SIGN_IN = "mutation($m: String!, $s: String!) { signIn(message: $m, signature: $s) { accessToken viewer { id } } }"
ME = "{ me { id address wallets { address isPrimary } } }"
UNLIMITED = {
    "MINTPLANE_AUTH_RATE_LIMIT_SIGNIN_IP": "1000000/minute",
    "MINTPLANE_AUTH_RATE_LIMIT_SIGNIN_ADDRESS": "1000000/minute",
    "MINTPLANE_AUTH_RATE_LIMIT_NONCE_ADDRESS": "1000000/minute",
    "MINTPLANE_LOG_LEVEL": "WARNING",
}


def recovery_floor(samples: int = 2000) -> tuple[float, float]:
    """Seconds per raw secp256k1 recovery (coincurve) and per eth-account recover_message."""
    account = Account.create()
    message = encode_defunct(text="mintplane wants you to sign in with your Ethereum account:\n" + account.address)
    signed = account.sign_message(message)
    digest = keccak(b"\x19" + message.version + message.header + message.body)  # EIP-191
    raw = bytes(signed.signature)
    recoverable = raw[:64] + bytes([raw[64] - 27])
    started = time.perf_counter()
    for _ in range(samples):
        coincurve.PublicKey.from_signature_and_message(recoverable, digest, hasher=None)
    raw_cost = (time.perf_counter() - started) / samples
    started = time.perf_counter()
    for _ in range(samples):
        Account.recover_message(message, signature=raw)
    return raw_cost, (time.perf_counter() - started) / samples


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str = "") -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body: dict[str, Any] = response.json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body


async def sign_in(client: httpx.AsyncClient, account: LocalAccount) -> tuple[str, str]:
    message = (await gql(client, NONCE, {"a": account.address}))["data"]["nonce"]["message"]
    signature = "0x" + bytes(account.sign_message(encode_defunct(text=message)).signature).hex()
    payload = (await gql(client, SIGN_IN, {"m": message, "s": signature}))["data"]["signIn"]
    return payload["accessToken"], payload["viewer"]["id"]


async def timed(jobs: list[Callable[[], Awaitable[Any]]], concurrency: int) -> tuple[float, list[float], list[Any]]:
    """Run the jobs with `concurrency` workers; wall time, per-job latencies, results in job order."""
    latencies: list[float] = [0.0] * len(jobs)
    results: list[Any] = [None] * len(jobs)
    queue = iter(range(len(jobs)))

    async def worker() -> None:
        for index in queue:
            started = time.perf_counter()
            results[index] = await jobs[index]()
            latencies[index] = time.perf_counter() - started

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, results


def cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """CPU time each process of the stack has used so far (Linux /proc), to split a request's cost."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for item in stack.processes:
        fields = Path(f"/proc/{item.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        used[item.name] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return used


def report_cpu(before: dict[str, float], after: dict[str, float], operations: int) -> None:
    parts = "   ".join(f"{name} {(after[name] - before[name]) / operations * 1000:5.2f}" for name in after)
    print(f"{'':<34} server CPU ms per op:   {parts}")


def report(label: str, wall: float, latencies: list[float]) -> float:
    """Print throughput and latency percentiles; return the throughput."""
    ordered = sorted(latencies)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(f"{label:<34} {len(latencies) / wall:8.1f}/s   p50 {statistics.median(ordered) * 1000:6.1f} ms   "
          f"p95 {p95 * 1000:6.1f} ms   ({len(latencies)} in {wall:.2f} s)")
    return len(latencies) / wall


async def main(count: int, concurrency: int) -> None:
    raw_cost, eth_account_cost = recovery_floor()
    print(f"secp256k1 recovery, raw (coincurve)  {1 / raw_cost:9.0f}/s   {raw_cost * 1e6:7.1f} µs each")
    print(f"eth-account recover_message          {1 / eth_account_cost:9.0f}/s   {eth_account_cost * 1e6:7.1f} µs each")
    accounts = [Account.create() for _ in range(count)]
    user_ids: list[str] = []
    returning_rate = 0.0
    try:
        async with local_stack(extra_env={"auth": UNLIMITED, "user": UNLIMITED, "wallet": UNLIMITED,
                                          "gateway": {"MINTPLANE_GATEWAY_ACCESS_LOG": "false", **UNLIMITED}}) as stack:
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            async with httpx.AsyncClient(base_url=stack.url, limits=limits, timeout=30) as client:
                warm_up = Account.create()
                user_ids.append((await sign_in(client, warm_up))[1])  # connections, caches, first imports
                accounts.append(warm_up)
                cpu = cpu_seconds(stack)
                wall, latencies, results = await timed(
                    [lambda a=a: sign_in(client, a) for a in accounts[:count]], concurrency)
                user_ids += [user_id for _, user_id in results]
                report("sign-in round trip, new users", wall, latencies)
                cpu, before = cpu_seconds(stack), cpu
                report_cpu(before, cpu, count)
                wall, latencies, results = await timed(
                    [lambda a=a: sign_in(client, a) for a in accounts[:count]], concurrency)
                returning_rate = report("sign-in round trip, returning users", wall, latencies)
                cpu, before = cpu_seconds(stack), cpu
                report_cpu(before, cpu, count)
                tokens = [token for token, _ in results]
                wall, latencies, _ = await timed(
                    [lambda t=t: gql(client, ME, {}, t) for t in tokens * 3], concurrency)
                report("authenticated `me` query", wall, latencies)
                report_cpu(cpu, cpu_seconds(stack), len(tokens) * 3)
    finally:
        await delete_identities(user_ids, [account.address for account in accounts])
    print(f"one returning sign-in takes the machine as long as ~{1 / raw_cost / returning_rate:.0f} raw recoveries; "
          "the rest is HTTP, GraphQL, gRPC hops, PostgreSQL and Redis")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="sign-ins per pass (default 300)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP clients (default 8)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.count, arguments.concurrency))

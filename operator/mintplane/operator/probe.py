"""Health probe of one JSON-RPC endpoint: ``eth_chainId`` and ``eth_blockNumber`` in one batch request,
its round-trip time, and the traffic-light score public RPC lists use.

Credentials are attached by :mod:`mintplane.common.endpoint_auth`, the same code the indexer uses, so a
key that passes the probe is sent the same way when indexing. Every error text that leaves this module
names the host only and has the key masked (in every form it takes on the wire), because it ends up in
status, events and logs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from mintplane.common.endpoint_auth import AuthType, Credential, redact, request_target, secret_forms
from mintplane.operator.specs import host_of

_BATCH = [
    {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
    {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []},
]

GREEN_MAX_BEHIND, GREEN_MAX_LATENCY_MS = 2, 300
ORANGE_MAX_BEHIND, ORANGE_MAX_LATENCY_MS = 10, 1000


# ChainEndpoint spec.authType -> the registry's names, which the shared request builder speaks.
CRD_AUTH_TYPES: dict[str, AuthType] = {
    "none": AuthType.NONE,
    "bearer": AuthType.BEARER,
    "basic": AuthType.BASIC,
    "header": AuthType.API_KEY_HEADER,
    "query": AuthType.API_KEY_QUERY,
    "path": AuthType.API_KEY_PATH,
}


def crd_auth_type(auth_type: str) -> AuthType:
    """The registry's name for a ChainEndpoint ``authType``; ValueError for one the operator does not know."""
    try:
        return CRD_AUTH_TYPES[auth_type]
    except KeyError:
        raise ValueError(f"authType {auth_type!r} is not one of {', '.join(CRD_AUTH_TYPES)}") from None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    latency_ms: int
    chain_id: int | None = None
    head_block: int | None = None
    reason: str = ""  # CamelCase, empty when the endpoint answered both calls
    error: str = ""  # "<Reason>: <details>", safe to publish

    @property
    def answered(self) -> bool:
        return not self.reason


@dataclass(frozen=True, slots=True)
class Assessment:
    healthy: bool
    blocks_behind: int | None
    score: str
    reason: str
    error: str


class _ProbeFailure(Exception):
    def __init__(self, reason: str, details: str) -> None:
        super().__init__(f"{reason}: {details}")
        self.reason = reason
        self.details = details


def _quantity(response: dict[str, Any], method: str) -> int:
    if "error" in response:
        error = response["error"] or {}
        raise _ProbeFailure("RpcError", f"{method}: {error.get('code')} {str(error.get('message', ''))[:200]}")
    result = response.get("result")
    if not isinstance(result, str) or not result.startswith("0x"):
        raise _ProbeFailure("InvalidResponse", f"{method} returned {str(result)[:60]!r}, not a hex quantity")
    try:
        return int(result, 16)
    except ValueError:
        raise _ProbeFailure("InvalidResponse", f"{method} returned {result[:60]!r}") from None


def _parse(payload: Any) -> tuple[int, int]:
    if isinstance(payload, dict):  # a server that does not batch answers with one error object
        _quantity(payload, "batch")
        raise _ProbeFailure("InvalidResponse", "batch request answered with a single object")
    if not isinstance(payload, list):
        raise _ProbeFailure("InvalidResponse", "response is not a JSON-RPC batch")
    by_id = {item.get("id"): item for item in payload if isinstance(item, dict)}
    if 1 not in by_id or 2 not in by_id:
        raise _ProbeFailure("InvalidResponse", "batch response misses eth_chainId or eth_blockNumber")
    return _quantity(by_id[1], "eth_chainId"), _quantity(by_id[2], "eth_blockNumber")


async def _http(session: aiohttp.ClientSession, url: str, headers: dict[str, str], timeout: float) -> Any:
    async with session.post(
        url, json=_BATCH, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
    ) as response:
        if response.status != 200:
            raise _ProbeFailure("HttpStatus", f"{response.status} {response.reason or ''}".strip())
        try:
            return await response.json(content_type=None)
        except ValueError:
            raise _ProbeFailure("InvalidResponse", "body is not JSON") from None


async def _ws(session: aiohttp.ClientSession, url: str, headers: dict[str, str], timeout: float) -> Any:
    async with asyncio.timeout(timeout):
        async with session.ws_connect(url, headers=headers, autoping=True) as socket:
            await socket.send_json(_BATCH)
            try:
                return await socket.receive_json()
            except (TypeError, ValueError):
                raise _ProbeFailure("InvalidResponse", "websocket message is not JSON") from None


async def probe(
    session: aiohttp.ClientSession,
    url: str,
    *,
    credential: Credential | None = None,
    timeout: float = 3.0,
) -> ProbeResult:
    """Never raises for endpoint faults: they come back as a ProbeResult with a reason."""
    host = host_of(url)
    started = time.perf_counter()
    try:
        target, headers = request_target(url, credential)
    except ValueError as exc:
        return _failed(started, "InvalidSpec", str(exc), credential)
    try:
        call = _ws if urlsplit(url).scheme in ("ws", "wss") else _http
        chain_id, head = _parse(await call(session, target, headers, timeout))
    except _ProbeFailure as failure:
        return _failed(started, failure.reason, failure.details, credential)
    except TimeoutError:
        return _failed(started, "Timeout", f"{host} did not answer within {timeout:g}s", credential)
    except aiohttp.WSServerHandshakeError as exc:
        return _failed(started, "HttpStatus", f"websocket handshake refused: {exc.status}", credential)
    except aiohttp.ClientConnectionError as exc:
        return _failed(started, "ConnectionError", f"cannot connect to {host} ({type(exc).__name__})", credential)
    except aiohttp.ClientError as exc:
        return _failed(started, "ClientError", f"{type(exc).__name__} talking to {host}", credential)
    latency_ms = round((time.perf_counter() - started) * 1000)
    return ProbeResult(latency_ms=latency_ms, chain_id=chain_id, head_block=head)


def _failed(started: float, reason: str, details: str, credential: Credential | None) -> ProbeResult:
    details = redact(details, secret_forms(credential))
    latency_ms = round((time.perf_counter() - started) * 1000)
    return ProbeResult(latency_ms=latency_ms, reason=reason, error=f"{reason}: {details}")


def score(*, healthy: bool, latency_ms: int, blocks_behind: int) -> str:
    """green: at the head and fast; orange: usable but slow or a little behind; red: anything else."""
    if not healthy:
        return "red"
    if blocks_behind <= GREEN_MAX_BEHIND and latency_ms < GREEN_MAX_LATENCY_MS:
        return "green"
    if blocks_behind <= ORANGE_MAX_BEHIND and latency_ms < ORANGE_MAX_LATENCY_MS:
        return "orange"
    return "red"


def assess(result: ProbeResult, *, expected_chain_id: int | None, best_peer_head: int | None,
           max_blocks_behind: int) -> Assessment:
    """Turn a probe into health: it answered, on the right chain, and not too far behind its peers."""
    if not result.answered:
        return Assessment(False, None, "red", result.reason, result.error)
    if expected_chain_id is not None and result.chain_id != expected_chain_id:
        reason = "ChainIdMismatch"
        return Assessment(False, None, "red", reason, f"{reason}: expected {expected_chain_id}, got {result.chain_id}")
    head = result.head_block or 0
    best = max(head, best_peer_head or 0)
    behind = best - head
    if behind > max_blocks_behind:
        reason = "Lagging"
        error = f"{reason}: {behind} blocks behind the best endpoint (at most {max_blocks_behind} allowed)"
        return Assessment(False, behind, "red", reason, error)
    return Assessment(True, behind, score(healthy=True, latency_ms=result.latency_ms, blocks_behind=behind), "", "")

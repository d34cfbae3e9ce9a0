"""Token URIs read from the chain: ``tokenURI(uint256)`` (ERC-721) / ``uri(uint256)`` (ERC-1155) as batched
``eth_call`` (one JSON-RPC batch request carries up to ``batch_size`` calls).

The chain's endpoints come from the chain registry through :mod:`mintplane.common.registry_client`, the
same client and credential rules the indexer uses; they are cached per chain for ``cache_seconds``.
Endpoints are tried in the registry's failover order. A call that reverts, returns nothing or returns
something that is not an ABI string fails *that token* (permanently, with the reason); an endpoint that
cannot answer fails the batch's tokens transiently, so they are retried with backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import grpc
from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError

from mintplane.catalog.metadata.failures import MetadataFailure, PermanentFailure, TransientFailure
from mintplane.common.jsonrpc import EndpointFailure, JsonRpcClient, RpcError
from mintplane.common.log import get_logger
from mintplane.common.registry_client import (
    ChainConfig,
    ChainNotFound,
    RegistryClient,
    RegistryUnavailable,
    endpoint_request,
)

log = get_logger(__name__)

ERC721_SELECTOR = "0xc87b56dd"  # tokenURI(uint256)
ERC1155_SELECTOR = "0x0e89341c"  # uri(uint256)
MAX_URI_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True)
class UriRead:
    """What to read: the contract and token of one token row."""

    contract: str
    token_number: str
    standard: str  # ERC721 | ERC1155


def call_data(read: UriRead) -> str:
    selector = ERC1155_SELECTOR if read.standard == "ERC1155" else ERC721_SELECTOR
    return selector + format(int(read.token_number), "064x")


def decode_uri(result: object, standard: str) -> str:
    """The ABI-decoded string an ``eth_call`` returned; PermanentFailure when it is not one."""
    function = "uri" if standard == "ERC1155" else "tokenURI"
    if not isinstance(result, str) or not result.startswith("0x"):
        raise PermanentFailure(f"{function} returned a malformed result")
    raw = result[2:]
    if not raw:
        raise PermanentFailure(f"{function} returned no data (not an {standard.replace('ERC', 'ERC-')} contract?)")
    try:
        data = bytes.fromhex(raw)
        (text,) = decode(["string"], data)
    except (ValueError, DecodingError, OverflowError):
        raise PermanentFailure(f"{function} did not return an ABI string") from None
    if not isinstance(text, str):
        raise PermanentFailure(f"{function} did not return an ABI string")
    if len(text) > MAX_URI_CHARS:
        raise PermanentFailure(f"{function} returned more than 16 MiB")
    return text


def revert_reason(error: RpcError, standard: str) -> str:
    function = "uri" if standard == "ERC1155" else "tokenURI"
    message = "".join(ch for ch in error.message if ch.isprintable()).strip()  # nodes echo raw revert bytes
    if "revert" in message.lower():
        detail = message.split(":", 1)[1].strip() if ":" in message else ""
        return f"{function} reverted" + (f": {detail[:160]}" if detail else "")
    return f"{function} failed: {message[:160]}"


class ChainReader:
    """Reads token URIs per chain through the registry's endpoints."""

    def __init__(self, registry: RegistryClient, *, batch_size: int = 100, timeout: float = 15.0,
                 cache_seconds: float = 30.0, concurrency: int = 4) -> None:
        self._registry = registry
        self._batch_size = batch_size
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._configs: dict[str, tuple[float, ChainConfig]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._calls = asyncio.Semaphore(concurrency)
        self.requests = 0  # JSON-RPC HTTP requests made (batches), for tests and the bench

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _config(self, chain: str) -> ChainConfig:
        cached = self._configs.get(chain)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        try:
            config = await self._registry.get_chain_config(chain)
        except ChainNotFound:
            raise TransientFailure(f"chain {chain} is not in the chain registry") from None
        except RegistryUnavailable as exc:
            if exc.code == grpc.StatusCode.INVALID_ARGUMENT:  # the chain id itself is refused: retrying cannot help
                raise PermanentFailure(f"chain id {chain[:40]!r} is not valid for the chain registry") from None
            raise TransientFailure(f"chain registry unavailable ({str(exc)[:80]})") from None
        self._configs[chain] = (now, config)
        return config

    async def read(self, chain: str, reads: Sequence[UriRead]) -> list[str | MetadataFailure]:
        """Per read, in order: the URI, or why it could not be read."""
        if not reads:
            return []
        try:
            config = await self._config(chain)
        except MetadataFailure as failure:
            return [failure] * len(reads)
        if not config.enabled:
            return [TransientFailure(f"chain {chain} is disabled in the chain registry")] * len(reads)
        if not config.endpoints:
            return [TransientFailure(f"chain {chain} has no active RPC endpoint")] * len(reads)
        chunks = [reads[i : i + self._batch_size] for i in range(0, len(reads), self._batch_size)]
        results = await asyncio.gather(*(self._read_chunk(config, chunk) for chunk in chunks))
        return [item for chunk in results for item in chunk]

    async def _read_chunk(self, config: ChainConfig, reads: Sequence[UriRead]) -> list[str | MetadataFailure]:
        calls = [("eth_call", [{"to": r.contract, "data": call_data(r)}, "latest"]) for r in reads]
        last = "no endpoint could be used"
        async with self._calls:
            for endpoint in sorted(config.endpoints, key=lambda e: (e.priority, -e.weight, e.id)):
                try:
                    target = endpoint_request(endpoint)
                except ValueError as exc:
                    last = f"endpoint {endpoint.id}: {exc}"
                    continue
                client = JsonRpcClient(self._client_session(), target.url, timeout=self._timeout,
                                       headers=dict(target.headers), masks=target.masks)
                try:
                    self.requests += 1
                    answers = await client.batch_each(calls)
                except (EndpointFailure, RpcError) as exc:
                    last = f"RPC endpoint {endpoint.id} failed: {str(exc)[:120]}"
                    log.warning("token URI batch failed; trying the next endpoint", chain=config.caip2,
                                endpoint=endpoint.id, error=str(exc)[:200])
                    continue
                return [self._outcome(answer, read.standard) for answer, read in zip(answers, reads, strict=True)]
        return [TransientFailure(last)] * len(reads)

    @staticmethod
    def _outcome(answer: object, standard: str) -> str | MetadataFailure:
        if isinstance(answer, RpcError):  # a revert is the contract's answer; other errors are the node's
            if answer.code == 3 or "revert" in answer.message.lower():
                return PermanentFailure(revert_reason(answer, standard))
            return TransientFailure(revert_reason(answer, standard))
        try:
            return decode_uri(answer, standard)
        except MetadataFailure as failure:
            return failure

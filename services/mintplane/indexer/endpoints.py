"""The RPC endpoints of one chain: choice by priority and weight, failover, rate limits, cool-downs.

Endpoints come from the chain registry. The lowest priority number wins; inside a priority, endpoints
share batches by weight (weight 0 is a standby, used only when the others of its priority cannot serve).
A whole unit of work (one batch: headers, logs, checks) runs on one endpoint, because mixing nodes that
disagree about the head inside one batch would defeat the consistency checks. When an endpoint fails it
cools down with exponential back-off and jitter, and the work is retried on the next one. When every
endpoint is cooling down, :class:`AllEndpointsDown` says how long until the first may be tried again;
the worker reports ENDPOINTS_DOWN meanwhile and resumes on its own.

Each endpoint's ``rate_limit`` (requests per second, 0 = none) is enforced with a token bucket; a
JSON-RPC batch costs one token per call in it, as providers count them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from mintplane.common.jsonrpc import EndpointFailure, JsonRpcClient

T = TypeVar("T")


class TokenBucket:
    """`rate` tokens per second, bursts up to `capacity`. `acquire(n)` waits until n tokens are there."""

    def __init__(self, rate: float, capacity: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = max(1.0, capacity if capacity is not None else rate)
        self._tokens = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def delay_for(self, tokens: float) -> float:
        """Seconds until `tokens` could be taken (0 when available now); takes nothing."""
        self._refill()
        missing = min(tokens, self.capacity) - self._tokens
        return 0.0 if missing <= 0 else missing / self.rate

    async def acquire(self, tokens: float = 1.0) -> None:
        # A request bigger than the bucket drains it fully, then waits for the remainder: never deadlocks.
        async with self._lock:
            remaining = tokens
            while remaining > 0:
                take = min(remaining, self.capacity)
                delay = self.delay_for(take)
                if delay > 0:
                    await asyncio.sleep(delay)
                    self._refill()
                self._tokens -= take
                remaining -= take


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint as requests see it (``url`` and ``headers`` carry the credential, so they stay out of
    reprs) and as people see it (:attr:`display`, from the registry's key-free URL)."""

    id: int
    url: str = field(repr=False)
    priority: int
    weight: int
    rate_limit: int  # requests per second, 0 = unlimited
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    shown_as: str = ""  # what status and logs show: the registry's URL, without the credential applied
    masks: tuple[str, ...] = field(default=(), repr=False)  # forms of the key to blank out of error texts

    @property
    def display(self) -> str:
        return display_url(self.shown_as or self.url)


def display_url(url: str) -> str:
    """The URL without user info or query string: what status and logs may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class AllEndpointsDown(Exception):
    def __init__(self, retry_after: float, last_error: str) -> None:
        super().__init__(f"every RPC endpoint is failing; next try in {retry_after:.1f}s ({last_error})")
        self.retry_after = retry_after
        self.last_error = last_error


@dataclass
class _Endpoint:
    spec: EndpointSpec
    client: JsonRpcClient
    bucket: TokenBucket | None
    failures: int = 0
    cool_until: float = 0.0
    last_error: str = ""
    requests: int = 0


class RateLimitedClient:
    """A JsonRpcClient whose calls first take tokens from the endpoint's bucket."""

    def __init__(self, endpoint: _Endpoint) -> None:
        self._endpoint = endpoint
        self.endpoint_id = endpoint.spec.id
        self.url = endpoint.spec.display

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        await self._take(1)
        return await self._endpoint.client.call(method, params)

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        await self._take(len(calls))
        return await self._endpoint.client.batch(calls)

    async def _take(self, cost: int) -> None:
        self._endpoint.requests += cost
        if self._endpoint.bucket is not None:
            await self._endpoint.bucket.acquire(cost)


@dataclass
class PoolEvents:
    """Hooks the worker uses for metrics and status."""

    on_failure: Callable[[int, str, str], None] = lambda endpoint_id, url, error: None
    on_success: Callable[[int, str], None] = lambda endpoint_id, url: None


@dataclass
class EndpointPool:
    session: aiohttp.ClientSession
    timeout: float
    base_cooldown: float = 1.0
    max_cooldown: float = 30.0
    events: PoolEvents = field(default_factory=PoolEvents)
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    _endpoints: list[_Endpoint] = field(default_factory=list)
    current: RateLimitedClient | None = None
    last_error: str = ""

    def configure(self, specs: Sequence[EndpointSpec]) -> None:
        """Adopt the registry's endpoint list, keeping the health state of endpoints that stay."""
        known = {(e.spec.id, e.spec.url): e for e in self._endpoints}
        endpoints = []
        for spec in sorted(specs, key=lambda s: (s.priority, -s.weight, s.id)):
            existing = known.get((spec.id, spec.url))
            if existing is not None and existing.spec == spec:
                endpoints.append(existing)
                continue
            client = JsonRpcClient(self.session, spec.url, timeout=self.timeout, headers=dict(spec.headers),
                                   masks=spec.masks)
            bucket = TokenBucket(spec.rate_limit, clock=self.clock) if spec.rate_limit > 0 else None
            endpoint = _Endpoint(spec, client, bucket)
            if existing is not None:
                endpoint.failures, endpoint.cool_until = existing.failures, existing.cool_until
            endpoints.append(endpoint)
        self._endpoints = endpoints

    @property
    def size(self) -> int:
        return len(self._endpoints)

    def candidates(self) -> list[_Endpoint]:
        """Endpoints to try, in order: by priority; inside one, a weighted shuffle, standbys last."""
        now = self.clock()
        ready = [e for e in self._endpoints if e.cool_until <= now]
        order: list[_Endpoint] = []
        for priority in sorted({e.spec.priority for e in ready}):
            tier = [e for e in ready if e.spec.priority == priority]
            weighted = [e for e in tier if e.spec.weight > 0]
            standby = [e for e in tier if e.spec.weight <= 0]
            while weighted:
                pick = self.rng.choices(weighted, weights=[e.spec.weight for e in weighted])[0]
                order.append(pick)
                weighted.remove(pick)
            order.extend(standby)
        return order

    async def run(self, work: Callable[[RateLimitedClient], Awaitable[T]]) -> T:
        """Run `work` on the best endpoint, failing over to the next on EndpointFailure."""
        if not self._endpoints:
            raise AllEndpointsDown(self.base_cooldown, "no active RPC endpoint in the chain registry")
        for endpoint in self.candidates():
            client = RateLimitedClient(endpoint)
            try:
                result = await work(client)
            except EndpointFailure as exc:
                self._failed(endpoint, str(exc), rate_limited=exc.rate_limited)
                continue
            endpoint.failures = 0
            endpoint.last_error = ""
            self.current = client
            self.events.on_success(endpoint.spec.id, client.url)
            return result
        now = self.clock()
        retry_after = max(0.05, min(e.cool_until for e in self._endpoints) - now)
        raise AllEndpointsDown(retry_after, self.last_error)

    def _failed(self, endpoint: _Endpoint, error: str, *, rate_limited: bool) -> None:
        endpoint.failures += 1
        delay = min(self.max_cooldown, self.base_cooldown * 2 ** (endpoint.failures - 1))
        if rate_limited:
            delay = min(delay, self.base_cooldown)
        endpoint.cool_until = self.clock() + delay * self.rng.uniform(0.5, 1.5)
        url = endpoint.spec.display
        endpoint.last_error = error
        self.last_error = f"{url}: {error}"
        self.events.on_failure(endpoint.spec.id, url, error)

    def describe(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {"id": e.spec.id, "url": e.spec.display, "priority": e.spec.priority,
             "weight": e.spec.weight, "cooling_for": max(0.0, e.cool_until - now), "failures": e.failures,
             "last_error": e.last_error, "requests": e.requests}
            for e in self._endpoints
        ]

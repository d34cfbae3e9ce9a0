"""The metadata worker: claim due tokens, read their URIs, fetch and parse documents, write a batch at once.

One batch: claim up to ``batch_size`` due pending tokens (a leased claim, so several catalog processes,
and ``pipelines`` loops inside one, work side by side), read their token URIs per chain with batched
``eth_call``, fetch every document concurrently (global and per-host limits in the fetcher), normalise
their attributes into traits, and write all outcomes in one transaction. After the commit,
``on_change(collection_ids, token_ids)`` is awaited (the gateway's cache invalidation hangs there).

Retries: a transient failure leaves the token pending with ``metadata_next_attempt_at`` pushed out by
exponential backoff with jitter (``retry_base * 2^(attempt-1)``, capped, times 0.5-1.5); after
``max_attempts`` it is failed with the last reason. A permanent failure fails it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
from prometheus_client import Counter, Histogram

from mintplane.catalog.metadata.chain import ChainReader, UriRead
from mintplane.catalog.metadata.document import JsonLimits, Metadata, extract, parse_json
from mintplane.catalog.metadata.failures import MetadataFailure, TransientFailure
from mintplane.catalog.metadata.fetch import Fetcher, FetchLimits
from mintplane.catalog.metadata.store import Claimed, MetadataStore, Outcome, Saved
from mintplane.catalog.metadata.uris import InlineDocument, UriRules, document_target
from mintplane.catalog.settings import CatalogSettings
from mintplane.catalog.traits import NormalizedTrait, normalize_attributes
from mintplane.common.log import get_logger
from mintplane.common.registry_client import RegistryClient

log = get_logger(__name__)

OnChange = Callable[[set[UUID], set[UUID]], Awaitable[None]]

FETCHES = Counter("mintplane_catalog_metadata_fetches_total",
                  "Token metadata attempts, by where the document came from and the outcome.", ["source", "outcome"])
FETCH_SECONDS = Histogram("mintplane_catalog_metadata_fetch_seconds", "Time to get and parse one document.",
                          ["source"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20))
BATCH_SECONDS = Histogram("mintplane_catalog_metadata_batch_seconds", "Time of one metadata batch, claim to commit.",
                          buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40))
STAGE_SECONDS = Counter("mintplane_catalog_metadata_stage_seconds_total",
                        "Time spent per stage of metadata batches (claim, uris, documents, traits, save).", ["stage"])
URI_READS = Counter("mintplane_catalog_metadata_uri_reads_total", "tokenURI/uri eth_calls, by outcome.", ["outcome"])


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 30.0
    max_seconds: float = 6 * 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``, jittered (0.5-1.5x) so a failing host is not hit in waves."""
        raw = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, attempt - 1))
        return float(raw * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not cryptography


@dataclass
class WorkerStats:
    batches: int = 0
    ok: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0  # outcomes of tokens refreshed while they were being fetched
    errors: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def _stage(name: str, since: float) -> float:
    now = time.monotonic()
    STAGE_SECONDS.labels(name).inc(now - since)
    return now


def source_of(uri: str | None) -> str:
    """A low-cardinality label for metrics: data, ipfs, arweave, https, http, other, none."""
    if uri is None:
        return "none"
    scheme = urlsplit(uri.strip()[:16]).scheme.lower()
    return {"data": "data", "ipfs": "ipfs", "ar": "arweave", "https": "https", "http": "http"}.get(scheme, "other")


class MetadataWorker:
    def __init__(
        self, store: MetadataStore, reader: ChainReader, fetcher: Fetcher, *, rules: UriRules,
        json_limits: JsonLimits | None = None, retry: RetryPolicy | None = None, batch_size: int = 200,
        idle_seconds: float = 1.0, lease_seconds: float = 300.0, chains: Sequence[str] = (), pipelines: int = 1,
        on_change: OnChange | None = None,
    ) -> None:
        self._store = store
        self._reader = reader
        self._fetcher = fetcher
        self._rules = rules
        self._json = json_limits or JsonLimits()
        self._retry = retry or RetryPolicy()
        self._batch_size = batch_size
        self._idle = idle_seconds
        self._lease = lease_seconds
        self._chains = tuple(chains)
        self._pipelines = max(1, pipelines)
        self.on_change = on_change
        self.stats = WorkerStats()

    async def run(self) -> None:
        """Work until cancelled; database or registry trouble is logged and retried, never fatal."""
        log.info("metadata worker started", chains=list(self._chains) or "all", batch_size=self._batch_size)
        try:
            await asyncio.gather(*(self._loop() for _ in range(self._pipelines)))
        finally:
            await self.close()

    async def _loop(self) -> None:
        failures = 0
        while True:
            try:
                done = await self.run_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.stats.errors += 1
                log.warning("metadata batch failed; retrying", error=f"{type(exc).__name__}: {str(exc)[:300]}")
                await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)) * random.uniform(0.5, 1.5))  # noqa: S311
                continue
            if done == 0:
                await asyncio.sleep(self._idle)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._fetcher.close()
        with contextlib.suppress(Exception):
            await self._reader.close()

    async def run_once(self) -> int:
        """One batch; the number of tokens claimed (0: nothing was due)."""
        started = time.monotonic()
        claimed = await self._store.claim(self._batch_size, self._chains, self._lease)
        if not claimed:
            return 0
        mark = _stage("claim", started)
        uris = await self._read_uris(claimed)
        mark = _stage("uris", mark)
        # Half the lease: a batch saves well before another worker may claim its tokens again.
        budget = asyncio.get_running_loop().time() + self._lease / 2
        outcomes = await asyncio.gather(*(self._process(token, uris[token.id], budget) for token in claimed))
        mark = _stage("documents", mark)
        traits: dict[UUID, list[NormalizedTrait]] = {}
        for outcome in outcomes:
            if outcome.metadata is not None:
                found, skipped = normalize_attributes(outcome.metadata.attributes)
                traits[outcome.token.id] = found
                if skipped:
                    log.debug("attributes skipped", token=str(outcome.token.id), reasons=skipped[:5])
        mark = _stage("traits", mark)
        try:
            saved = await self._store.save(outcomes, traits)
        except asyncpg.DataError as exc:  # one value PostgreSQL refuses must not hold the whole batch back
            log.warning("metadata batch refused by the database; saving token by token", error=str(exc)[:200])
            saved = await self._save_one_by_one(outcomes, traits)
        _stage("save", mark)
        BATCH_SECONDS.observe(time.monotonic() - started)
        self._count(outcomes, saved.tokens)
        if self.on_change is not None and saved.tokens:
            try:
                await self.on_change(saved.collections, saved.tokens)
            except Exception as exc:  # a listener's failure must not undo or repeat a committed batch
                log.warning("metadata on_change listener failed", error=f"{type(exc).__name__}: {exc}")
        return len(claimed)

    async def _save_one_by_one(self, outcomes: Sequence[Outcome],
                               traits: dict[UUID, list[NormalizedTrait]]) -> Saved:
        tokens: set[UUID] = set()
        collections: set[UUID] = set()
        for outcome in outcomes:
            try:
                saved = await self._store.save([outcome], traits)
            except asyncpg.DataError as exc:
                reason = f"metadata could not be stored: {type(exc).__name__}"
                saved = await self._store.save([Outcome(outcome.token, "failed", error=reason,
                                                        attempts=outcome.attempts or 1)])
            tokens |= saved.tokens
            collections |= saved.collections
        return Saved(tokens, collections)

    async def _read_uris(self, claimed: Sequence[Claimed]) -> dict[UUID, str | MetadataFailure]:
        by_chain: dict[str, list[Claimed]] = defaultdict(list)
        for token in claimed:
            by_chain[token.chain_id].append(token)
        chains = sorted(by_chain)
        answers = await asyncio.gather(*(
            self._reader.read(chain, [UriRead(t.contract, t.token_number, t.standard) for t in by_chain[chain]])
            for chain in chains
        ))
        uris: dict[UUID, str | MetadataFailure] = {}
        for chain, results in zip(chains, answers, strict=True):
            for token, result in zip(by_chain[chain], results, strict=True):
                uris[token.id] = result
                URI_READS.labels("failed" if isinstance(result, MetadataFailure) else "ok").inc()
        return uris

    async def _process(self, token: Claimed, uri: str | MetadataFailure, budget: float) -> Outcome:
        if isinstance(uri, MetadataFailure):
            return self._failure(token, None, uri)
        source = source_of(uri)
        started = time.monotonic()
        try:
            try:
                async with asyncio.timeout_at(budget):
                    metadata = await self._document(token, uri)
            except TimeoutError:
                raise TransientFailure("not fetched within the batch's time (its host is slow or busy)") from None
        except MetadataFailure as failure:
            outcome = self._failure(token, uri, failure)
        else:
            outcome = Outcome(token, "ok", url=uri, metadata=metadata, attempts=0)
        FETCH_SECONDS.labels(source).observe(time.monotonic() - started)
        FETCHES.labels(source, "retry" if outcome.status == "pending" else outcome.status).inc()
        return outcome

    async def _document(self, token: Claimed, uri: str) -> Metadata:
        target = document_target(uri, token.token_number, token.standard, self._rules, attempt=token.attempts)
        body = target.body if isinstance(target, InlineDocument) else (await self._fetcher.fetch(target.url)).body
        return extract(parse_json(body, self._json), self._rules)

    def _failure(self, token: Claimed, uri: str | None, failure: MetadataFailure) -> Outcome:
        attempts = token.attempts + 1
        if failure.transient and attempts < self._retry.max_attempts:
            return Outcome(token, "pending", url=uri, attempts=attempts, retry_in=self._retry.delay(attempts))
        reason = failure.reason
        if failure.transient and attempts > 1:
            reason = f"{reason} (gave up after {attempts} attempts)"
        return Outcome(token, "failed", url=uri, error=reason[:500], attempts=attempts)

    def _count(self, outcomes: Sequence[Outcome], saved: set[UUID]) -> None:
        self.stats.batches += 1
        for outcome in outcomes:
            if outcome.token.id not in saved:
                self.stats.dropped += 1
            elif outcome.status == "ok":
                self.stats.ok += 1
            elif outcome.status == "pending":
                self.stats.retried += 1
            else:
                self.stats.failed += 1
                key = (outcome.error or "")[:60]
                self.stats.by_reason[key] = self.stats.by_reason.get(key, 0) + 1


def rules_from(settings: CatalogSettings) -> UriRules:
    return UriRules.of(settings.metadata_ipfs_gateways, settings.metadata_arweave_gateways,
                       settings.metadata_allow_hosts, settings.metadata_max_bytes)


def make_worker(settings: CatalogSettings, pool: asyncpg.Pool[Any], registry: RegistryClient, *,
                on_change: OnChange | None = None, pipelines: int = 2) -> MetadataWorker:
    """A worker configured by the catalog's ``metadata_*`` settings."""
    rules = rules_from(settings)
    fetcher = Fetcher(rules, FetchLimits(
        connect_timeout=settings.metadata_connect_timeout_seconds,
        total_timeout=settings.metadata_total_timeout_seconds, idle_timeout=settings.metadata_idle_timeout_seconds,
        min_bytes_per_second=settings.metadata_min_bytes_per_second,
        min_rate_grace=settings.metadata_min_rate_grace_seconds, max_bytes=settings.metadata_max_bytes,
        max_redirects=settings.metadata_max_redirects, per_host=settings.metadata_per_host_concurrency,
        concurrency=settings.metadata_concurrency,
    ))
    reader = ChainReader(registry, batch_size=settings.metadata_rpc_batch_size,
                         timeout=settings.metadata_rpc_timeout_seconds,
                         cache_seconds=settings.metadata_registry_cache_seconds)
    return MetadataWorker(
        MetadataStore(pool), reader, fetcher, rules=rules,
        json_limits=JsonLimits(settings.metadata_max_json_depth, settings.metadata_max_json_elements),
        retry=RetryPolicy(settings.metadata_max_attempts, settings.metadata_retry_base_seconds,
                          settings.metadata_retry_max_seconds),
        batch_size=settings.metadata_batch_size, idle_seconds=settings.metadata_idle_seconds,
        lease_seconds=settings.metadata_lease_seconds, chains=settings.metadata_chains, pipelines=pipelines,
        on_change=on_change,
    )

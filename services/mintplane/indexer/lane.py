"""One indexing lane: a chain's follower, or one backfill range, from its checkpoint onwards.

Per batch [a, b] (b at most head - confirmations, or the backfill's end):

1. read headers and logs consistently on one endpoint (:mod:`mintplane.indexer.chain`); the next batch
   is read while this one is written;
2. decode; write raw events and outbox entries to MongoDB (idempotent ids, duplicates ignored);
3. one PostgreSQL transaction: transfers, balance deltas, checkpoint (b, hash of b). This makes the batch
   done; only now are its outbox entries handed to the publisher.

Crash anywhere and the restart resumes from the checkpoint: step 2 rewrites nothing new, entries of an
uncommitted batch are discarded before publishing starts (:meth:`Lane.recover`), so nothing is lost,
nothing stored twice, and messages go out at least once. A parent-hash mismatch rolls back to the common
ancestor (:meth:`Lane.handle_reorg`) and queues retractions for the orphaned transfers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from mintplane.common.jsonrpc import RangeTooLarge, RpcError
from mintplane.common.log import get_logger
from mintplane.indexer import metrics
from mintplane.indexer.chain import (
    Batch,
    ChainMoved,
    ReorgDetected,
    block_number,
    headers,
    read_batch,
    split_batch,
)
from mintplane.indexer.decode import decode_logs
from mintplane.indexer.documents import EventDocuments, OutboxEntry
from mintplane.indexer.endpoints import AllEndpointsDown, EndpointPool, RateLimitedClient
from mintplane.indexer.events import Standard, Transfer
from mintplane.indexer.outbox import SeqClock, entries_for
from mintplane.indexer.publisher import OutboxPublisher
from mintplane.indexer.ranges import AdaptiveRange, RangeCannotShrink
from mintplane.indexer.registry import (
    ChainConfig,
    ChainNotFound,
    RegistryClient,
    RegistryUnavailable,
    TrackedContract,
    resolve_endpoint,
)
from mintplane.indexer.reorg import find_common_ancestor
from mintplane.indexer.repository import TRANSIENT_STORAGE_ERRORS, Checkpoint, HistoryMissing, IndexerRepository
from mintplane.indexer.status import LaneStatus, State

log = get_logger(__name__)


class LaneFailed(Exception):
    """A lane cannot go on (bad backfill request, chain unknown, another writer on its checkpoint)."""


@dataclass(frozen=True)
class LaneSpec:
    chain: str  # CAIP-2
    scope: str  # checkpoint key: the chain for its follower, <chain>@backfill:<digest> for a backfill
    confirmations: int
    first_block: int | None = None  # backfill: first block; follower: where a new checkpoint starts
    target_block: int | None = None  # backfill: last block (inclusive); follower: None
    contracts: tuple[str, ...] | None = None  # backfill subset (lowercase); None: every tracked contract


@dataclass(frozen=True)
class Tuning:
    initial_range: int = 100
    max_range: int = 5_000
    target_logs: int = 5_000
    poll_interval: float = 1.0
    verify_window: int = 128  # blocks below the head where every log's block hash is checked
    max_reorg_depth: int = 1_000
    max_outbox_pending: int = 20_000
    registry_refresh: float = 30.0
    stall_seconds: float = 120.0
    backlog_blocks: int = 20  # lag above which the follower reports BACKFILLING rather than FOLLOWING


@dataclass(frozen=True)
class _Staged:
    """A batch whose MongoDB writes are done and whose PostgreSQL commit is next."""

    batch: Batch
    transfers: list[Transfer]
    skipped: int
    entries: list[OutboxEntry]
    started: float


@dataclass
class _Scope:
    """The contracts this lane reads right now."""

    addresses: list[str]
    standards: dict[str, Standard]
    start_blocks: dict[str, int]


class Lane:
    def __init__(
        self, spec: LaneSpec, tuning: Tuning, *, repository: IndexerRepository, documents: EventDocuments,
        publisher: OutboxPublisher, pool: EndpointPool, registry: RegistryClient, status: LaneStatus,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.tuning = tuning
        self._repo = repository
        self._docs = documents
        self._publisher = publisher
        self._pool = pool
        self._registry = registry
        self.status = status
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._range = AdaptiveRange(size=tuning.initial_range, maximum=tuning.max_range,
                                    target_logs=tuning.target_logs)
        self._seq = SeqClock()
        self._config: ChainConfig | None = None
        self._config_at = 0.0
        self._scope = _Scope([], {}, {})
        self._checkpoint: Checkpoint | None = None
        self._head = 0
        self._head_at = 0.0
        self._failures = 0
        self._committing: asyncio.Task[None] | None = None
        status.outbox_pending = lambda: publisher.pending
        status.outbox_error = lambda: publisher.last_error

    @property
    def checkpoint(self) -> Checkpoint:
        assert self._checkpoint is not None
        return self._checkpoint

    def endpoints(self) -> list[dict[str, Any]]:
        """The endpoint pool as it stands (health, cool-downs, request counts), for status and tests."""
        return self._pool.describe()

    @property
    def opened(self) -> Checkpoint | None:
        """The checkpoint once the lane has opened it (None while starting)."""
        return self._checkpoint

    # ------------------------------------------------------------------------------------------ main loop

    async def run(self) -> None:
        """Index until cancelled (follower) or until the target block is done and published (backfill).

        Three batches are in flight at once: batch N+2 is read from the node while batch N+1 is written to
        MongoDB and batch N is committed to PostgreSQL. Each commit still follows its own MongoDB writes
        and the previous commit, which is all crash safety needs (see :meth:`recover`).
        """
        await self._configure(force=True)
        await self._open_checkpoint()
        await self.recover()
        reading: asyncio.Task[Batch] | None = None
        try:
            while True:
                if reading is None:
                    await self._settle_commit()  # plan from a checkpoint that includes every staged batch
                    if self._done():
                        self.status.state = State.BACKFILLING
                        await self._publisher.drain()
                        log.info("backfill done", scope=self.spec.scope, last_block=self.checkpoint.last_block)
                        return
                    reading = await self._start_next_read(self.checkpoint.last_block, self.checkpoint.last_block_hash)
                    if reading is None:
                        continue
                batch = await self._await_read(reading)
                reading = None
                if batch is None:
                    continue
                reading = await self._start_next_read(batch.last, batch.last_header.hash)
                self._range.on_success(batch.blocks, len(batch.logs))
                for part in split_batch(batch, self.tuning.target_logs):
                    staged = await self._stage(part)
                    await self._settle_commit()
                    self._committing = asyncio.get_running_loop().create_task(self._commit(staged))
        finally:
            for task in (reading, self._committing):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
            self._committing = None

    async def _settle_commit(self) -> None:
        """Wait for the batch being committed (its error, if any, ends the lane as before)."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await committing

    async def _tip_replaced(self) -> bool:
        """Caught up: is our last block still canonical? A reorg at the same height (or a chain that got
        shorter) shows no new block whose parent could disagree, so the tip itself is checked."""
        checkpoint = self.checkpoint
        if checkpoint.last_block_hash is None:
            return False
        try:
            found = await self._pool.run(lambda client: headers(client, [checkpoint.last_block], missing_ok=True))
        except (AllEndpointsDown, RpcError):
            return False  # the next round tries again
        tip = found.get(checkpoint.last_block)
        if tip is not None and tip.hash == checkpoint.last_block_hash:
            return False
        log.warning("tip replaced", scope=self.spec.scope, block=checkpoint.last_block,
                    now=tip.hash if tip else "missing")
        await self._reorg_guarded()
        return True

    def _done(self) -> bool:
        target = self.spec.target_block
        return target is not None and self._checkpoint is not None and self.checkpoint.last_block >= target

    async def _start_next_read(self, last: int, last_hash: str | None) -> asyncio.Task[Batch] | None:
        """Plan the range after `last` and start reading it; None when there is nothing to read yet."""
        if self.spec.target_block is not None and last >= self.spec.target_block:
            return None
        await self._configure()
        if self.status.state is State.DISABLED:
            await asyncio.sleep(self.tuning.poll_interval)
            return None
        end = await self._end_block(refresh=False)
        if end is None:
            return None
        if last >= end:
            if last != self.checkpoint.last_block:
                return None  # read-ahead while a batch is being written: plan again after the write
            end = await self._end_block(refresh=True)
            if end is None:
                return None
            if last >= end:
                if self.spec.target_block is None:
                    self.status.state = State.FOLLOWING
                self.status.idle()
                if await self._tip_replaced():
                    return None
                await asyncio.sleep(self.tuning.poll_interval)
                return None
        first = last + 1
        final = min(end, first + self._range.size - 1)
        verify = final > self._head - self.tuning.verify_window
        addresses = list(self._scope.addresses)

        async def work(client: RateLimitedClient) -> Batch:
            return await read_batch(client, first, final, addresses, expected_parent=last_hash, verify_logs=verify)

        return asyncio.get_running_loop().create_task(self._pool.run(work))

    async def _await_read(self, reading: asyncio.Task[Batch]) -> Batch | None:
        started = time.perf_counter()
        try:
            batch = await reading
        except ReorgDetected as exc:
            log.warning("reorg detected", scope=self.spec.scope, at_block=exc.block)
            await self._reorg_guarded()
            return None
        except RangeTooLarge as exc:
            metrics.RANGE_SPLITS.labels(self.spec.scope).inc()
            try:
                self._range.on_too_large(self._range.size, exc.hint)
            except RangeCannotShrink as cannot:
                await self._trouble(f"eth_getLogs refused a single block: {exc.message} ({cannot})")
            return None
        except ChainMoved as exc:
            log.info("chain moved while reading; reading again", scope=self.spec.scope, reason=str(exc))
            return None
        except AllEndpointsDown as exc:
            self.status.state = State.ENDPOINTS_DOWN
            self.status.last_error = str(exc)
            log.warning("all endpoints down", scope=self.spec.scope, retry_after=round(exc.retry_after, 2),
                        error=exc.last_error)
            await asyncio.sleep(exc.retry_after)
            return None
        except RpcError as exc:
            await self._trouble(f"json-rpc: {exc.message}")
            return None
        metrics.BATCH_SECONDS.labels(self.spec.scope, "read").observe(time.perf_counter() - started)
        self._note_endpoint()
        return batch

    async def _reorg_guarded(self) -> None:
        await self._settle_commit()
        try:
            await self.handle_reorg()
        except AllEndpointsDown as down:  # the next read detects the reorg again
            self.status.state = State.ENDPOINTS_DOWN
            self.status.last_error = str(down)
            await asyncio.sleep(down.retry_after)
        except RpcError as error:
            await self._trouble(f"reorg handling: {error.message}")

    async def _trouble(self, error: str) -> None:
        self._failures += 1
        self.status.last_error = error
        log.warning("lane problem; backing off", scope=self.spec.scope, error=error, attempt=self._failures)
        await asyncio.sleep(min(30.0, 0.5 * 2 ** min(self._failures, 6)) * self._rng.uniform(0.5, 1.5))

    def _note_endpoint(self) -> None:
        current = self._pool.current
        if current is not None:
            self.status.endpoint_id, self.status.endpoint_url = current.endpoint_id, current.url

    async def _end_block(self, *, refresh: bool) -> int | None:
        """Last block to index now: head - confirmations, capped by the backfill's target."""
        now = time.monotonic()
        if refresh or not self._head or now - self._head_at > self.tuning.poll_interval:
            try:
                self._head = await self._pool.run(block_number)
            except AllEndpointsDown as exc:
                self.status.state = State.ENDPOINTS_DOWN
                self.status.last_error = str(exc)
                await asyncio.sleep(exc.retry_after)
                return None
            except RpcError as exc:
                await self._trouble(f"eth_blockNumber: {exc.message}")
                return None
            self._head_at = now
            self._note_endpoint()
            self.status.head_block = self._head
            metrics.HEAD_BLOCK.labels(self.spec.chain).set(self._head)
            if self.status.state is State.ENDPOINTS_DOWN:
                self.status.state = State.STARTING
                self.status.last_error = ""
        end = self._head - self.spec.confirmations
        if self.spec.target_block is not None:
            end = min(end, self.spec.target_block)
        lag = self._head - self.spec.confirmations - self.checkpoint.last_block
        metrics.LAG_BLOCKS.labels(self.spec.scope).set(max(0, lag))
        if self.spec.target_block is not None or lag > self.tuning.backlog_blocks:
            self.status.state = State.BACKFILLING
        else:
            self.status.state = State.FOLLOWING
        return end

    # ---------------------------------------------------------------------------------------- writing

    async def _stage(self, batch: Batch) -> _Staged:
        """Decode and write the batch's raw events and outbox entries (idempotent; not yet "done")."""
        started = time.perf_counter()
        decoded = decode_logs(self.spec.chain, batch.logs, self._scope.standards, self._scope.start_blocks,
                              batch.timestamps)
        entries = entries_for(self.spec.scope, decoded.transfers, "transfer", self.checkpoint.reorg_epoch, self._seq)
        metrics.BATCH_SECONDS.labels(self.spec.scope, "decode").observe(time.perf_counter() - started)
        await self._publisher.wait_below(self.tuning.max_outbox_pending)
        while True:
            try:
                mongo_started = time.perf_counter()
                await asyncio.gather(self._docs.insert_raw(decoded.transfers), self._docs.enqueue(entries))
                metrics.BATCH_SECONDS.labels(self.spec.scope, "mongo").observe(time.perf_counter() - mongo_started)
                return _Staged(batch, decoded.transfers, decoded.skipped, entries, started)
            except TRANSIENT_STORAGE_ERRORS as exc:  # MongoDB away for a moment: same writes again
                await self._trouble(f"storage: {type(exc).__name__}: {exc}")

    async def _commit(self, staged: _Staged) -> None:
        """One PostgreSQL transaction makes the batch done; only then are its messages handed over."""
        batch, transfers = staged.batch, staged.transfers
        checkpoint = self.checkpoint
        while True:
            try:
                pg_started = time.perf_counter()
                inserted = await self._repo.apply_batch(
                    self.spec.scope, expected_last=checkpoint.last_block, transfers=transfers,
                    last_block=batch.last, last_hash=batch.last_header.hash,
                )
                metrics.BATCH_SECONDS.labels(self.spec.scope, "postgres").observe(time.perf_counter() - pg_started)
                break
            except HistoryMissing as exc:
                self.status.state = State.STALLED
                await self._trouble(str(exc))
            except TRANSIENT_STORAGE_ERRORS as exc:  # a database away for a moment: same batch again
                await self._trouble(f"storage: {type(exc).__name__}: {exc}")
        self._publisher.hand_over(staged.entries)
        self._failures = 0
        self._checkpoint = _advanced(checkpoint, batch.last, batch.last_header.hash)
        self.status.last_error = ""
        self.status.record_batch(batch.blocks, len(batch.logs), batch.last, batch.last_header.hash)
        metrics.BLOCKS.labels(self.spec.scope).inc(batch.blocks)
        metrics.LOGS.labels(self.spec.scope).inc(len(batch.logs))
        metrics.TRANSFERS.labels(self.spec.scope).inc(inserted)
        metrics.SKIPPED_LOGS.labels(self.spec.scope).inc(staged.skipped)
        metrics.INDEXED_BLOCK.labels(self.spec.scope).set(batch.last)
        metrics.BATCH_SECONDS.labels(self.spec.scope, "total").observe(time.perf_counter() - staged.started)

    # ------------------------------------------------------------------------------- reorgs and recovery

    async def handle_reorg(self) -> None:
        """Roll back to the common ancestor and queue retractions for what was orphaned."""
        async with self._publisher.lock:
            checkpoint = self.checkpoint
            lower = max(0, (self.spec.first_block or 1) - 1)
            contracts = self._contract_filter()

            async def stored(at_or_below: int, above: int, limit: int) -> list[tuple[int, str]]:
                return await self._repo.stored_hashes(self.spec.chain, at_or_below=at_or_below, above=above,
                                                      limit=limit, contracts=contracts)

            async def canonical(numbers: Sequence[int]) -> dict[int, str]:
                found = await self._pool.run(lambda client: headers(client, numbers, missing_ok=True))
                return {n: h.hash for n, h in found.items()}

            ancestor, ancestor_hash = await find_common_ancestor(
                last=checkpoint.last_block, last_hash=checkpoint.last_block_hash, lower_bound=lower,
                max_depth=self.tuning.max_reorg_depth, stored=stored, canonical=canonical,
            )
            orphans, epoch = await self._repo.rollback(
                self.spec.scope, expected_last=checkpoint.last_block, ancestor=ancestor,
                ancestor_hash=ancestor_hash, contracts=contracts,
            )
            depth = checkpoint.last_block - ancestor
            loaded = await self._repo.load_checkpoint(self.spec.scope)
            assert loaded is not None
            self._checkpoint = loaded
            await self._queue_retractions(loaded)
            self._publisher.forget_transfers_above(ancestor)
        self.status.record_reorg(depth)
        self.status.last_block, self.status.last_block_hash = ancestor, ancestor_hash or ""
        metrics.REORGS.labels(self.spec.scope).inc()
        metrics.REORG_DEPTH.labels(self.spec.scope).observe(depth)
        log.warning("rolled back", scope=self.spec.scope, to_block=ancestor, depth=depth, orphaned=len(orphans),
                    epoch=epoch)

    async def _queue_retractions(self, checkpoint: Checkpoint) -> None:
        """Turn the checkpoint's pending retractions into outbox entries, then clear them (crash-safe)."""
        await self._docs.discard_transfers_above(self.spec.scope, checkpoint.last_block)
        pending = checkpoint.pending_retractions
        if pending:
            entries = entries_for(self.spec.scope, pending, "retraction", checkpoint.reorg_epoch, self._seq)
            await self._docs.enqueue(entries)
            await self._docs.delete_raw_blocks(self.spec.chain, {t.block_hash for t in pending})
            await self._repo.clear_pending_retractions(self.spec.scope, checkpoint.reorg_epoch)
            self._publisher.hand_over(entries)
            self._checkpoint = _without_pending(checkpoint)

    async def recover(self) -> None:
        """Before publishing anything: finish an interrupted rollback, drop what an uncommitted batch left."""
        async with self._publisher.lock:
            await self._queue_retractions(self.checkpoint)
            stale = await self._docs.raw_blocks_above(self.spec.chain, self.checkpoint.last_block)
            if stale:
                await self._drop_orphaned_raw(stale)
            await self._publisher.load()

    async def _drop_orphaned_raw(self, stale: dict[int, set[str]]) -> None:
        # Raw events above the checkpoint come from a batch that never committed. Those still on the
        # canonical chain are rewritten identically by the replay; the others are orphans.
        while True:
            try:
                found = await self._pool.run(lambda client: headers(client, stale, missing_ok=True))
                break
            except AllEndpointsDown as exc:
                self.status.state = State.ENDPOINTS_DOWN
                self.status.last_error = str(exc)
                await asyncio.sleep(exc.retry_after)
        orphaned = {h for n, hashes in stale.items() for h in hashes if n not in found or found[n].hash != h}
        removed = await self._docs.delete_raw_blocks(self.spec.chain, orphaned)
        if removed:
            log.info("dropped raw events of orphaned blocks", scope=self.spec.scope, removed=removed)

    # ------------------------------------------------------------------------------------ configuration

    def _contract_filter(self) -> list[str] | None:
        return list(self.spec.contracts) if self.spec.contracts is not None else None

    async def _configure(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._config_at < self.tuning.registry_refresh:
            return
        while True:
            try:
                config = await self._registry.get_chain_config(self.spec.chain)
                break
            except ChainNotFound as exc:
                raise LaneFailed(str(exc)) from None
            except RegistryUnavailable as exc:
                self.status.last_error = str(exc)
                if self._config is not None:  # keep going on the last known configuration
                    self._config_at = now
                    return
                log.warning("chain registry unavailable; retrying", chain=self.spec.chain, error=str(exc))
                await asyncio.sleep(2.0 * self._rng.uniform(0.5, 1.5))
        self._config, self._config_at = config, now
        if not config.enabled:
            self.status.state = State.DISABLED
            return
        if self.status.state is State.DISABLED:
            self.status.state = State.STARTING
        self._apply_config(config)

    def _apply_config(self, config: ChainConfig) -> None:
        specs = []
        for endpoint in config.endpoints:
            try:
                specs.append(resolve_endpoint(endpoint))
            except ValueError as exc:
                self.status.last_error = str(exc)
                log.warning("endpoint skipped", chain=self.spec.chain, endpoint_id=endpoint.id, error=str(exc))
        self._pool.configure(specs)
        tracked = {c.address: c for c in config.token_contracts}
        if self.spec.contracts is not None:
            unknown = sorted(set(self.spec.contracts) - set(tracked))
            if unknown:
                raise LaneFailed(
                    f"contracts not tracked as ERC-721/ERC-1155 on {self.spec.chain} in the chain registry: "
                    + ", ".join(unknown)
                )
            chosen: Sequence[TrackedContract] = [tracked[a] for a in self.spec.contracts]
        else:
            chosen = list(tracked.values())
        self._scope = _Scope(
            addresses=sorted(c.address for c in chosen),
            standards={c.address: "ERC1155" if c.standard == "ERC1155" else "ERC721" for c in chosen},
            start_blocks={c.address: c.start_block for c in chosen},
        )
        self.status.tracked_contracts = len(chosen)

    async def _open_checkpoint(self) -> None:
        existing = await self._repo.load_checkpoint(self.spec.scope)
        if existing is None:
            start = await self._start_block()
            last = max(0, start - 1)
            last_hash = None
            if last > 0:
                found = await self._pool.run(lambda client: headers(client, [last]))
                last_hash = found[last].hash
            existing = await self._repo.ensure_checkpoint(
                self.spec.scope, last_block=last, last_block_hash=last_hash, first_block=start,
                target_block=self.spec.target_block, contracts=self._contract_filter(),
            )
        self._checkpoint = existing
        self.status.last_block = existing.last_block
        self.status.last_block_hash = existing.last_block_hash or ""
        self.status.checkpoint_updated_at = existing.updated_at
        self.status.target_block = self.spec.target_block

    async def _start_block(self) -> int:
        if self.spec.first_block is not None:
            return self.spec.first_block
        starts = list(self._scope.start_blocks.values())
        if starts:
            return min(starts)
        head: int = await self._pool.run(block_number)
        return max(0, head - self.spec.confirmations)


def _advanced(checkpoint: Checkpoint, last: int, last_hash: str) -> Checkpoint:
    return replace(checkpoint, last_block=last, last_block_hash=last_hash)


def _without_pending(checkpoint: Checkpoint) -> Checkpoint:
    return replace(checkpoint, pending_retractions=[])

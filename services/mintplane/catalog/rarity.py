"""OpenRarity information-content rarity, computed set-based in PostgreSQL, explainable per trait.

The model is exactly what the ``open-rarity`` package (0.7.5, ``RarityRanker.rank_collection`` with its
``InformationContentScoringHandler``) computes; the integration tests compare with it on generated collections:

- the collection is its ranked tokens: metadata read (``metadata_status = 'ok'``) and not burned; pending or
  failed tokens are left unranked rather than counted as tokens with every trait missing;
- only string traits count; number and date traits (``value_type`` number/date) are left out of the score,
  as OpenRarity's scoring handler leaves out its numeric and date attributes;
- a token lacking a string trait carries that trait's "null" value, counted like any other value;
- the trait-count trait ``meta_trait:trait_count`` is added to every token, with the number of the token's
  traits of any type as its value, less string traits whose value is "none" or empty (``Token.trait_count``);
  it is stored as a real trait (``traits.is_meta = true``, shown as "Trait count", after the other traits)
  with one link per ranked token, so it filters, counts in facets and explains like the others;
- a value's information content is ``log2(N / n)``; the collection entropy is ``sum p * log2(1 / p)`` over every
  string value and every non-empty null (the trait-count trait included), replaced by 1 when it is 0; a value's
  contribution (``trait_values.rarity_score``, ``traits.null_rarity_score`` for the null) is its information
  content divided by that entropy, and a token's ``rarity_score`` the sum of its contributions;
- ranks as ``RarityRanker.set_rarity_ranks``: sort by the number of the token's values no other token has
  (unique attribute count, the trait-count value included), then by score, both descending; a score within
  1e-9 (relative, ``math.isclose``) of the previous token's shares its rank (1, 2, 2, 2, 5); the order inside
  a tie (and in the rank index) is then by token number.

Every token's score depends on collection-wide counts, so a changed trait re-scores the whole collection with
the same four statements (:func:`recompute`), never row by row in Python; the :class:`RarityWorker` does that
for collections marked dirty by :func:`mintplane.catalog.trait_store.replace_token_traits`, debounced.

Locking: a recompute holds the collection's advisory lock (the one trait writers take) for its transaction,
so it never reads half a metadata batch, two workers never interleave, and a dirty flag set by a batch that
commits during a recompute is not lost (the batch waits, then sets it again). Its token updates can still
meet the transfer consumer's row locks; a deadlock aborts one side, and the worker retries next round.

Precision: logarithms in ``numeric`` at 30 places; contributions rounded to 15; a token's score is the exact
sum of its contributions (summed as integers of 1e-15), so an explanation adds up to the stored score to the
last digit, and scores agree with open-rarity's floats to about 1e-15 relative.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from mintplane.catalog import rarity_sql as sql
from mintplane.catalog.trait_store import NO_JIT, Connection, lock_collection
from mintplane.common.log import get_logger

log = get_logger(__name__)

OnChange = Callable[[set[UUID], set[UUID]], Awaitable[None]]


@dataclass(frozen=True)
class RarityResult:
    collection_id: UUID
    tokens: int  # ranked tokens
    entropy: Decimal | None  # None when no token is ranked
    changed_tokens: frozenset[UUID]  # tokens whose score or rank changed
    seconds: float
    steps: tuple[tuple[str, float], ...] = ()  # seconds per statement, for logs and the benchmark


@dataclass(frozen=True)
class ExplainedTrait:
    """One line of a token's rarity explanation (the proto TokenTrait's fields)."""

    trait_id: UUID
    trait_name: str
    normalized_name: str
    trait_value_id: UUID | None  # None when missing
    value: str | None  # None when missing
    value_number: Decimal | None
    display_type: str | None
    value_type: str | None
    occurrences: int  # tokens carrying this value (the trait's null count when missing)
    contribution: Decimal | None  # None when not counted (or not yet computed)
    missing: bool
    meta: bool
    counted: bool


async def recompute(conn: Connection, collection_id: UUID, *, wait: bool = True) -> RarityResult | None:
    """Re-score and re-rank one collection in one transaction; ``None`` if ``wait`` is false and it is locked."""
    started = time.perf_counter()
    steps: list[tuple[str, float]] = []

    def step(name: str, since: float) -> float:
        now = time.perf_counter()
        steps.append((name, now - since))
        return now

    async with conn.transaction():
        if wait:
            await lock_collection(conn, collection_id)
        elif not await conn.fetchval(sql.TRY_LOCK, collection_id):
            return None
        await conn.execute(NO_JIT)
        await conn.execute(sql.WORK_MEM)
        at = step("lock", started)
        meta_trait = await conn.fetchval(sql.ENSURE_META_TRAIT, collection_id)
        await conn.execute(sql.SET_TRAIT_COUNTS, collection_id, meta_trait)
        at = step("trait counts", at)
        await conn.execute(sql.TIDY_AFTER_TRAIT_COUNTS, collection_id, meta_trait)
        at = step("tidy", at)
        row = await conn.fetchrow(sql.SCORE, collection_id)
        at = step("score and rank", at)
    step("commit", at)
    assert row is not None
    return RarityResult(collection_id, row["tokens"], row["entropy"], frozenset(row["changed"] or ()),
                        time.perf_counter() - started, tuple(steps))


async def explain(conn: Connection | asyncpg.Pool[Any],
                  token_ids: Iterable[UUID]) -> dict[UUID, list[ExplainedTrait]]:
    """Per token, why it scores what it does, in one query for any number of tokens.

    A ranked token gets one line per counted trait of its collection (its value, or the trait's null when it
    lacks it, and the trait-count trait), whose contributions sum exactly to ``tokens.rarity_score`` as of the
    last recompute, plus its number and date traits with ``counted`` false. An unranked token gets its own
    traits only. Tokens that do not exist are absent from the answer.
    """
    ids = list(dict.fromkeys(token_ids))
    explained: dict[UUID, list[ExplainedTrait]] = {}
    if not ids:
        return explained
    for r in await conn.fetch(sql.EXPLAIN, ids):
        explained.setdefault(r["token_id"], []).append(ExplainedTrait(
            trait_id=r["trait_id"], trait_name=r["trait_name"], normalized_name=r["normalized_name"],
            trait_value_id=r["trait_value_id"], value=r["value_string"], value_number=r["value_number"],
            display_type=r["display_type"], value_type=r["value_type"],
            occurrences=r["null_occurrences"] if r["missing"] else r["occurrences"],
            contribution=r["contribution"], missing=r["missing"], meta=r["is_meta"], counted=r["counted"],
        ))
    return explained


class RarityWorker:
    """Recomputes the collections whose traits changed, debounced per collection.

    Every ``poll_seconds`` it takes the dirty collections; one recomputed less than ``min_interval_seconds``
    ago (or less than twice its last duration, for big collections under steady ingestion) waits for a later
    round, so a burst of metadata batches costs one recompute, not one per batch. Several workers may run: the
    per-collection lock is tried, not waited for, and a locked collection stays dirty for the next round.
    ``on_change(collection_ids, token_ids)`` hears which tokens' scores or ranks changed (cache invalidation).
    Every ``sweep_seconds`` it also marks dirty the collections whose ranked tokens are no longer exactly the
    ones with metadata and not burned (:meth:`sweep`): burns and failed refreshes write no traits.
    """

    def __init__(self, pool: asyncpg.Pool[Any], *, poll_seconds: float = 1.0, min_interval_seconds: float = 5.0,
                 batch: int = 20, sweep_seconds: float = 60.0, on_change: OnChange | None = None) -> None:
        self._pool = pool
        self._poll = poll_seconds
        self._min_interval = min_interval_seconds
        self._batch = batch
        self._sweep_every = sweep_seconds
        self._on_change = on_change
        self._not_before: dict[UUID, float] = {}

    async def run(self) -> None:
        next_sweep = 0.0
        while True:
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self._sweep_every
                    await self.sweep()
                await self.run_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("rarity round failed", error=str(error))
            await asyncio.sleep(self._poll)

    async def sweep(self) -> set[UUID]:
        """Mark dirty the collections whose ranking lost or lacks tokens; returns them."""
        stale = {r["collection_id"] for r in await self._pool.fetch(sql.STALE_COLLECTIONS)}
        for collection_id in sorted(stale):  # one row per statement: no lock held while waiting for another
            await self._pool.execute(sql.MARK_DIRTY, collection_id)
        if stale:
            log.info("rarity out of date", collections=len(stale))
        return stale

    async def run_once(self) -> list[RarityResult]:
        """One round: recompute every due dirty collection; returns what was recomputed."""
        now = time.monotonic()
        dirty = [r["collection_id"] for r in await self._pool.fetch(sql.DIRTY_COLLECTIONS, self._batch * 5)]
        due = [c for c in dirty if self._not_before.get(c, 0.0) <= now][: self._batch]
        done: list[RarityResult] = []
        for collection_id in due:
            result = await self._recompute(collection_id)
            if result is not None:
                done.append(result)
        changed = {r.collection_id for r in done if r.changed_tokens}
        if changed and self._on_change is not None:
            tokens = {t for r in done for t in r.changed_tokens}
            try:
                await self._on_change(changed, tokens)
            except Exception as error:  # a listener's failure must not stop rarity
                log.warning("rarity on_change failed", error=str(error))
        return done

    async def _recompute(self, collection_id: UUID) -> RarityResult | None:
        try:
            async with self._pool.acquire() as conn:
                result = await recompute(conn, collection_id, wait=False)
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as error:
            log.info("rarity recompute retried later", collection_id=str(collection_id), error=str(error))
            return None
        except asyncpg.PostgresError as error:
            self._not_before[collection_id] = time.monotonic() + max(60.0, self._min_interval)
            log.error("rarity recompute failed", collection_id=str(collection_id), error=str(error))
            return None
        if result is None:  # a trait writer or another worker holds the lock: next round
            return None
        self._not_before[collection_id] = time.monotonic() + max(self._min_interval, 2 * result.seconds)
        log.info("rarity recomputed", collection_id=str(collection_id), tokens=result.tokens,
                 changed=len(result.changed_tokens), seconds=round(result.seconds, 3))
        return result

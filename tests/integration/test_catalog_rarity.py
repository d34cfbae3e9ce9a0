"""Rarity against the real ``open-rarity`` package, on generated collections in the dev PostgreSQL.

Each collection is stored the way the metadata worker stores it (``normalize_attributes`` then
``replace_token_traits``), recomputed by the set-based SQL, and compared token by token with open-rarity's
scores and ranks, run on the same normalised traits in its own venv (tests/fixtures/rarity). Explanations
must sum exactly to the stored scores.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import subprocess
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import pytest_asyncio

from mintplane.catalog.rarity import RarityWorker, explain, recompute
from mintplane.catalog.trait_store import replace_token_traits
from mintplane.catalog.traits import NormalizedTrait, normalize_attributes
from mintplane.common.settings import ServiceSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_PYTHON = ROOT / ".dev" / "reference-venv" / "bin" / "python"
REFERENCE_SCRIPT = ROOT / "tests" / "fixtures" / "rarity" / "open_rarity_reference.py"
INSTALL_HINT = ("the open-rarity reference venv is missing: run `bash scripts/install.sh` (its step 'rarity "
                "reference venv' runs `.venv/bin/uv venv --python .venv/bin/python .dev/reference-venv && "
                ".venv/bin/uv pip install --python .dev/reference-venv/bin/python open-rarity==0.7.5`)")

Traits = dict[UUID, list[NormalizedTrait]]


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[asyncpg.Pool[Any]]:
    made = await asyncpg.create_pool(ServiceSettings().pg_dsn.get_secret_value(), min_size=1, max_size=4)
    try:
        yield made
    finally:
        await made.close()


@pytest_asyncio.fixture
async def collection(pool: asyncpg.Pool[Any]) -> AsyncIterator[UUID]:
    chain = f"eip155:{random.randrange(10**8, 10**9)}"
    slug = f"rarity-test-{uuid.uuid4().hex[:12]}"
    collection_id: UUID = await pool.fetchval(
        "INSERT INTO catalog.collections (slug, name, chain_id, contract_address, collection_type, status) "
        "VALUES ($1, $1, $2, $3, 'ERC721', 'live') RETURNING id", slug, chain, "0x" + uuid.uuid4().hex.ljust(40, "0"))
    try:
        yield collection_id
    finally:
        await pool.execute("DELETE FROM catalog.collections WHERE id = $1", collection_id)


async def store(pool: asyncpg.Pool[Any], collection_id: UUID, documents: Sequence[object]) -> Traits:
    """Tokens 1..n with these metadata attributes, stored as the metadata worker stores them."""
    rows = await pool.fetch(
        "INSERT INTO catalog.tokens (collection_id, token_number, metadata_status) "
        "SELECT $1, n::text, 'ok' FROM generate_series(1, $2::int) AS n RETURNING id, token_number",
        collection_id, len(documents))
    by_number = {int(r["token_number"]): r["id"] for r in rows}
    traits: Traits = {by_number[i + 1]: normalize_attributes(doc)[0] for i, doc in enumerate(documents)}
    async with pool.acquire() as conn, conn.transaction():
        await replace_token_traits(conn, collection_id, traits)
    return traits


async def reference(traits: Mapping[UUID, Sequence[NormalizedTrait]]) -> dict[str, Any]:
    if not REFERENCE_PYTHON.exists():
        pytest.fail(INSTALL_HINT)
    payload = {"tokens": [
        {"id": str(token), "traits": [[t.normalized_name, t.value_type,
                                       t.normalized_value if t.value_type == "string" else str(t.value_number)]
                                      for t in token_traits]}
        for token, token_traits in traits.items()]}
    done = await asyncio.to_thread(subprocess.run, [str(REFERENCE_PYTHON), str(REFERENCE_SCRIPT)],
                                   input=json.dumps(payload), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"open-rarity reference failed: {done.stderr[-2000:]}"
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


async def assert_matches_open_rarity(pool: asyncpg.Pool[Any], collection_id: UUID,
                                     traits: Traits) -> dict[UUID, Decimal]:
    """Scores (1e-9 relative), ranks (exactly) and entropy as open-rarity's; explanations sum to the scores."""
    expected = await reference(traits)
    rows = await pool.fetch("SELECT id, rarity_score, rarity_rank FROM catalog.tokens "
                            "WHERE collection_id = $1 AND rarity_score IS NOT NULL", collection_id)
    ours = {r["id"]: (r["rarity_score"], r["rarity_rank"]) for r in rows}
    assert set(map(str, ours)) == set(expected["tokens"])
    bad_scores = [(t, s, expected["tokens"][str(t)]["score"]) for t, (s, _) in ours.items()
                  if not math.isclose(float(s), expected["tokens"][str(t)]["score"], rel_tol=1e-9, abs_tol=1e-12)]
    assert bad_scores == []
    bad_ranks = [(t, r, expected["tokens"][str(t)]["rank"]) for t, (_, r) in ours.items()
                 if r != expected["tokens"][str(t)]["rank"]]
    assert bad_ranks == []
    entropy = await pool.fetchval("SELECT rarity_entropy FROM catalog.collection_stats WHERE collection_id = $1",
                                  collection_id)
    assert math.isclose(float(entropy), expected["entropy"], rel_tol=1e-9, abs_tol=1e-12)

    counted_traits = await pool.fetchval(
        "SELECT count(*) FROM catalog.traits t WHERE t.collection_id = $1 AND t.value_type = 'string' "
        "AND EXISTS (SELECT 1 FROM catalog.trait_values v WHERE v.trait_id = t.id AND v.rarity_score IS NOT NULL)",
        collection_id)
    explained = await explain(pool, list(ours))
    for token, (score, _) in ours.items():
        lines = explained[token]
        counted = [line for line in lines if line.counted]
        assert sum(line.contribution for line in counted if line.contribution is not None) == score
        assert all(line.contribution is not None for line in counted)
        assert len(counted) == counted_traits
        assert sum(line.meta for line in lines) == 1
        uncounted = [line for line in lines if not line.counted]
        assert {line.normalized_name for line in uncounted} == {
            t.normalized_name for t in traits[token] if t.value_type != "string"}
        assert all(line.contribution is None and not line.missing for line in uncounted)
        present = {(line.normalized_name, line.value) for line in lines if not line.missing and not line.meta}
        assert present == {(t.normalized_name, t.value_string) for t in traits[token]}
    return {t: s for t, (s, _) in ours.items()}


def _pick(rng: random.Random, values: Sequence[str], weights: Sequence[float]) -> str:
    return rng.choices(values, weights=weights)[0]


def generated(rng: random.Random, size: int, *, numeric: bool = False) -> list[object]:
    """OpenSea-style documents: skewed values, traits often missing, "None" values, now and then a dict form."""
    docs: list[object] = []
    for _ in range(size):
        attributes: list[dict[str, object]] = []
        if rng.random() < 0.95:
            attributes.append({"trait_type": "Background",
                               "value": _pick(rng, ["Blue", "Red", "Green", "Gold"], [50, 30, 15, 5])})
        if rng.random() < 0.6:
            attributes.append({"trait_type": "Hat", "value": _pick(rng, ["Cap", "Beanie", "Crown", "None"],
                                                                   [40, 30, 5, 25])})
        if rng.random() < 0.8:
            attributes.append({"trait_type": "Eyes", "value": _pick(rng, ["Sleepy", "Laser", "Wide"], [60, 10, 30])})
        if rng.random() < 0.1:
            attributes.append({"trait_type": "Mouth", "value": _pick(rng, ["Grin", "Pipe"], [70, 30])})
        if rng.random() < 0.5:
            attributes.append({"trait_type": "Fur", "value": f"Shade {rng.randrange(12)}"})
        if numeric:
            if rng.random() < 0.7:
                attributes.append({"trait_type": "Level", "value": rng.randrange(1, 20), "display_type": "number"})
            if rng.random() < 0.5:
                attributes.append({"trait_type": "Stamina", "value": rng.random() * 10,
                                   "display_type": "boost_percentage"})
            if rng.random() < 0.5:
                attributes.append({"trait_type": "Birthday", "value": 1_600_000_000 + rng.randrange(10**7),
                                   "display_type": "date"})
            if rng.random() < 0.6:
                attributes.append({"trait_type": "Generation", "value": rng.randrange(3)})  # a category
        if rng.random() < 0.1:
            docs.append({str(a["trait_type"]): a["value"] for a in attributes if "display_type" not in a})
        else:
            docs.append({"name": "x", "attributes": attributes})
    return docs


async def test_small_collection_with_missing_traits(pool: asyncpg.Pool[Any], collection: UUID) -> None:
    traits = await store(pool, collection, generated(random.Random(1), 60))
    assert any(len(t) < 5 for t in traits.values())
    result = await recompute(await_conn := await pool.acquire(), collection)
    await pool.release(await_conn)
    assert result is not None and result.tokens == 60 and len(result.changed_tokens) == 60
    await assert_matches_open_rarity(pool, collection, traits)
    nulls = await pool.fetch("SELECT name, null_occurrences, null_rarity_score FROM catalog.traits "
                             "WHERE collection_id = $1 AND null_occurrences > 0", collection)
    assert {r["name"] for r in nulls} >= {"Hat", "Mouth"}
    assert all(r["null_rarity_score"] > 0 for r in nulls)


async def test_numeric_and_date_traits_are_left_out_of_the_score(pool: asyncpg.Pool[Any], collection: UUID) -> None:
    traits = await store(pool, collection, generated(random.Random(2), 80, numeric=True))
    assert any(t.value_type == "date" for ts in traits.values() for t in ts)
    async with pool.acquire() as conn:
        await recompute(conn, collection)
    await assert_matches_open_rarity(pool, collection, traits)
    uncounted = await pool.fetch(
        "SELECT t.value_type, v.rarity_score, t.null_rarity_score FROM catalog.traits t "
        "JOIN catalog.trait_values v ON v.trait_id = t.id WHERE t.collection_id = $1 AND t.value_type <> 'string'",
        collection)
    assert {r["value_type"] for r in uncounted} == {"number", "date"}
    assert all(r["rarity_score"] is None and r["null_rarity_score"] is None for r in uncounted)


async def test_ties_share_a_rank_the_way_open_rarity_ranks_them(pool: asyncpg.Pool[Any], collection: UUID) -> None:
    rng = random.Random(3)
    shapes: list[object] = [
        {"Background": "Blue", "Hat": "Cap"},
        {"Background": "Red", "Hat": "Cap"},
        {"Background": "Blue", "Hat": "Beanie"},
        {"Background": "Red"},
        {"Hat": "Beanie"},
    ]
    docs = [shapes[i % len(shapes)] for i in range(30)]
    # same counts on different traits: Background/Hat values swapped in frequency give equal scores
    docs += [{"Background": "Gold", "Hat": "Crown", "Eyes": "Laser"}, {"Background": "Gold", "Hat": "Crown",
                                                                        "Eyes": "Wide"}]
    rng.shuffle(docs)
    traits = await store(pool, collection, docs)
    async with pool.acquire() as conn:
        await recompute(conn, collection)
    await assert_matches_open_rarity(pool, collection, traits)
    ranks = [r["rarity_rank"] for r in await pool.fetch(
        "SELECT rarity_rank FROM catalog.tokens WHERE collection_id = $1 ORDER BY rarity_rank", collection)]
    assert len(set(ranks)) < len(ranks)  # ties exist
    assert ranks[0] == 1 and all(ranks[i] in (ranks[i - 1], i + 1) for i in range(1, len(ranks)))  # RANK


async def test_ten_thousand_tokens(pool: asyncpg.Pool[Any], collection: UUID) -> None:
    traits = await store(pool, collection, generated(random.Random(4), 10_000, numeric=True))
    async with pool.acquire() as conn:
        result = await recompute(conn, collection)
    assert result is not None and result.tokens == 10_000
    await assert_matches_open_rarity(pool, collection, traits)


async def test_changing_one_token_rescores_every_affected_token(pool: asyncpg.Pool[Any], collection: UUID) -> None:
    traits = await store(pool, collection, generated(random.Random(5), 200))
    async with pool.acquire() as conn:
        await recompute(conn, collection)
    await assert_matches_open_rarity(pool, collection, traits)
    heard: list[tuple[set[UUID], set[UUID]]] = []

    async def on_change(collections: set[UUID], tokens: set[UUID]) -> None:
        heard.append((collections, tokens))

    worker = RarityWorker(pool, poll_seconds=0, min_interval_seconds=0, on_change=on_change)
    # The dev stack's catalog runs a rarity worker too and may take the collection first; then another token
    # changes and this worker gets its turn (the data is the same either way).
    for token in list(traits)[:3]:
        before = await assert_matches_open_rarity(pool, collection, traits)
        changed, _ = normalize_attributes([{"trait_type": "Background", "value": "Rainbow"},
                                           {"trait_type": "Aura", "value": "Glowing"}])
        async with pool.acquire() as conn, conn.transaction():
            await replace_token_traits(conn, collection, {token: changed})
            assert await conn.fetchval("SELECT rarity_dirty FROM catalog.collection_stats WHERE collection_id = $1",
                                       collection)
        traits[token] = changed
        heard.clear()
        for _ in range(20):
            await worker.run_once()
            if any(collection in c for c, _ in heard):
                break
        if any(collection in c for c, _ in heard):
            break
    assert await pool.fetchval("SELECT rarity_dirty FROM catalog.collection_stats WHERE collection_id = $1",
                               collection) is False
    after = await assert_matches_open_rarity(pool, collection, traits)
    moved = {t for t in after if after[t] != before[t]}
    assert token in moved and len(moved) == len(after)  # a trait's null count and the entropy move every score
    ours = [tokens for c, tokens in heard if collection in c]
    assert ours and moved <= ours[0]


async def test_tokens_outside_the_ranking_are_unranked(pool: asyncpg.Pool[Any], collection: UUID) -> None:
    traits = await store(pool, collection, generated(random.Random(6), 40))
    first, second = list(traits)[:2]
    await pool.execute("UPDATE catalog.tokens SET metadata_status = 'pending' WHERE id = $1", first)
    await pool.execute("UPDATE catalog.tokens SET burned = true WHERE id = $1", second)
    async with pool.acquire() as conn:
        result = await recompute(conn, collection)
    assert result is not None and result.tokens == 38
    rows = await pool.fetch("SELECT id, rarity_score, rarity_rank FROM catalog.tokens WHERE id = ANY($1::uuid[])",
                            [first, second])
    assert all(r["rarity_score"] is None and r["rarity_rank"] is None for r in rows)
    del traits[first], traits[second]
    await assert_matches_open_rarity(pool, collection, traits)
    explained = await explain(pool, [first])
    assert all(line.contribution is None or not line.missing for line in explained[first])
    assert not any(line.missing for line in explained[first])


async def test_a_burn_without_a_trait_write_is_found_by_the_sweep(pool: asyncpg.Pool[Any], collection: UUID) -> None:
    traits = await store(pool, collection, generated(random.Random(7), 50))
    async with pool.acquire() as conn:
        await recompute(conn, collection)
    worker = RarityWorker(pool, poll_seconds=0, min_interval_seconds=0)
    assert collection not in await worker.sweep()
    burned, failed = list(traits)[:2]
    await pool.execute("UPDATE catalog.tokens SET burned = true WHERE id = $1", burned)
    await pool.execute("UPDATE catalog.tokens SET metadata_status = 'failed' WHERE id = $1", failed)
    assert collection in await worker.sweep()
    assert await pool.fetchval("SELECT rarity_dirty FROM catalog.collection_stats WHERE collection_id = $1",
                               collection)
    async with pool.acquire() as conn:  # whichever worker gets there, the collection is re-ranked
        await recompute(conn, collection)
    del traits[burned], traits[failed]
    await assert_matches_open_rarity(pool, collection, traits)
    assert collection not in await worker.sweep()

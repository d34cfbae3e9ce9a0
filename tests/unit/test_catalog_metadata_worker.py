"""The metadata worker's decisions with plain fakes of its own store, chain reader and fetcher."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from mintplane.catalog.metadata.failures import MetadataFailure, PermanentFailure, TransientFailure
from mintplane.catalog.metadata.fetch import Fetched
from mintplane.catalog.metadata.store import Claimed, Outcome, Saved
from mintplane.catalog.metadata.uris import UriRules
from mintplane.catalog.metadata.worker import MetadataWorker, RetryPolicy, source_of

pytestmark = pytest.mark.unit
RULES = UriRules.of(["https://gw.example"], ["https://ar.example"], [], 1 << 20)


def _claimed(attempts: int = 0, number: int = 1) -> Claimed:
    return Claimed(uuid.uuid4(), uuid.uuid4(), "eip155:1", "0x" + "ab" * 20, str(number), "ERC721", attempts,
                   datetime(2026, 1, 1, tzinfo=UTC))


class FakeStore:
    def __init__(self, claims: list[Claimed], refuse: set[uuid.UUID] | None = None) -> None:
        self.claims = claims
        self.refuse = refuse or set()
        self.saved: list[Outcome] = []
        self.traits: dict[uuid.UUID, Any] = {}

    async def claim(self, limit: int, chains: Any, lease: float) -> list[Claimed]:
        taken, self.claims = self.claims[:limit], self.claims[limit:]
        return taken

    async def save(self, outcomes: list[Outcome], traits: dict[uuid.UUID, Any] | None = None) -> Saved:
        if any(o.token.id in self.refuse and o.status == "ok" for o in outcomes):
            raise asyncpg.CharacterNotInRepertoireError("invalid byte sequence")
        self.saved += outcomes
        self.traits.update(traits or {})
        return Saved({o.token.id for o in outcomes}, {o.token.collection_id for o in outcomes})


class FakeReader:
    def __init__(self, uris: dict[str, str | MetadataFailure]) -> None:
        self.uris = uris

    async def read(self, chain: str, reads: list[Any]) -> list[str | MetadataFailure]:
        return [self.uris[r.token_number] for r in reads]

    async def close(self) -> None:
        pass


class FakeFetcher:
    def __init__(self, answers: dict[str, bytes | MetadataFailure]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def fetch(self, url: str) -> Fetched:
        self.asked.append(url)
        answer = self.answers[url]
        if isinstance(answer, MetadataFailure):
            raise answer
        return Fetched(answer, "application/json", url)

    async def close(self) -> None:
        pass


def _worker(store: FakeStore, uris: dict[str, Any], answers: dict[str, Any], **kwargs: Any) -> MetadataWorker:
    return MetadataWorker(store, FakeReader(uris), FakeFetcher(answers), rules=RULES,  # type: ignore[arg-type]
                          **kwargs)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=10, max_seconds=60)
    for attempt, raw in ((1, 10), (2, 20), (3, 40), (4, 60), (9, 60)):
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0.5 * raw <= d <= 1.5 * raw for d in delays)
        assert len(set(delays)) > 1  # jittered


async def test_outcomes_ok_retry_and_failed() -> None:
    doc = json.dumps({"name": "One", "attributes": [{"trait_type": "Eyes", "value": "Red"}]}).encode()
    ok, retry, broken, unread = (_claimed(number=n) for n in (1, 2, 4, 5))
    give_up = _claimed(attempts=2, number=3)
    store = FakeStore([ok, retry, give_up, broken, unread])
    uris = {"1": "https://a.example/1", "2": "https://a.example/2", "3": "https://a.example/3",
            "4": "https://a.example/4", "5": PermanentFailure("tokenURI reverted")}
    answers = {"https://a.example/1": doc, "https://a.example/2": TransientFailure("HTTP 503 from a.example"),
               "https://a.example/3": TransientFailure("a.example timed out after 15 s"),
               "https://a.example/4": b"{not json"}
    worker = _worker(store, uris, answers, retry=RetryPolicy(max_attempts=3, base_seconds=30, max_seconds=60))
    assert await worker.run_once() == 5
    by_token = {o.token.id: o for o in store.saved}
    assert by_token[ok.id].status == "ok" and by_token[ok.id].metadata is not None
    assert by_token[ok.id].metadata.name == "One" and [t.name for t in store.traits[ok.id]] == ["Eyes"]
    assert by_token[retry.id].status == "pending" and by_token[retry.id].attempts == 1
    assert by_token[retry.id].retry_in is not None and 15 <= by_token[retry.id].retry_in <= 45
    assert by_token[retry.id].error is None  # the API shows a reason only once the token has failed
    assert by_token[give_up.id].status == "failed"
    assert by_token[give_up.id].error == "a.example timed out after 15 s (gave up after 3 attempts)"
    assert by_token[broken.id].status == "failed" and "not valid JSON" in (by_token[broken.id].error or "")
    assert by_token[unread.id].status == "failed" and by_token[unread.id].url is None
    assert (worker.stats.ok, worker.stats.retried, worker.stats.failed) == (1, 1, 3)
    assert await worker.run_once() == 0


async def test_the_gateway_follows_the_attempt_number() -> None:
    first, second = _claimed(attempts=0, number=1), _claimed(attempts=1, number=2)
    rules = UriRules.of(["https://gw1.example", "https://gw2.example"], [], [], 1 << 20)
    store = FakeStore([first, second])
    fetcher = FakeFetcher({"https://gw1.example/ipfs/QmX/1": b"{}", "https://gw2.example/ipfs/QmX/2": b"{}"})
    worker = MetadataWorker(store, FakeReader({"1": "ipfs://QmX/1", "2": "ipfs://QmX/2"}), fetcher,  # type: ignore[arg-type]
                            rules=rules)
    await worker.run_once()
    assert sorted(fetcher.asked) == ["https://gw1.example/ipfs/QmX/1", "https://gw2.example/ipfs/QmX/2"]


async def test_a_value_the_database_refuses_fails_only_its_token() -> None:
    good, bad = _claimed(number=1), _claimed(number=2)
    store = FakeStore([good, bad], refuse={bad.id})
    docs = {"https://a.example/1": b'{"name": "good"}', "https://a.example/2": b'{"name": "bad"}'}
    worker = _worker(store, {"1": "https://a.example/1", "2": "https://a.example/2"}, docs)
    assert await worker.run_once() == 2
    by_token = {o.token.id: o for o in store.saved}
    assert by_token[good.id].status == "ok"
    assert by_token[bad.id].status == "failed"
    assert by_token[bad.id].error == "metadata could not be stored: CharacterNotInRepertoireError"


async def test_on_change_hears_committed_batches_and_its_failure_is_contained() -> None:
    token = _claimed()
    store = FakeStore([token])
    heard: list[tuple[set[uuid.UUID], set[uuid.UUID]]] = []

    async def listener(collections: set[uuid.UUID], tokens: set[uuid.UUID]) -> None:
        heard.append((collections, tokens))
        raise RuntimeError("broker down")

    worker = _worker(store, {"1": "data:application/json,{}"}, {}, on_change=listener)
    assert await worker.run_once() == 1
    assert heard == [({token.collection_id}, {token.id})]


def test_source_labels() -> None:
    assert [source_of(u) for u in ("data:,{}", "ipfs://x", "ar://x", "https://x", "http://x", "ftp://x", None)] == [
        "data", "ipfs", "arweave", "https", "http", "other", "none"]


async def test_a_batch_never_outlives_half_its_lease() -> None:
    class Stuck(FakeFetcher):
        async def fetch(self, url: str) -> Fetched:
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

    token = _claimed()
    store = FakeStore([token])
    worker = MetadataWorker(store, FakeReader({"1": "https://slow.example/1"}), Stuck({}),  # type: ignore[arg-type]
                            rules=RULES, lease_seconds=0.2, retry=RetryPolicy(max_attempts=1))
    assert await asyncio.wait_for(worker.run_once(), 5) == 1
    assert store.saved[0].status == "failed"
    assert store.saved[0].error == "not fetched within the batch's time (its host is slow or busy)"

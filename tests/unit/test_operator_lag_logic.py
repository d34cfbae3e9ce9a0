"""Chain indexerLag from the indexer's GetStatus: the lag arithmetic, which head and depth count, what an
unreachable indexer leaves alone, and that an unchanged answer patches nothing (status churn).

The indexer is faked at the operator's own ``Indexer`` interface; Kopf's Body/Patch/Memo are the real
classes, so the handler and ``write_status`` run exactly as the operator runs them.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any, cast

import grpc
import kopf
import pytest
import yaml
from kopf._core.engines import posting  # the contextvars a running operator sets for event posting

from mintplane.api.common.v1 import common_pb2
from mintplane.api.indexer.v1 import indexer_pb2 as pb
from mintplane.devstack.layout import Layout
from mintplane.operator.handlers import chain as chain_handlers
from mintplane.operator.handlers._status import write_status
from mintplane.operator.indexer import IndexReport, report_of
from mintplane.operator.reconcile import chain
from mintplane.operator.rpc import ServiceError, ServiceNotFound, ServiceRejected, ServiceUnavailable
from mintplane.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit

CAIP2 = "eip155:424242"
TARGET = "127.0.0.1:50058"
ROOT = Layout.default().root


def spec(*, confirmations: int = 2, enabled: bool = True) -> dict[str, Any]:
    return {"caip2": CAIP2, "chainId": 424242, "name": "t", "nativeSymbol": "ETH", "enabled": True,
            "indexer": {"enabled": enabled, "confirmations": confirmations}}


def stored(indexed: int, state: str = "UNSPECIFIED", error: str = "") -> IndexReport:
    """What the status server (checkpoint only) reports."""
    return IndexReport(state=state, last_indexed_block=indexed, head_block=None, confirmations=None, last_error=error)


def live(indexed: int, head: int, confirmations: int, state: str = "FOLLOWING") -> IndexReport:
    """What a follower reports for its own lane."""
    return IndexReport(state=state, last_indexed_block=indexed, head_block=head, confirmations=confirmations,
                       last_error="")


def down(details: str = "failed to connect to all addresses") -> ServiceUnavailable:
    return ServiceUnavailable("indexer", "GetStatus", grpc.StatusCode.UNAVAILABLE, details)


def status_of(poll: chain.IndexerPoll, *, head: int | None = 100, confirmations: int = 2,
              current: dict[str, Any] | None = None) -> dict[str, Any]:
    status = dict(current or {})
    if head is not None:
        status["headBlock"] = head
    return chain.indexer_status(spec=spec(confirmations=confirmations), status=status, poll=poll, target=TARGET)


def condition(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == chain.INDEXING)


# --- the arithmetic ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("head", "confirmations", "indexed", "lag"), [
    (100, 2, 90, 8),
    (100, 0, 100, 0),
    (100, 12, 88, 0),   # caught up: the indexer stays `confirmations` behind on purpose
    (100, 12, 95, 0),   # a checkpoint read after the head was: never negative
    (5, 12, 0, 0),      # a young chain shorter than the confirmation depth
    (None, 2, 90, None),
])
def test_lag_is_the_confirmed_head_minus_the_indexed_block_floored_at_zero(
    head: int | None, confirmations: int, indexed: int, lag: int | None,
) -> None:
    assert chain.indexer_lag(head, confirmations, indexed) == lag


def test_a_status_server_reports_no_head_and_a_follower_reports_its_own() -> None:
    from_checkpoint = pb.ChainIndexStatus(chain=common_pb2.ChainRef(caip2=CAIP2), last_indexed_block=77,
                                          last_indexed_block_hash="0xab")
    assert report_of(from_checkpoint) == stored(77)
    lane = pb.ChainIndexStatus(chain=common_pb2.ChainRef(caip2=CAIP2), state=pb.INDEXER_STATE_BACKFILLING,
                               head_block=500, confirmations=3, last_indexed_block=420, lag_blocks=77)
    assert report_of(lane) == live(420, 500, 3, state="BACKFILLING")


def test_the_indexers_own_head_and_depth_win_over_the_chains() -> None:
    status = status_of(chain.IndexerPoll(live(420, 500, 3), None), head=450, confirmations=12)
    assert (status["indexedBlock"], status["indexerLag"]) == (420, 77)
    assert (condition(status)["status"], condition(status)["reason"]) == ("True", "Following")


def test_without_a_live_head_the_chains_head_and_spec_confirmations_count() -> None:
    status = status_of(chain.IndexerPoll(stored(90), None), head=100, confirmations=2)
    assert (status["indexedBlock"], status["indexerLag"]) == (90, 8)
    assert condition(status)["reason"] == "CheckpointAdvancing"


def test_missing_confirmations_fall_back_to_the_crd_default() -> None:
    no_depth = {**spec(), "indexer": {"enabled": True}}
    status = chain.indexer_status(spec=no_depth, status={"headBlock": 100}, poll=chain.IndexerPoll(stored(80), None),
                                  target=TARGET)
    assert status["indexerLag"] == 100 - chain.DEFAULT_CONFIRMATIONS - 80


def test_no_head_known_sets_the_indexed_block_and_leaves_the_lag_alone() -> None:
    status = status_of(chain.IndexerPoll(stored(90), None), head=None)
    assert status["indexedBlock"] == 90
    assert "indexerLag" not in status  # a merge patch without the key keeps the last value


# --- conditions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("report", "expected"), [
    (live(98, 100, 2, "FOLLOWING"), ("True", "Following")),
    (live(10, 100, 2, "BACKFILLING"), ("True", "CatchingUp")),
    (live(0, 100, 2, "STARTING"), ("Unknown", "Starting")),
    (stored(50, "STALLED", "no indexer process has advanced this checkpoint recently"), ("False", "Stalled")),
    (stored(98, "STALLED", "no indexer process has advanced this checkpoint recently"), ("True", "CaughtUp")),
    (live(90, 100, 2, "ENDPOINTS_DOWN"), ("False", "EndpointsDown")),
    (live(90, 100, 2, "DISABLED"), ("False", "ChainDisabled")),
])
def test_the_indexing_condition_follows_the_indexers_state(report: IndexReport, expected: tuple[str, str]) -> None:
    found = condition(status_of(chain.IndexerPoll(report, None), head=100, confirmations=2))
    assert (found["status"], found["reason"]) == expected
    assert found["message"]


def test_a_stall_message_is_the_indexers_own() -> None:
    found = condition(status_of(chain.IndexerPoll(stored(50, "STALLED", "no progress for 300s"), None)))
    assert found["message"] == "no progress for 300s"


def test_urls_in_indexer_errors_keep_only_scheme_and_host() -> None:
    error = ("eth_blockNumber: https://eth-mainnet.g.alchemy.com/v2/s3cr3tKEY?x=1 timed out; "
             "also wss://user:pw@node.example.org:8546/ws")
    report = IndexReport(state="ENDPOINTS_DOWN", last_indexed_block=1, head_block=100, confirmations=2,
                         last_error=error)
    found = condition(status_of(chain.IndexerPoll(report, None)))
    message = found["message"]
    assert "https://eth-mainnet.g.alchemy.com timed out" in message
    assert "wss://node.example.org:8546" in message
    assert "s3cr3tKEY" not in message and "pw@" not in message and "/ws" not in message


@pytest.mark.parametrize(("error", "expected"), [
    (down(), ("Unknown", "IndexerUnreachable")),
    (ServiceUnavailable("indexer", "GetStatus", grpc.StatusCode.UNIMPLEMENTED, ""), ("Unknown", "IndexerUnreachable")),
    (ServiceNotFound("indexer", "GetStatus", grpc.StatusCode.NOT_FOUND, f"chain {CAIP2} is not indexed"),
     ("False", "NoCheckpoint")),
    (ServiceRejected("indexer", "GetStatus", grpc.StatusCode.INVALID_ARGUMENT, "bad caip2"),
     ("Unknown", "IndexerRejected")),
])
def test_no_answer_keeps_lag_and_indexed_block_and_says_why(error: ServiceError, expected: tuple[str, str]) -> None:
    status = status_of(chain.IndexerPoll(None, error), current={"indexerLag": 3, "indexedBlock": 95})
    assert "indexerLag" not in status and "indexedBlock" not in status
    found = condition(status)
    assert (found["status"], found["reason"]) == expected


def test_unreachable_message_names_the_code_not_the_changing_details() -> None:
    first = condition(status_of(chain.IndexerPoll(None, down("connect failed at 12:00:01"))))
    second = condition(status_of(chain.IndexerPoll(None, down("connect failed at 12:00:11"))))
    assert first["message"] == second["message"]
    assert TARGET in first["message"] and "UNAVAILABLE" in first["message"]


def test_other_conditions_survive_an_indexer_poll() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Ready", "message": "1 of 1 endpoints healthy",
             "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}
    status = status_of(chain.IndexerPoll(stored(90), None), current={"conditions": [ready], "observedGeneration": 1})
    assert [c["type"] for c in status["conditions"]] == ["Indexing", "Ready"]
    assert status["conditions"][1] == ready
    assert condition(status)["observedGeneration"] == 1


def test_a_disabled_indexer_clears_the_numbers_and_adds_no_condition_to_chains_that_never_indexed() -> None:
    assert chain.indexer_off_status({"headBlock": 5}) == {"indexerLag": None, "indexedBlock": None}
    before = status_of(chain.IndexerPoll(stored(90), None))
    after = chain.indexer_off_status(before)
    assert after["indexerLag"] is None and after["indexedBlock"] is None
    assert (condition(after)["status"], condition(after)["reason"]) == ("False", "IndexerDisabled")


# --- unchanged -> no patch: the handler with real Kopf Body/Patch/Memo ------------------------------------


class FakeIndexer:
    def __init__(self) -> None:
        self.answer: IndexReport | ServiceError = stored(0)
        self.calls = 0

    async def chain_status(self, caip2: str) -> IndexReport:
        assert caip2 == CAIP2
        self.calls += 1
        if isinstance(self.answer, ServiceError):
            raise self.answer
        return self.answer


class Chain:
    """One Chain as the API server holds it, and the operator process's memo for it."""

    def __init__(self, indexer: FakeIndexer, *, enabled: bool = True) -> None:
        self.raw: dict[str, Any] = {
            "apiVersion": "mintplane.io/v1alpha1", "kind": "Chain",
            "metadata": {"name": "net", "namespace": "ns", "uid": "u-1", "generation": 1},
            "spec": spec(enabled=enabled), "status": {"observedGeneration": 1, "headBlock": 100},
        }
        self.memo = kopf.Memo(settings=OperatorSettings(indexer_target=TARGET), indexer=indexer)

    async def tick(self) -> dict[str, Any]:
        """Run the timer once; apply its patch like the API server would; return what it patched."""
        body = kopf.Body(cast(Any, self.raw))
        patch = kopf.Patch()
        timer: Any = chain_handlers.refresh_indexer_progress  # Kopf types it by its full callback protocol
        await timer(spec=body.spec, status=body.status, body=body, patch=patch, memo=self.memo)
        patched = dict(patch.get("status") or {})
        status = self.raw["status"]
        for key, value in patched.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        return patched

    def head(self, block: int) -> None:
        """The status timer's write of a new endpoint head (another handler, same object)."""
        self.raw["status"]["headBlock"] = block
        self.memo.status_written = {**self.memo.get("status_written", {}), "headBlock": block}


async def test_an_unchanged_answer_patches_nothing() -> None:
    indexer = FakeIndexer()
    net = Chain(indexer)
    indexer.answer = stored(90)
    first = await net.tick()
    assert (first["indexedBlock"], first["indexerLag"]) == (90, 8) and "conditions" in first
    assert await net.tick() == {}
    assert await net.tick() == {}
    assert indexer.calls == 3


async def test_a_moving_lag_patches_only_the_numbers() -> None:
    indexer = FakeIndexer()
    net = Chain(indexer)
    indexer.answer = stored(98)
    await net.tick()
    net.head(103)
    assert await net.tick() == {"indexerLag": 3}
    indexer.answer = stored(101)
    assert await net.tick() == {"indexedBlock": 101, "indexerLag": 0}


def capture_events() -> asyncio.Queue[Any]:
    """Kopf's event poster as a running operator sets it up for its handlers: posted Events land here."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    posting.settings_var.set(kopf.OperatorSettings())
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    posting.event_queue_var.set(queue)
    return queue


async def test_a_down_indexer_is_told_once_and_the_lag_is_kept() -> None:
    events = capture_events()
    indexer = FakeIndexer()
    net = Chain(indexer)
    indexer.answer = stored(90)
    await net.tick()
    assert events.empty()  # a first Indexing condition is not news
    indexer.answer = down("attempt 1")
    assert set(await net.tick()) == {"conditions"}
    assert (net.raw["status"]["indexerLag"], net.raw["status"]["indexedBlock"]) == (8, 90)
    event = events.get_nowait()
    assert (event.type, event.reason) == ("Warning", "IndexerUnreachable")
    assert event.message.startswith("Indexing is Unknown: the indexer status service at 127.0.0.1:50058")
    indexer.answer = down("attempt 2")
    assert await net.tick() == {}
    assert events.empty()
    indexer.answer = stored(95)
    assert await net.tick() == {"indexedBlock": 95, "indexerLag": 3, "conditions": net.raw["status"]["conditions"]}
    assert (events.get_nowait().type, events.empty()) == ("Normal", True)


async def test_the_timer_never_raises_for_any_indexer_failure() -> None:
    for error in (down(), ServiceNotFound("indexer", "GetStatus", grpc.StatusCode.NOT_FOUND, "no"),
                  ServiceRejected("indexer", "GetStatus", grpc.StatusCode.INVALID_ARGUMENT, "bad")):
        indexer = FakeIndexer()
        indexer.answer = error
        net = Chain(indexer)
        patched = await net.tick()
        assert "indexerLag" not in patched and set(patched) == {"conditions"}


async def test_a_chain_without_indexer_is_not_polled_and_stays_quiet() -> None:
    indexer = FakeIndexer()
    net = Chain(indexer, enabled=False)
    assert await net.tick() == {}
    assert indexer.calls == 0


def test_write_status_skips_fields_equal_to_the_body() -> None:
    body = kopf.Body(cast(Any, {"metadata": {"name": "x", "namespace": "ns", "uid": "u"}, "status": {"indexerLag": 4}}))
    patch = kopf.Patch()
    write_status(body, patch, body.status, {"indexerLag": 4}, kopf.Memo())
    assert dict(patch) == {}


# --- settings, CRD and chart ----------------------------------------------------------------------------------


def test_settings_default_to_the_dev_stack_indexer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINTPLANE_OPERATOR_INDEXER_TARGET", raising=False)
    monkeypatch.delenv("MINTPLANE_OPERATOR_INDEXER_POLL_SECONDS", raising=False)
    settings = OperatorSettings()
    assert settings.indexer_target == "127.0.0.1:50058"
    assert settings.indexer_poll_seconds > 0
    monkeypatch.setenv("MINTPLANE_OPERATOR_INDEXER_TARGET", "mp-mintplane-indexer:50058")
    assert OperatorSettings().indexer_target == "mp-mintplane-indexer:50058"


def test_the_crd_shows_lag_by_default_and_the_indexed_block_wide() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "chains.mintplane.io.yaml").read_text())
    version = crd["spec"]["versions"][0]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert columns["Lag"]["jsonPath"] == ".status.indexerLag" and "priority" not in columns["Lag"]
    assert columns["Indexed"]["jsonPath"] == ".status.indexedBlock" and columns["Indexed"]["priority"] == 1
    fields = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert fields["indexedBlock"] == {**fields["indexedBlock"], "type": "integer", "format": "int64", "minimum": 0}


def test_the_chart_gives_the_operator_the_indexer_service_and_opens_its_port() -> None:
    helm = Layout.default().bin / "helm"
    result = subprocess.run(
        [str(helm), "template", "mp", str(ROOT / "charts" / "mintplane"), "--namespace", "mintplane",
         "--kube-version", "1.35.4", "--set", "secrets.existingSecret=mintplane-db"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    operator = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mp-mintplane-operator")
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MINTPLANE_OPERATOR_INDEXER_TARGET"] == "mp-mintplane-indexer:50058"
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "mp-mintplane-operator")
    to_indexer = [rule for rule in policy["spec"]["egress"]
                  if rule.get("to", [{}])[0].get("podSelector", {}).get("matchLabels", {})
                  .get("app.kubernetes.io/component") == "indexer"]
    assert [[p["port"] for p in rule["ports"]] for rule in to_indexer] == [[50058]]
    without = subprocess.run(
        [str(helm), "template", "mp", str(ROOT / "charts" / "mintplane"), "--kube-version", "1.35.4",
         "--set", "secrets.existingSecret=mintplane-db", "--set", "services.indexer.enabled=false"],
        capture_output=True, text=True, timeout=120, check=False)
    assert without.returncode == 0, without.stderr
    assert "MINTPLANE_OPERATOR_INDEXER_TARGET" not in without.stdout  # a disabled service is no one's upstream


def test_chart_crd_copy_is_identical() -> None:
    name = "chains.mintplane.io.yaml"
    assert (ROOT / "charts" / "mintplane" / "crds" / name).read_bytes() == Path(ROOT / "crds" / name).read_bytes()

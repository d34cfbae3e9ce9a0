"""Unit tests of the objects the operator builds and the small pure helpers around them."""

from __future__ import annotations

import pytest

from mintplane.operator import builders, conditions, specs, views
from mintplane.operator.conditions import Condition
from mintplane.operator.settings import OperatorSettings
from mintplane.operator.specs import SpecError

pytestmark = pytest.mark.unit

CHAIN_SPEC = {
    "caip2": "eip155:31337", "chainId": 31337, "name": "Anvil", "nativeSymbol": "ETH",
    "indexer": {"enabled": True, "confirmations": 0, "batchSize": 200},
}


@pytest.fixture
def settings() -> OperatorSettings:
    return OperatorSettings(indexer_image="registry.example/mintplane:1.2.3", indexer_env_secret="idx-env")


def test_indexer_deployment_runs_the_chain_indexer_hardened(settings: OperatorSettings) -> None:
    deployment = builders.indexer_deployment("anvil", "chains", CHAIN_SPEC, settings)
    assert deployment["metadata"]["name"] == "mintplane-indexer-anvil"
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "mintplane-operator"
    assert labels["app.kubernetes.io/component"] == "indexer"
    assert labels["app.kubernetes.io/instance"] == "anvil"
    assert labels["app.kubernetes.io/part-of"] == "mintplane"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["python", "-m", "mintplane.indexer", "--chain", "eip155:31337"]
    assert container["image"] == "registry.example/mintplane:1.2.3"
    assert container["envFrom"] == [{"secretRef": {"name": "idx-env"}}]
    assert container["readinessProbe"]["grpc"]["port"] == 50058
    assert container["livenessProbe"]["grpc"]["port"] == 50058
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["MINTPLANE_INDEXER_CONFIRMATIONS"] == "0"
    assert env["MINTPLANE_INDEXER_BATCH_SIZE"] == "200"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_spec_overrides_replace_image_and_resources(settings: OperatorSettings) -> None:
    spec = {**CHAIN_SPEC, "indexer": {"enabled": True, "image": "custom:9",
                                      "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}}}
    container = builders.indexer_deployment("anvil", "ns", spec, settings)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "custom:9"
    assert container["resources"] == {"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}


def test_backfill_job_args_and_retention(settings: OperatorSettings) -> None:
    spec = {"chainRef": "anvil", "fromBlock": 10, "toBlock": 20, "backoffLimit": 5,
            "contracts": ["0x" + "ab" * 20]}
    job = builders.backfill_job("fill-1", "ns", spec, "eip155:31337", CHAIN_SPEC, settings)
    assert job["metadata"]["name"] == "mintplane-backfill-fill-1"
    assert job["metadata"]["labels"][builders.OWNER_LABEL] == "fill-1"
    assert job["spec"]["backoffLimit"] == 5
    assert job["spec"]["ttlSecondsAfterFinished"] == settings.backfill_ttl_seconds
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == [
        "python", "-m", "mintplane.indexer", "backfill", "--chain", "eip155:31337",
        "--from-block", "10", "--to-block", "20", "--contract", "0x" + "ab" * 20,
    ]


def test_child_names_stay_within_dns_label_limits() -> None:
    long_name = "a" * 60
    name = builders.child_name("mintplane-backfill-", long_name)
    assert len(name) <= 63
    assert name != builders.child_name("mintplane-backfill-", "a" * 59 + "b")  # hash keeps them distinct
    assert builders.child_name("mintplane-indexer-", "eth") == "mintplane-indexer-eth"


def test_condition_transition_time_moves_only_on_flip() -> None:
    first = conditions.merge([], [Condition("Ready", False, "Waiting")], generation=1, now="2026-01-01T00:00:00Z")
    same = conditions.merge(first, [Condition("Ready", False, "StillWaiting")], generation=2,
                            now="2026-01-01T00:05:00Z")
    flipped = conditions.merge(same, [Condition("Ready", True, "Ready")], generation=2, now="2026-01-01T00:09:00Z")
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["reason"] == "StillWaiting"
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:09:00Z"
    assert flipped[0]["status"] == "True"
    assert conditions.changed({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == {"b": 3}


def test_job_phase_follows_conditions_then_ready_pods() -> None:
    assert views.job_view("j", {}).phase == "Pending"
    assert views.job_view("j", {"active": 1, "ready": 1}).phase == "Running"
    done = views.job_view("j", {"conditions": [{"type": "Complete", "status": "True"}],
                                "completionTime": "2026-01-01T00:00:00Z"})
    assert (done.phase, done.completion_time) == ("Succeeded", "2026-01-01T00:00:00Z")
    failed = views.job_view("j", {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                                  "message": "Job has reached the specified backoff limit"}]})
    assert (failed.phase, failed.reason) == ("Failed", "BackoffLimitExceeded")


def test_chain_ready_needs_sync_healthy_endpoint_and_wanted_indexer() -> None:
    synced = Condition("Synced", True, "Synced")
    healthy = views.summarize([views.EndpointView("a", True, True, 12), views.EndpointView("b", True, False, None),
                               views.EndpointView("c", False, True, 99)])
    assert (healthy.total, healthy.healthy, healthy.best_head) == (3, 1, 12)
    off = views.indexer_condition(False, None)
    assert views.ready_condition(synced=synced, enabled=True, summary=healthy, indexer=off).status is True
    none = views.summarize([])
    assert views.ready_condition(synced=synced, enabled=True, summary=none, indexer=off).reason == "NoHealthyEndpoint"
    unavailable = views.indexer_condition(True, views.DeploymentView("d", 1, 0, "MinimumReplicasUnavailable"))
    assert unavailable.reason == "DeploymentUnavailable"
    assert views.ready_condition(synced=synced, enabled=True, summary=healthy,
                                 indexer=unavailable).reason == "IndexerUnavailable"
    assert views.ready_condition(synced=synced, enabled=False, summary=healthy, indexer=off).reason == "ChainDisabled"


def test_specs_check_what_the_schema_cannot() -> None:
    record = specs.chain_record({**CHAIN_SPEC, "features": ["eip1559", "erc721"]})
    assert (record.caip2, record.chain_numeric, record.decimals, record.features) == (
        "eip155:31337", 31337, 18, ("eip1559", "erc721"))
    with pytest.raises(SpecError, match="chainId must equal"):
        specs.chain_record({**CHAIN_SPEC, "chainId": 1})
    policy = specs.gas_policy_record({"gasPolicy": {"maxFeeGwei": "150.50", "priorityFeeGwei": "1.5"}})
    assert policy is not None and (policy.max_fee_gwei, policy.priority_fee_gwei, policy.multiplier) == (
        "150.5", "1.5", "1.25")
    with pytest.raises(SpecError, match="must not exceed"):
        specs.gas_policy_record({"gasPolicy": {"maxFeeGwei": "1", "priorityFeeGwei": "2"}})
    endpoint = specs.endpoint_record("ns", {"url": "https://rpc.example/v3", "authType": "path",
                                            "secretRef": {"name": "infura"}}, "eip155:1")
    assert endpoint.auth_secret_ref == "secret://ns/infura/apiKey"
    assert endpoint.auth_type == "apiKeyPath"
    with pytest.raises(SpecError, match="credentials"):
        specs.endpoint_record("ns", {"url": "https://user:pw@rpc.example"}, "eip155:1")
    assert endpoint.auth_param == ""
    assert specs.checksum_address("0x" + "ab" * 20) == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"


@pytest.mark.parametrize(
    ("auth", "param", "registry_type"),
    [("header", "x-api-key", "apiKeyHeader"), ("query", "apikey", "apiKeyQuery")],
)
def test_named_auth_endpoints_carry_their_param(auth: str, param: str, registry_type: str) -> None:
    spec = {"url": "https://rpc.example/v1", "authType": auth, "authParam": param,
            "secretRef": {"name": "provider", "key": "token"}}
    record = specs.endpoint_record("ns", spec, "eip155:1")
    assert (record.auth_type, record.auth_param) == (registry_type, param)
    assert record.auth_secret_ref == "secret://ns/provider/token"


@pytest.mark.parametrize(
    "spec",
    [
        {"authType": "header", "secretRef": {"name": "s"}},
        {"authType": "query", "secretRef": {"name": "s"}, "authParam": ""},
        {"authType": "bearer", "secretRef": {"name": "s"}, "authParam": "x-api-key"},
        {"authType": "none", "authParam": "apikey"},
    ],
)
def test_auth_param_outside_header_and_query_is_refused(spec: dict[str, object]) -> None:
    with pytest.raises(SpecError, match=r"authParam .* is required for authType header or query, and only allowed"):
        specs.endpoint_record("ns", {"url": "https://rpc.example", **spec}, "eip155:1")


def test_namespaces_setting_accepts_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINTPLANE_OPERATOR_NAMESPACES", "default, mintplane-*")
    assert OperatorSettings().namespaces == ["default", "mintplane-*"]


def test_kopf_log_records_name_their_object_and_skip_timer_noise() -> None:
    import logging

    from mintplane.operator.__main__ import KopfRecords

    keep = KopfRecords()
    tick = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "Timer 'probe' succeeded.", (), None)
    assert keep.filter(tick) is False
    handled = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "Handler %r succeeded.", ("x",), None)
    handled.k8s_ref = {"kind": "Chain", "namespace": "ns", "name": "eth"}
    assert keep.filter(handled) is True
    assert handled.getMessage() == "[Chain ns/eth] Handler 'x' succeeded."

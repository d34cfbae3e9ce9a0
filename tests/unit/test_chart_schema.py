"""values.schema.json refuses bad values before anything renders, with helm's message naming the key: a
typo or a wrong type must never turn into a silently different deployment."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.unit

CHART = Layout.default().root / "charts" / "mintplane"
HELM = Layout.default().bin / "helm"


def template(*sets: str) -> subprocess.CompletedProcess[str]:
    args = [str(HELM), "template", "mp", str(CHART), "--kube-version", "1.35.4",
            "--set", "secrets.existingSecret=mintplane-db"]
    for item in sets:
        args += ["--set", item]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_defaults_are_valid() -> None:
    result = template()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("services.auth.replicas=-1", "at '/services/auth/replicas': minimum: got -1, want 0"),
        ("gateway.replicas=-3", "at '/gateway/replicas': minimum: got -3, want 0"),
        ("replicaCount=2", "additional properties 'replicaCount' not allowed"),
        ("services.auth.replica=2", "at '/services/auth': additional properties 'replica' not allowed"),
        ("services.payments.enabled=true", "at '/services': additional properties 'payments' not allowed"),
        ("defaults.resource.limits.cpu=1", "at '/defaults': additional properties 'resource' not allowed"),
        ("services.auth.port=80", "at '/services/auth/port': minimum: got 80, want 1,024"),
        ("services.auth.port=grpc", "at '/services/auth/port': got string, want integer"),
        ("services.auth.secretEnv={pgDsn,pgPassword}", "at '/services/auth/secretEnv/1': value must be one of"),
        ("secrets.optional={pgPassword}", "at '/secrets/optional/0': value must be one of"),
        ("operator.rbac.scope=global", "at '/operator/rbac/scope': value must be one of 'cluster', 'namespace'"),
        ("operator.replicas=2", "at '/operator/replicas': maximum: got 2, want 1"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("image.digest=latest", "at '/image/digest'"),
        ("config.logLevel=LOUD", "at '/config/logLevel': value must be one of"),
        ("config.ethRpcUrl=localhost:8545", "at '/config/ethRpcUrl'"),
        ("gateway.ingress.enabled=yes", "at '/gateway/ingress/enabled': got string, want boolean"),
        ("services.catalog.pdb.maxUnavailable=half", "at '/services/catalog/pdb/maxUnavailable'"),
        ("defaults.probes.liveness.periodSeconds=0", "at '/defaults/probes/liveness/periodSeconds': minimum"),
        ("metrics.serviceMonitor.interval=often", "at '/metrics/serviceMonitor/interval'"),
        ("networkPolicy.egress.dataLayer.ports.postgres={5432}", "additional properties 'postgres' not allowed"),
        ("gateway.upstreams.MINTPLANE_GATEWAY_PAYMENTS_ADDR=payments",
         "at '/gateway/upstreams/MINTPLANE_GATEWAY_PAYMENTS_ADDR': value must be one of"),
    ],
)
def test_schema_rejects_bad_values_naming_the_key(value: str, message: str) -> None:
    result = template(value)
    assert result.returncode != 0, f"{value} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "value",
    [
        "services.auth.replicas=0",
        "services.catalog.pdb.maxUnavailable=50%",
        "services.catalog.pdb.minAvailable=1",
        "operator.rbac.scope=namespace",
        "config.ethRpcUrl=https://eth.example.com/v1",
        "image.digest=sha256:" + "ab" * 32,
        "gateway.env.MINTPLANE_GATEWAY_WORKERS=4",
    ],
)
def test_schema_accepts_legitimate_values(value: str) -> None:
    result = template(value)
    assert result.returncode == 0, result.stderr


def test_schema_is_strict_everywhere_it_can_be() -> None:
    """Every object the chart itself defines refuses unknown keys; only pass-through Kubernetes objects don't."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(path)
            for key, child in node.items():
                walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}/{index}")

    walk(schema, "")
    assert open_objects == [], open_objects


def test_every_value_in_values_yaml_is_described_by_the_schema() -> None:
    """The reverse direction: a key added to values.yaml but not to the schema would be refused at install."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def resolve(node: dict[str, object]) -> dict[str, object]:
        ref = node.get("$ref")
        if isinstance(ref, str):
            target: object = schema
            for part in ref.removeprefix("#/").split("/"):
                assert isinstance(target, dict)
                target = target[part]
            assert isinstance(target, dict)
            return resolve(target)
        return node

    def walk(value: object, node: dict[str, object], path: str) -> None:
        node = resolve(node)
        props = node.get("properties")
        if isinstance(value, dict) and isinstance(props, dict):
            for key, child in value.items():
                assert key in props, f"{path}/{key} is in values.yaml but not in values.schema.json"
                walk(child, props[key], f"{path}/{key}")

    walk(values, schema, "")

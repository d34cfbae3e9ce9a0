"""The Helm chart renders what a cluster operator relies on: lint-clean, one Deployment + Service + PDB per
enabled service from the single component template, hardened pods with probes and resources, secrets only
by reference, least-privilege operator RBAC and NetworkPolicies that match what each component talks to.

Rendering runs the pinned helm binary (`make install` builds it); no cluster is needed. `--kube-version` is
passed because a helm built without its k8s version stamp assumes Kubernetes 1.20.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections import Counter
from typing import Any

import pytest
import yaml

from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.unit

ROOT = Layout.default().root
CHART = ROOT / "charts" / "mintplane"
HELM = Layout.default().bin / "helm"
KUBE_VERSION = "1.35.4"
SECRET = "mintplane-db"
SERVICES = {
    "auth": 50051, "user": 50052, "wallet": 50053, "orchestrator": 50054,
    "media": 50055, "chain-registry": 50056, "catalog": 50057, "indexer": 50058,
}
VARIATION = CHART / "ci" / "namespaced-values.yaml"

Manifest = list[dict[str, Any]]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120, check=False)


@functools.cache
def render(*args: str, release: str = "mp", namespace: str = "mintplane") -> tuple[dict[str, Any], ...]:
    """`helm template` with the given extra arguments, parsed; fails the test with helm's own message."""
    result = helm("template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION, *args)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def default_manifest() -> Manifest:
    return list(render("--set", f"secrets.existingSecret={SECRET}"))


def variation_manifest() -> Manifest:
    return list(render("-f", str(VARIATION)))


def of_kind(manifest: Manifest, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifest if doc["kind"] == kind}


def component(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/component"])


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


# --- lint and render -------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, "namespaced-values.yaml", "kind-values.yaml"])
def test_helm_lint_strict_passes(values: str | None) -> None:
    args = ["lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART), "--set", f"secrets.existingSecret={SECRET}"]
    if values:
        args += ["-f", str(CHART / "ci" / values)]
    result = helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_default_and_variation_render_different_valid_sets() -> None:
    default = Counter(doc["kind"] for doc in default_manifest())
    variation = Counter(doc["kind"] for doc in variation_manifest())
    assert default["Deployment"] == 10  # 8 services + gateway + operator
    assert variation["Deployment"] == 9  # media disabled
    assert default["ClusterRole"] == variation["ClusterRole"] == 1
    assert default["Role"] == 0 and variation["Role"] == 1
    assert default["HorizontalPodAutoscaler"] == 0 and variation["HorizontalPodAutoscaler"] == 1
    assert default["Ingress"] == 0 and variation["Ingress"] == 1
    assert "Secret" not in default and "Secret" not in variation


def test_every_object_is_labelled_and_namespaced() -> None:
    for doc in default_manifest():
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "mp", doc["metadata"]["name"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "mintplane-" + yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "mintplane", doc["metadata"]["name"]


def test_missing_secret_name_fails_with_a_clear_message() -> None:
    result = helm("template", "mp", str(CHART), "--kube-version", KUBE_VERSION)
    assert result.returncode != 0
    assert "secrets.existingSecret is required" in result.stderr


# --- one component shape for every service -------------------------------------------------------------


@pytest.mark.parametrize("manifest_of", [default_manifest, variation_manifest], ids=["default", "variation"])
def test_one_deployment_service_pdb_per_enabled_service(manifest_of: Any) -> None:
    manifest = manifest_of()
    enabled = {name for name in SERVICES if not (manifest_of is variation_manifest and name == "media")}
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
        per_component = Counter(component(doc) for doc in of_kind(manifest, kind).values())
        for name in SERVICES:
            assert per_component[name] == (1 if name in enabled else 0), (kind, name)
    # the gateway gets the same shape; the operator a Deployment without Service/PDB (nothing calls it)
    deployments = Counter(component(doc) for doc in of_kind(manifest, "Deployment").values())
    services = Counter(component(doc) for doc in of_kind(manifest, "Service").values())
    assert deployments["gateway"] == services["gateway"] == 1
    assert deployments["operator"] == 1 and services["operator"] == 0


def test_service_deployments_run_their_module_on_their_port() -> None:
    manifest = default_manifest()
    deployments = of_kind(manifest, "Deployment")
    services = of_kind(manifest, "Service")
    for name, port in SERVICES.items():
        container = containers(deployments[f"mp-mintplane-{name}"])[0]
        module = name.replace("-", "_")
        assert container["command"] == ["python", "-m", f"mintplane.{module}"]
        assert (ROOT / "services" / "mintplane" / module / "__main__.py").is_file(), module
        env = env_of(container)
        assert env["MINTPLANE_GRPC_HOST"]["value"] == "0.0.0.0"
        assert env["MINTPLANE_GRPC_PORT"]["value"] == str(port)
        assert container["ports"][0] == {"name": "grpc", "containerPort": port, "protocol": "TCP"}
        service_ports = services[f"mp-mintplane-{name}"]["spec"]["ports"]
        assert [(p["name"], p["port"], p["targetPort"]) for p in service_ports] == [("grpc", port, "grpc")]


def test_per_service_overrides_apply_to_that_service_only() -> None:
    deployments = of_kind(variation_manifest(), "Deployment")
    catalog = deployments["mp-mintplane-catalog"]
    assert catalog["spec"]["replicas"] == 3
    catalog_container = containers(catalog)[0]
    assert catalog_container["resources"]["requests"]["cpu"] == "200m"
    # maps merge key by key over the defaults: the memory request and limit stay
    assert catalog_container["resources"]["requests"]["memory"] == "128Mi"
    assert catalog_container["resources"]["limits"]["memory"] == "512Mi"
    assert env_of(catalog_container)["MINTPLANE_PG_POOL_MAX"]["value"] == "20"
    wallet_container = containers(deployments["mp-mintplane-wallet"])[0]
    assert wallet_container["resources"]["requests"]["cpu"] == "50m"
    assert "MINTPLANE_PG_POOL_MAX" not in env_of(wallet_container)
    # autoscaled: the HPA owns the replica count
    assert "replicas" not in deployments["mp-mintplane-auth"]["spec"]
    hpa = of_kind(variation_manifest(), "HorizontalPodAutoscaler")["mp-mintplane-auth"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    # digest pins the image
    image = catalog_container["image"]
    assert image.startswith("registry.example.com/mintplane@sha256:")


# --- hardened workloads -----------------------------------------------------------------------------------


def _assert_hardened(doc: dict[str, Any]) -> None:
    name = doc["metadata"]["name"]
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert pod["securityContext"]["runAsUser"] == 10001, name
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
    assert pod["enableServiceLinks"] is False, name
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        assert container["resources"]["requests"]["cpu"], name
        assert container["resources"]["requests"]["memory"], name
        assert container["resources"]["limits"]["memory"], name
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name


@pytest.mark.parametrize("manifest_of", [default_manifest, variation_manifest], ids=["default", "variation"])
def test_every_workload_is_hardened_and_has_resources(manifest_of: Any) -> None:
    manifest = manifest_of()
    workloads = [doc for doc in manifest if doc["kind"] in ("Deployment", "Job")]
    assert len(workloads) >= 10
    for doc in workloads:
        _assert_hardened(doc)


@pytest.mark.parametrize("manifest_of", [default_manifest, variation_manifest], ids=["default", "variation"])
def test_every_deployment_has_startup_liveness_and_readiness_probes(manifest_of: Any) -> None:
    for doc in of_kind(manifest_of(), "Deployment").values():
        container = containers(doc)[0]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe in container, (doc["metadata"]["name"], probe)
        name = component(doc)
        if name in SERVICES:  # native gRPC health checks on the service's own port
            assert container["livenessProbe"]["grpc"] == {"port": SERVICES[name]}
            assert container["readinessProbe"]["grpc"] == {"port": SERVICES[name]}
        elif name == "gateway":
            assert container["livenessProbe"]["httpGet"]["port"] == "http"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        else:
            assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


# --- secrets and settings ---------------------------------------------------------------------------------


def test_connection_strings_come_only_from_the_named_secret() -> None:
    deployments = of_kind(default_manifest(), "Deployment")
    expected = {
        "auth": {"MINTPLANE_PG_DSN", "MINTPLANE_REDIS_URL", "MINTPLANE_AUTH_JWT_PRIVATE_KEY"},
        "media": {"MINTPLANE_MONGO_URL"},
        "indexer": {"MINTPLANE_PG_DSN", "MINTPLANE_MONGO_URL", "MINTPLANE_AMQP_URL"},
        "operator": set(),
    }
    for name, wanted in expected.items():
        env = env_of(containers(deployments[f"mp-mintplane-{name}"])[0])
        from_secret = {key for key, item in env.items() if "secretKeyRef" in item.get("valueFrom", {})}
        assert from_secret == wanted, name
        for key in from_secret:
            ref = dict(env[key]["valueFrom"]["secretKeyRef"])
            # only settings listed in secrets.optional may be missing from the Secret
            assert ref.pop("optional", False) is (key == "MINTPLANE_AUTH_JWT_PRIVATE_KEY"), key
            assert ref == {"name": SECRET, "key": key}
    for doc in default_manifest():
        text = yaml.safe_dump(doc)
        assert "mintplane:mintplane@" not in text and "password" not in text.lower(), doc["metadata"]["name"]


def test_custom_secret_keys_are_honoured() -> None:
    manifest = render("--set", f"secrets.existingSecret={SECRET}", "--set", "secrets.keys.pgDsn=pg-dsn")
    deployment = of_kind(list(manifest), "Deployment")["mp-mintplane-wallet"]
    ref = env_of(containers(deployment)[0])["MINTPLANE_PG_DSN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": SECRET, "key": "pg-dsn"}


def test_configmap_holds_non_secret_settings_and_rolls_pods_when_it_changes() -> None:
    config = of_kind(default_manifest(), "ConfigMap")["mp-mintplane-config"]["data"]
    assert config == {"MINTPLANE_LOG_LEVEL": "INFO", "MINTPLANE_LOG_JSON": "true"}
    changed = list(render("--set", f"secrets.existingSecret={SECRET}", "--set", "config.logLevel=DEBUG"))

    def checksum(manifest: Manifest) -> str:
        doc = of_kind(manifest, "Deployment")["mp-mintplane-auth"]
        return str(doc["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(default_manifest()) != checksum(changed)


def test_gateway_and_operator_know_where_the_services_are() -> None:
    deployments = of_kind(default_manifest(), "Deployment")
    gateway = env_of(containers(deployments["mp-mintplane-gateway"])[0])
    assert gateway["MINTPLANE_GATEWAY_HOST"]["value"] == "0.0.0.0"
    assert gateway["MINTPLANE_GATEWAY_PORT"]["value"] == "8081"
    for name, port in SERVICES.items():
        key = f"MINTPLANE_GATEWAY_{name.replace('-', '_').upper()}_ADDR"
        if name == "indexer":  # the gateway does not call the indexer
            assert key not in gateway
        else:
            assert gateway[key]["value"] == f"mp-mintplane-{name}:{port}"
    auth = env_of(containers(deployments["mp-mintplane-auth"])[0])
    assert auth["MINTPLANE_AUTH_USER_TARGET"]["value"] == "mp-mintplane-user:50052"
    assert auth["MINTPLANE_AUTH_CHAIN_REGISTRY_TARGET"]["value"] == "mp-mintplane-chain-registry:50056"
    # a disabled service is no one's upstream
    variation_gateway = env_of(containers(of_kind(variation_manifest(), "Deployment")["mp-mintplane-gateway"])[0])
    assert "MINTPLANE_GATEWAY_MEDIA_ADDR" not in variation_gateway
    assert "MINTPLANE_GATEWAY_CATALOG_ADDR" in variation_gateway
    operator = env_of(containers(deployments["mp-mintplane-operator"])[0])
    assert operator["MINTPLANE_OPERATOR_REGISTRY_TARGET"]["value"] == "mp-mintplane-chain-registry:50056"
    assert operator["MINTPLANE_OPERATOR_CATALOG_TARGET"]["value"] == "mp-mintplane-catalog:50057"
    assert operator["MINTPLANE_OPERATOR_NAMESPACES"]["value"] == ""  # cluster-wide by default
    operator_image = containers(deployments["mp-mintplane-operator"])[0]["image"]
    assert operator["MINTPLANE_OPERATOR_INDEXER_IMAGE"]["value"] == operator_image
    assert operator["MINTPLANE_OPERATOR_INDEXER_ENV_SECRET"]["value"] == SECRET
    assert deployments["mp-mintplane-operator"]["spec"]["strategy"] == {"type": "Recreate"}


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook() -> None:
    jobs = of_kind(default_manifest(), "Job")
    assert list(jobs) == ["mp-mintplane-migrations"]
    job = jobs["mp-mintplane-migrations"]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    container = containers(job)[0]
    assert container["command"] == ["python", "-m", "mintplane.common.migrate", "upgrade"]
    assert env_of(container)["MINTPLANE_PG_DSN"]["valueFrom"]["secretKeyRef"]["name"] == SECRET
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # a plain Job (hook: false) is not a hook and gets a per-revision name
    plain = of_kind(variation_manifest(), "Job")
    assert list(plain) == ["mp-mintplane-migrations-1"]
    assert "helm.sh/hook" not in (plain["mp-mintplane-migrations-1"]["metadata"].get("annotations") or {})


# --- RBAC -------------------------------------------------------------------------------------------------

NAMESPACED_RULES = [
    (("mintplane.io",), ("chains", "chainendpoints", "indexerjobs", "collections"), ("get", "list", "watch", "patch")),
    (("mintplane.io",), ("chains/status", "chainendpoints/status", "indexerjobs/status", "collections/status"),
     ("get", "patch", "update")),
    (("mintplane.io",), ("chains/finalizers", "chainendpoints/finalizers", "indexerjobs/finalizers",
                         "collections/finalizers"), ("update",)),
    (("apps",), ("deployments",), ("create", "get", "list", "watch", "patch", "update", "delete")),
    (("batch",), ("jobs",), ("create", "get", "list", "watch", "patch", "update", "delete")),
    (("",), ("secrets",), ("get",)),
    (("",), ("events",), ("create", "patch")),
    (("events.k8s.io",), ("events",), ("create", "patch")),
]
CLUSTER_RULES = [
    (("apiextensions.k8s.io",), ("customresourcedefinitions",), ("list", "watch")),
    (("",), ("namespaces",), ("list", "watch")),
]


def _rules(doc: dict[str, Any]) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    return [(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"])) for r in doc["rules"]]


def test_cluster_scoped_rbac_is_exactly_the_least_privilege_set() -> None:
    manifest = default_manifest()
    roles = of_kind(manifest, "ClusterRole")
    assert list(roles) == ["mintplane-mp-mintplane-operator"]  # namespace in the name: no clash across namespaces
    assert _rules(roles["mintplane-mp-mintplane-operator"]) == CLUSTER_RULES + NAMESPACED_RULES
    binding = of_kind(manifest, "ClusterRoleBinding")["mintplane-mp-mintplane-operator"]
    subject = {"kind": "ServiceAccount", "name": "mp-mintplane-operator", "namespace": "mintplane"}
    assert binding["subjects"] == [subject]
    assert of_kind(manifest, "Role") == {}


def test_namespaced_rbac_keeps_only_discovery_cluster_wide() -> None:
    manifest = list(render("-f", str(VARIATION), "--set", "operator.rbac.watchNamespaces={team-a,mintplane}"))
    assert _rules(of_kind(manifest, "ClusterRole")["mintplane-mp-mintplane-operator"]) == CLUSTER_RULES
    roles = [doc for doc in manifest if doc["kind"] == "Role"]
    assert sorted(doc["metadata"]["namespace"] for doc in roles) == ["mintplane", "team-a"]
    for role in roles:
        assert _rules(role) == NAMESPACED_RULES
    bindings = [doc for doc in manifest if doc["kind"] == "RoleBinding"]
    assert sorted(doc["metadata"]["namespace"] for doc in bindings) == ["mintplane", "team-a"]
    operator = of_kind(manifest, "Deployment")["mp-mintplane-operator"]
    assert env_of(containers(operator)[0])["MINTPLANE_OPERATOR_NAMESPACES"]["value"] == "mintplane,team-a"


def test_no_rbac_rule_uses_wildcards() -> None:
    for doc in variation_manifest() + default_manifest():
        for rule in doc.get("rules", []) if doc["kind"] in ("Role", "ClusterRole") else []:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]


def test_only_the_operator_mounts_a_service_account_token() -> None:
    for doc in default_manifest():
        if doc["kind"] in ("Deployment", "Job"):
            mounted = doc["spec"]["template"]["spec"]["automountServiceAccountToken"]
            assert mounted is (component(doc) == "operator"), doc["metadata"]["name"]


# --- network policies -------------------------------------------------------------------------------------


def _egress_ports(policy: dict[str, Any]) -> set[int]:
    return {port["port"] for rule in policy["spec"]["egress"] for port in rule["ports"]}


def test_network_policies_open_only_the_grpc_port_and_needed_egress() -> None:
    policies = of_kind(default_manifest(), "NetworkPolicy")
    media = policies["mp-mintplane-media"]["spec"]
    assert media["policyTypes"] == ["Ingress", "Egress"]
    assert [[p["port"] for p in rule["ports"]] for rule in media["ingress"]] == [[50055]]
    media_egress = _egress_ports(policies["mp-mintplane-media"])
    assert 53 in media_egress and 27017 in media_egress
    assert 5432 not in media_egress and 6379 not in media_egress  # media holds no PostgreSQL/Redis credentials
    assert {5432, 27017, 5672} <= _egress_ports(policies["mp-mintplane-indexer"])
    operator = policies["mp-mintplane-operator"]
    assert operator["spec"]["ingress"] == []
    assert 6443 in _egress_ports(operator) and 5432 not in _egress_ports(operator)
    assert 6443 not in _egress_ports(policies["mp-mintplane-auth"])
    # gRPC egress only to the pods of the services the component calls (its upstreams)
    auth_grpc = {(rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"], rule["ports"][0]["port"])
                 for rule in policies["mp-mintplane-auth"]["spec"]["egress"] if "to" in rule}
    assert auth_grpc == {("user", 50052), ("wallet", 50053), ("chain-registry", 50056)}
    assert not [rule for rule in media["egress"] if "to" in rule]
    gateway_ingress = policies["mp-mintplane-gateway"]["spec"]["ingress"]
    assert [[p["port"] for p in rule["ports"]] for rule in gateway_ingress] == [[8081]]


def test_strict_network_policy_admits_only_pods_of_the_release() -> None:
    policies = of_kind(variation_manifest(), "NetworkPolicy")
    sources = policies["mp-mintplane-auth"]["spec"]["ingress"][0]["from"]
    assert sources == [{"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "mp",
                                                        "app.kubernetes.io/name": "mintplane"}}}]


def test_autoscaling_bounds_are_checked_with_the_service_named() -> None:
    result = helm("template", "mp", str(CHART), "--kube-version", KUBE_VERSION,
                  "--set", f"secrets.existingSecret={SECRET}",
                  "--set", "services.catalog.autoscaling.enabled=true",
                  "--set", "services.catalog.autoscaling.minReplicas=5",
                  "--set", "services.catalog.autoscaling.maxReplicas=2")
    assert result.returncode != 0
    assert "catalog: autoscaling.minReplicas (5) is above autoscaling.maxReplicas (2)" in result.stderr


def test_network_policies_can_be_turned_off() -> None:
    manifest = render("--set", f"secrets.existingSecret={SECRET}", "--set", "networkPolicy.enabled=false")
    assert not [doc for doc in manifest if doc["kind"] == "NetworkPolicy"]


# --- ingress, metrics -------------------------------------------------------------------------------------


def test_ingress_routes_hosts_to_the_gateway_with_tls() -> None:
    ingress = of_kind(variation_manifest(), "Ingress")["mp-mintplane-gateway"]["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"secretName": "mintplane-tls", "hosts": ["api.mintplane.example"]}]
    rule = ingress["rules"][0]
    assert rule["host"] == "api.mintplane.example"
    backend = rule["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "mp-mintplane-gateway", "port": {"name": "http"}}}


def test_service_monitors_are_off_by_default_and_need_metrics() -> None:
    assert not [doc for doc in default_manifest() if doc["kind"] == "ServiceMonitor"]
    refused = helm("template", "mp", str(CHART), "--kube-version", KUBE_VERSION, "--set",
                   f"secrets.existingSecret={SECRET}", "--set", "metrics.serviceMonitor.enabled=true")
    assert refused.returncode != 0 and "needs metrics.enabled" in refused.stderr
    manifest = render("--set", f"secrets.existingSecret={SECRET}", "--set", "metrics.enabled=true",
                      "--set", "metrics.serviceMonitor.enabled=true",
                      "--set", "metrics.serviceMonitor.labels.release=kps")
    monitors = of_kind(list(manifest), "ServiceMonitor")
    assert len(monitors) == len(SERVICES)
    monitor = monitors["mp-mintplane-auth"]
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    auth_service = of_kind(list(manifest), "Service")["mp-mintplane-auth"]
    assert [p["name"] for p in auth_service["spec"]["ports"]] == ["grpc", "metrics"]


@pytest.mark.parametrize("namespace", ["mintplane", "a-namespace-whose-name-is-as-long-as-kubernetes-allows-it-63ch"])
def test_long_release_names_stay_valid_and_distinct(namespace: str) -> None:
    release = "a-release-name-as-long-as-helm-allows-fifty-three-ch"  # helm's limit is 53
    manifest = render("--set", f"secrets.existingSecret={SECRET}", release=release, namespace=namespace)
    dns_label = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    names: Counter[tuple[str, str | None, str]] = Counter()
    for doc in manifest:
        name = doc["metadata"]["name"]
        assert len(name) <= 63 and dns_label.match(name), name
        names[(doc["kind"], doc["metadata"].get("namespace"), name)] += 1
    assert max(names.values()) == 1, [key for key, count in names.items() if count > 1]
    assert len([doc for doc in manifest if doc["kind"] == "Deployment"]) == 10


def test_values_file_documents_every_top_level_key() -> None:
    text = (CHART / "values.yaml").read_text()
    schema_keys = set(yaml.safe_load((CHART / "values.yaml").read_text()))
    for key in schema_keys:
        block = text.split(f"\n{key}:", 1)[0].rstrip().splitlines()
        assert block and block[-1].lstrip().startswith("#"), f"values.yaml: {key} has no comment above it"

"""The chart against a real Kubernetes API (the dev stack's control plane, or kind via scripts/kind-e2e.sh):
every rendered object passes the API server's own validation, `helm install` creates exactly what the chart
renders, the Deployment controller takes the Deployments over, and `helm uninstall` removes it all.

No kubelet runs locally, so no test waits for pods: installs use --no-hooks (the pre-install migration Job
would wait for a pod forever) and the hook is checked as rendered and recorded in the release instead.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.e2e

LAYOUT = Layout.default()
CHART = LAYOUT.root / "charts" / "mintplane"
VARIATION = CHART / "ci" / "namespaced-values.yaml"
SECRET = "mintplane-chart-e2e"
INGRESS = ["--set", "gateway.ingress.enabled=true", "--set", "gateway.ingress.className=nginx"]


def _binary(name: str) -> str:
    local = LAYOUT.bin / name
    found = str(local) if local.is_file() else shutil.which(name)
    assert found, f"{name} not found: run `make install`"
    return found


HELM = _binary("helm")
KUBECTL = _binary("kubectl")


def run(
    *args: str, kubeconfig: Path, stdin: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(LAYOUT.state), "KUBECONFIG": str(kubeconfig)})


def docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kinds_and_names(manifest: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(doc["kind"], doc["metadata"]["name"]) for doc in manifest}


@pytest.fixture(scope="module")
def api(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture(scope="module")
def kube_version(api: client.ApiClient) -> str:
    return str(client.VersionApi(api).get_code().git_version)


@pytest.fixture
def namespace_factory(api: client.ApiClient, kubeconfig: Path) -> Iterator[Callable[[], str]]:
    """Fresh namespaces holding the Secret the chart names; releases and namespaces are removed afterwards."""
    core = client.CoreV1Api(api)
    created: list[str] = []

    def make() -> str:
        name = f"chart-e2e-{uuid.uuid4().hex[:8]}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        created.append(name)
        core.create_namespaced_secret(name, client.V1Secret(
            metadata=client.V1ObjectMeta(name=SECRET),
            string_data={
                "MINTPLANE_PG_DSN": "postgresql://mintplane:mintplane@postgres:5432/mintplane",
                "MINTPLANE_REDIS_URL": "redis://redis:6379/0",
                "MINTPLANE_AMQP_URL": "amqp://mintplane:mintplane@rabbitmq:5672/",
                "MINTPLANE_MONGO_URL": "mongodb://mongo:27017/",
            },
        ))
        return name

    yield make
    for name in created:
        releases = run(HELM, "list", "--namespace", name, "--short", kubeconfig=kubeconfig).stdout.split()
        for release in releases:
            run(HELM, "uninstall", release, "--namespace", name, "--wait", kubeconfig=kubeconfig)
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def release_name() -> str:
    return f"mp{uuid.uuid4().hex[:6]}"


def template(release: str, namespace: str, kube_version: str, *extra: str, kubeconfig: Path) -> str:
    result = run(HELM, "template", release, str(CHART), "--namespace", namespace, "--kube-version", kube_version,
                 "--set", f"secrets.existingSecret={SECRET}", *extra, kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "values",
    [[], ["-f", str(VARIATION), *INGRESS], ["-f", str(CHART / "ci" / "kind-values.yaml")]],
    ids=["default", "variation", "kind"],
)
def test_every_rendered_object_passes_server_side_validation(
    values: list[str], namespace_factory: Callable[[], str], kube_version: str, kubeconfig: Path
) -> None:
    namespace = namespace_factory()
    rendered = template(release_name(), namespace, kube_version, "--include-crds", *values, kubeconfig=kubeconfig)
    objects = docs(rendered)
    kinds = {doc["kind"] for doc in objects}
    assert {"CustomResourceDefinition", "Deployment", "Job", "NetworkPolicy", "ClusterRole"} <= kinds
    result = run(KUBECTL, "apply", "--server-side", "--force-conflicts", "--field-manager=chart-e2e-dry-run",
                 "--dry-run=server", "--namespace", namespace, "-f", "-", stdin=rendered, kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr[-4000:]
    applied = [line for line in result.stdout.splitlines() if "serverside-applied (server dry run)" in line]
    assert len(applied) == len(objects), result.stdout


def _installed(api: client.ApiClient, namespace: str, cluster_names: set[str]) -> set[tuple[str, str]]:
    """Every object kind the chart creates, as the API server lists it."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    policy, net, rbac = client.PolicyV1Api(api), client.NetworkingV1Api(api), client.RbacAuthorizationV1Api(api)
    autoscaling = client.AutoscalingV2Api(api)
    found: set[tuple[str, str]] = set()
    listings: list[tuple[str, Any]] = [
        ("Deployment", apps.list_namespaced_deployment(namespace)),
        ("Service", core.list_namespaced_service(namespace)),
        ("PodDisruptionBudget", policy.list_namespaced_pod_disruption_budget(namespace)),
        ("NetworkPolicy", net.list_namespaced_network_policy(namespace)),
        ("Ingress", net.list_namespaced_ingress(namespace)),
        ("ConfigMap", core.list_namespaced_config_map(namespace)),
        ("Role", rbac.list_namespaced_role(namespace)),
        ("RoleBinding", rbac.list_namespaced_role_binding(namespace)),
        ("HorizontalPodAutoscaler", autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace)),
        ("Job", client.BatchV1Api(api).list_namespaced_job(namespace)),
    ]
    for kind, listing in listings:
        found |= {(kind, item.metadata.name) for item in listing.items if item.metadata.name != "kube-root-ca.crt"}
    found |= {("ServiceAccount", item.metadata.name) for item in core.list_namespaced_service_account(namespace).items
              if item.metadata.name != "default"}
    for name in cluster_names:
        readers = (("ClusterRole", rbac.read_cluster_role), ("ClusterRoleBinding", rbac.read_cluster_role_binding))
        for kind, read in readers:
            try:
                read(name)
                found.add((kind, name))
            except ApiException as exc:
                if exc.status != 404:
                    raise
    return found


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


@pytest.mark.parametrize(
    ("values", "gateway_url"),
    [(INGRESS, "http://mintplane.local/graphql"), (["-f", str(VARIATION)], "https://api.mintplane.example/graphql")],
    ids=["cluster-rbac", "namespaced-rbac"],
)
def test_install_creates_exactly_the_rendered_objects_and_uninstall_removes_them(
    values: list[str], gateway_url: str, api: client.ApiClient, namespace_factory: Callable[[], str], kubeconfig: Path
) -> None:
    namespace = namespace_factory()
    release = release_name()
    installed = run(HELM, "install", release, str(CHART), "--namespace", namespace, "--no-hooks",
                    "--set", f"secrets.existingSecret={SECRET}", *values, kubeconfig=kubeconfig)
    assert installed.returncode == 0, installed.stderr
    assert "STATUS: deployed" in installed.stdout

    manifest = docs(run(HELM, "get", "manifest", release, "--namespace", namespace, kubeconfig=kubeconfig).stdout)
    expected = kinds_and_names(manifest)
    assert sum(1 for kind, _ in expected if kind == "Deployment") >= 9
    cluster_names = {name for kind, name in expected if kind in ("ClusterRole", "ClusterRoleBinding")}
    assert cluster_names == {f"{namespace}-{release}-mintplane-operator"}
    assert _installed(api, namespace, cluster_names) == expected

    # the migration hook is part of the release (helm get hooks) but --no-hooks did not run it
    hooks = docs(run(HELM, "get", "hooks", release, "--namespace", namespace, kubeconfig=kubeconfig).stdout)
    hook_jobs = [doc for doc in hooks if doc["kind"] == "Job"]
    if "-f" in values:  # the variation renders migrations as a plain Job instead
        assert hook_jobs == [] and ("Job", f"{release}-mintplane-migrations-1") in expected
    else:
        assert [job["metadata"]["annotations"]["helm.sh/hook"] for job in hook_jobs] == ["pre-install,pre-upgrade"]
        assert not client.BatchV1Api(api).list_namespaced_job(namespace).items

    # the real Deployment controller takes every Deployment over (pods stay Pending without a kubelet)
    apps = client.AppsV1Api(api)
    deployments = {name for kind, name in expected if kind == "Deployment"}

    def all_have_replica_sets() -> bool:
        owners = {ref.name for rs in apps.list_namespaced_replica_set(namespace).items
                  for ref in rs.metadata.owner_references or []}
        return deployments <= owners

    assert _wait_for(all_have_replica_sets), "the Deployment controller created no ReplicaSet for some Deployments"

    notes = run(HELM, "get", "notes", release, "--namespace", namespace, kubeconfig=kubeconfig).stdout
    assert "kubectl get chains" in notes
    assert gateway_url in notes

    uninstalled = run(HELM, "uninstall", release, "--namespace", namespace, "--wait", kubeconfig=kubeconfig)
    assert uninstalled.returncode == 0, uninstalled.stderr
    assert _installed(api, namespace, cluster_names) == set()


def test_same_release_name_in_two_namespaces_does_not_clash(
    api: client.ApiClient, namespace_factory: Callable[[], str], kubeconfig: Path
) -> None:
    release = release_name()
    first, second = namespace_factory(), namespace_factory()
    for namespace in (first, second):
        result = run(HELM, "install", release, str(CHART), "--namespace", namespace, "--no-hooks",
                     "--set", f"secrets.existingSecret={SECRET}", kubeconfig=kubeconfig)
        assert result.returncode == 0, result.stderr
    rbac = client.RbacAuthorizationV1Api(api)
    for namespace in (first, second):
        role = rbac.read_cluster_role(f"{namespace}-{release}-mintplane-operator")
        assert role.metadata.annotations["meta.helm.sh/release-namespace"] == namespace
        binding = rbac.read_cluster_role_binding(f"{namespace}-{release}-mintplane-operator")
        assert [(s.name, s.namespace) for s in binding.subjects] == [(f"{release}-mintplane-operator", namespace)]
    notes = run(HELM, "get", "notes", release, "--namespace", first, kubeconfig=kubeconfig).stdout
    assert f"--namespace {first} port-forward service/{release}-mintplane-gateway 8081:8081" in notes


def test_install_without_secret_name_is_refused_with_the_reason(
    namespace_factory: Callable[[], str], kubeconfig: Path
) -> None:
    namespace = namespace_factory()
    result = run(HELM, "install", release_name(), str(CHART), "--namespace", namespace, "--no-hooks",
                 kubeconfig=kubeconfig)
    assert result.returncode != 0
    assert "secrets.existingSecret is required" in result.stderr
    assert run(HELM, "list", "--namespace", namespace, "--short", kubeconfig=kubeconfig).stdout.strip() == ""


# --- the operator's RBAC is enough for its job ----------------------------------------------------------


def _token_kubeconfig(api: client.ApiClient, kubeconfig: Path, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the chart's operator ServiceAccount (a TokenRequest token)."""
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    token = client.CoreV1Api(api).create_namespaced_service_account_token(account, namespace, request).status.token
    admin = yaml.safe_load(kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [cluster],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": "operator"}}],
    }))
    return path


@pytest.mark.parametrize("scope", ["cluster", "namespace"])
async def test_operator_reconciles_with_only_the_chart_rbac(
    scope: str, api: client.ApiClient, namespace_factory: Callable[[], str], kubeconfig: Path, tmp_path: Path
) -> None:
    """Runs the real operator with the token of the chart's ServiceAccount: every rule it needs (CRs, their
    status and finalizers, Deployments, Jobs, Secrets, Events, discovery) must be granted, none refused."""
    from mintplane.operator.testing import Cluster, OperatorProcess, eventually, registry_server

    namespace = namespace_factory()
    release = release_name()
    installed = run(HELM, "install", release, str(CHART), "--namespace", namespace, "--no-hooks",
                    "--set", f"secrets.existingSecret={SECRET}", "--set", f"operator.rbac.scope={scope}",
                    kubeconfig=kubeconfig)
    assert installed.returncode == 0, installed.stderr
    token_config = _token_kubeconfig(api, kubeconfig, namespace, f"{release}-mintplane-operator", tmp_path / "kc")
    admin = Cluster(kubeconfig)
    chain_id = int(uuid.uuid4().int % (10**9)) + 10**9  # no other test or the dev stack uses it
    wait = 45.0
    async with registry_server() as registry:
        operator = OperatorProcess(namespaces=[namespace], registry_target=registry, kubeconfig=token_config,
                                   log_path=tmp_path / "operator.log",
                                   env={"MINTPLANE_OPERATOR_INDEXER_ENV_SECRET": SECRET})
        operator.start()
        try:
            await operator.wait_live()
            await admin.create_secret(namespace, "rpc-key", {"apiKey": "not-a-real-key"})
            await admin.create("chains", namespace, {"kind": "Chain", "metadata": {"name": "net"}, "spec": {
                "caip2": f"eip155:{chain_id}", "chainId": chain_id, "name": "RBAC test", "nativeSymbol": "ETH",
                "indexer": {"enabled": True, "confirmations": 0}}})
            await admin.create("chainendpoints", namespace, {"kind": "ChainEndpoint", "metadata": {"name": "rpc"},
                               "spec": {"chainRef": "net", "url": "http://127.0.0.1:8545", "probeIntervalSeconds": 5,
                                        "authType": "bearer", "secretRef": {"name": "rpc-key"}}})
            await admin.create("indexerjobs", namespace, {"kind": "IndexerJob", "metadata": {"name": "backfill"},
                               "spec": {"chainRef": "net", "fromBlock": 0, "toBlock": 10}})

            async def reconciled() -> bool:
                chain = await admin.get("chains", namespace, "net") or {}
                endpoint = await admin.status("chainendpoints", namespace, "rpc")
                return bool(
                    chain.get("metadata", {}).get("finalizers")  # patch on the resource
                    and (chain.get("status") or {}).get("observedGeneration") == 1  # patch on /status
                    and await admin.deployment(namespace, "mintplane-indexer-net") is not None  # create deployments
                    and await admin.job(namespace, "mintplane-backfill-backfill") is not None  # create jobs
                    and endpoint.get("reportedChainId") == 31337  # probed with the key read from the Secret
                )

            await eventually(reconciled, timeout=wait, what="the operator to reconcile with the chart's RBAC")
            assert await admin.event_messages(namespace), "the operator posted no Event"
            for plural, name in (("indexerjobs", "backfill"), ("chainendpoints", "rpc"), ("chains", "net")):
                await admin.delete(plural, namespace, name)

            async def finalized() -> bool:  # finalizers removed by the operator: the objects really go
                return all([await admin.get(plural, namespace, name) is None
                            for plural, name in (("chains", "net"), ("chainendpoints", "rpc"))])

            await eventually(finalized, timeout=wait, what="finalizers to be removed")
        finally:
            operator.stop()
            # whatever the operator left unfinalized (a failed run) must not keep the namespace Terminating
            for plural, name in (("indexerjobs", "backfill"), ("chainendpoints", "rpc"), ("chains", "net")):
                if await admin.get(plural, namespace, name) is not None:
                    await admin.patch(plural, namespace, name, {"metadata": {"finalizers": None}})
            admin.close()
    log = (tmp_path / "operator.log").read_text(errors="replace")
    assert "Forbidden" not in log and "forbidden" not in log, operator.log_tail(60)


def test_kind_data_layer_manifest_passes_server_side_validation(
    namespace_factory: Callable[[], str], kubeconfig: Path
) -> None:
    """charts/mintplane/ci/kind-deps.yaml is only applied where Docker runs: validate it here too."""
    namespace = namespace_factory()
    manifest = CHART / "ci" / "kind-deps.yaml"
    result = run(KUBECTL, "apply", "--server-side", "--dry-run=server", "--namespace", namespace,
                 "-f", str(manifest), kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    expected = {(doc["kind"], doc["metadata"]["name"]) for doc in docs(manifest.read_text())}
    assert {("Deployment", name) for name in ("postgres", "redis", "rabbitmq", "mongo", "anvil")} <= expected
    assert result.stdout.count("serverside-applied (server dry run)") == len(expected)

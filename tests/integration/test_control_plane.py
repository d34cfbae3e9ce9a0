"""The local Kubernetes control plane answers through the kubernetes client, at the pinned version, with
the controllers mintplane relies on (garbage collection); helm and kubectl are the pinned builds."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.integration

KUBE_VERSION = "v1.35.4"
HELM_VERSION = "v3.22.0"


@pytest.fixture(scope="module")
def api(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _wait(predicate: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_version_is_pinned(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.git_version == KUBE_VERSION
    assert (info.major, info.minor) == ("1", "35")


def test_namespace_and_configmap_round_trip(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="chains"), data={"anvil": "eip155:31337"})
    )
    read = core.read_namespaced_config_map("chains", namespace)
    assert read.data == {"anvil": "eip155:31337"}
    assert core.read_namespace(namespace).status.phase == "Active"


def test_garbage_collector_removes_dependents(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name="dependent",
            owner_references=[client.V1OwnerReference(
                api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid,
            )],
        )),
    )
    core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone() -> bool:
        names = [item.metadata.name for item in core.list_namespaced_config_map(namespace).items]
        return "dependent" not in names

    assert _wait(dependent_gone), "kube-controller-manager's garbage collector did not remove the dependent"


def test_deployment_controller_creates_replicaset(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    labels = {"app": "probe"}
    apps.create_namespaced_deployment(namespace, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="probe"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
            ),
        ),
    ))
    assert _wait(lambda: bool(apps.list_namespaced_replica_set(namespace).items))


def test_kubectl_and_helm_are_pinned_and_reach_the_cluster(layout: Layout, kubeconfig: Path) -> None:
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(layout.state), "PATH": "/usr/bin:/bin"}
    kubectl = subprocess.run(
        [str(layout.bin / "kubectl"), "version", "-o", "json"], capture_output=True, text=True, env=env, check=True
    )
    assert f'"gitVersion": "{KUBE_VERSION}"' in kubectl.stdout
    assert kubectl.stdout.count(KUBE_VERSION) >= 2  # client and server
    helm = subprocess.run([str(layout.bin / "helm"), "version"], capture_output=True, text=True, env=env, check=True)
    assert f'Version:"{HELM_VERSION}"' in helm.stdout
    listing = subprocess.run(
        [str(layout.bin / "helm"), "list", "--all-namespaces", "-o", "json"],
        capture_output=True, text=True, env=env, check=True,
    )
    assert listing.stdout.strip().startswith("[")

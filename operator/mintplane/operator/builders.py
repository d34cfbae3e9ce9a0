"""Desired Kubernetes objects for a Chain's indexer Deployment and an IndexerJob's backfill Job.

Pure functions of the custom resource and the operator settings: the handler adopts the result (owner
reference) and server-side-applies it, so building the same object twice yields the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from mintplane.operator.settings import OperatorSettings

INDEXER_GRPC_PORT = 50058
MANAGED_BY = "mintplane-operator"
PART_OF = "mintplane"
CHAIN_LABEL = "mintplane.io/chain"
OWNER_LABEL = "mintplane.io/indexer-job"
COMPONENT_INDEXER = "indexer"
COMPONENT_BACKFILL = "backfill"
_RUN_AS = 10001


def child_name(prefix: str, name: str, *, limit: int = 63) -> str:
    """``prefix + name``, shortened with a stable hash suffix when it would exceed ``limit``."""
    full = f"{prefix}{name}"
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{full[: limit - 9].rstrip('-')}-{digest}"


def indexer_deployment_name(chain_name: str) -> str:
    return child_name("mintplane-indexer-", chain_name)


def backfill_job_name(job_name: str) -> str:
    return child_name("mintplane-backfill-", job_name)


def labels(component: str, instance: str, chain_name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": f"mintplane-{component}",
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        CHAIN_LABEL: chain_name,
    }


def _resources(override: Mapping[str, Any] | None, settings: OperatorSettings) -> dict[str, Any]:
    # An override replaces the defaults whole: merging key by key could put a request above a limit.
    if override:
        return {key: dict(value) for key, value in override.items() if value}
    return {
        "requests": {"cpu": settings.indexer_cpu_request, "memory": settings.indexer_memory_request},
        "limits": {"cpu": settings.indexer_cpu_limit, "memory": settings.indexer_memory_limit},
    }


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": _RUN_AS,
        "runAsGroup": _RUN_AS,
        "fsGroup": _RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_spec(container: dict[str, Any], settings: OperatorSettings, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
        **extra,
    }
    if settings.indexer_service_account:
        spec["serviceAccountName"] = settings.indexer_service_account
    return spec


def _container(name: str, image: str, command: Sequence[str], env: Sequence[Mapping[str, str]],
               resources: dict[str, Any], settings: OperatorSettings) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": list(command),
        "env": [dict(item) for item in env],
        # The DSNs and broker URLs: a Secret the platform owner manages, never the CR.
        "envFrom": [{"secretRef": {"name": settings.indexer_env_secret}}],
        "resources": resources,
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - a private emptyDir
    }


def indexer_deployment(chain_name: str, namespace: str, spec: Mapping[str, Any],
                       settings: OperatorSettings) -> dict[str, Any]:
    """One live indexer per chain. Recreate, not RollingUpdate: two indexers would race on checkpoints."""
    indexer = spec.get("indexer") or {}
    caip2 = str(spec["caip2"])
    name = indexer_deployment_name(chain_name)
    selector = {k: v for k, v in labels(COMPONENT_INDEXER, chain_name, chain_name).items()
                if k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")}
    env = [
        {"name": "MINTPLANE_GRPC_HOST", "value": "0.0.0.0"},
        {"name": "MINTPLANE_GRPC_PORT", "value": str(INDEXER_GRPC_PORT)},
        {"name": "MINTPLANE_INDEXER_CHAIN", "value": caip2},
        {"name": "MINTPLANE_INDEXER_CONFIRMATIONS", "value": str(indexer.get("confirmations", 12))},
        {"name": "MINTPLANE_INDEXER_BATCH_SIZE", "value": str(indexer.get("batchSize", 500))},
    ]
    if indexer.get("startBlock") is not None:
        env.append({"name": "MINTPLANE_INDEXER_START_BLOCK", "value": str(indexer["startBlock"])})
    container = _container(
        "indexer", str(indexer.get("image") or settings.indexer_image),
        ["python", "-m", "mintplane.indexer", "--chain", caip2], env,
        _resources(indexer.get("resources"), settings), settings,
    )
    grpc_probe = {"grpc": {"port": INDEXER_GRPC_PORT}}
    container["ports"] = [{"name": "grpc", "containerPort": INDEXER_GRPC_PORT, "protocol": "TCP"}]
    container["startupProbe"] = {**grpc_probe, "periodSeconds": 2, "failureThreshold": 30}
    container["readinessProbe"] = {**grpc_probe, "periodSeconds": 10, "failureThreshold": 3}
    container["livenessProbe"] = {**grpc_probe, "periodSeconds": 20, "failureThreshold": 3, "timeoutSeconds": 5}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(COMPONENT_INDEXER, chain_name, chain_name),
            "annotations": {"mintplane.io/caip2": caip2},
        },
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels(COMPONENT_INDEXER, chain_name, chain_name),
                             "annotations": {"mintplane.io/caip2": caip2}},
                "spec": _pod_spec(container, settings, terminationGracePeriodSeconds=30),
            },
        },
    }


def backfill_args(caip2: str, spec: Mapping[str, Any]) -> list[str]:
    args = ["python", "-m", "mintplane.indexer", "backfill", "--chain", caip2,
            "--from-block", str(int(spec["fromBlock"])), "--to-block", str(int(spec["toBlock"]))]
    for address in spec.get("contracts") or ():
        args += ["--contract", str(address)]
    if spec.get("batchSize"):
        args += ["--batch-size", str(int(spec["batchSize"]))]
    return args


def backfill_job(job_name: str, namespace: str, spec: Mapping[str, Any], caip2: str,
                 chain_spec: Mapping[str, Any], settings: OperatorSettings) -> dict[str, Any]:
    """A run-to-completion backfill; the image and resources follow the Chain's indexer overrides."""
    indexer = chain_spec.get("indexer") or {}
    chain_name = str(spec["chainRef"])
    object_labels = {**labels(COMPONENT_BACKFILL, job_name, chain_name), OWNER_LABEL: job_name}
    container = _container(
        "backfill", str(indexer.get("image") or settings.indexer_image), backfill_args(caip2, spec),
        [{"name": "MINTPLANE_INDEXER_CHAIN", "value": caip2}],
        _resources(indexer.get("resources"), settings), settings,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": backfill_job_name(job_name), "namespace": namespace, "labels": object_labels},
        "spec": {
            "backoffLimit": int(spec.get("backoffLimit", settings.backfill_backoff_limit)),
            "ttlSecondsAfterFinished": settings.backfill_ttl_seconds,
            "template": {
                "metadata": {"labels": object_labels},
                "spec": _pod_spec(container, settings, restartPolicy="Never"),
            },
        },
    }

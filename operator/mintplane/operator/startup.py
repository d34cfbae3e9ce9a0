"""Operator start and stop: Kopf settings, and the shared clients every handler finds in ``memo``.

Kopf copies the global memo into each object's memo, so ``memo.registry`` etc. are shared while values a
handler stores on its own ``memo`` (e.g. the last probe time) stay per object.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import grpc
import kopf

from mintplane.common.log import get_logger
from mintplane.operator import builders
from mintplane.operator.catalog import GrpcCatalog
from mintplane.operator.kube import Kube, load_api_client
from mintplane.operator.registry import GrpcRegistry
from mintplane.operator.settings import OperatorSettings, get_settings

log = get_logger(__name__)
MANAGED_SELECTOR = f"app.kubernetes.io/managed-by={builders.MANAGED_BY}"


def apply_kopf_settings(settings: kopf.OperatorSettings, config: OperatorSettings) -> None:
    """Kopf's knobs, in one place so the e2e tests and the entry point agree."""
    settings.persistence.finalizer = config.finalizer
    # Progress and diff-base in our own annotations: the CRD status schemas have no room for Kopf's.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="mintplane.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="mintplane.io", key="last-handled-configuration"
    )
    settings.peering.standalone = True
    settings.peering.mandatory = False
    settings.posting.enabled = config.post_events
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = builders.MANAGED_BY
    settings.posting.event_name_prefix = "mintplane-operator-"
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    # Only our own workloads come over the Deployment and Job watches.
    settings.watching.label_selectors["apps", "v1", "deployments"] = (
        f"{MANAGED_SELECTOR},app.kubernetes.io/component={builders.COMPONENT_INDEXER}"
    )
    settings.watching.label_selectors["batch", "v1", "jobs"] = (
        f"{MANAGED_SELECTOR},app.kubernetes.io/component={builders.COMPONENT_BACKFILL}"
    )


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = get_settings()
    apply_kopf_settings(settings, config)
    memo.settings = config
    memo.registry_channel = grpc.aio.insecure_channel(config.registry_target)
    memo.catalog_channel = grpc.aio.insecure_channel(config.catalog_target)
    memo.registry = GrpcRegistry(memo.registry_channel, timeout=config.rpc_timeout_seconds)
    memo.catalog = GrpcCatalog(memo.catalog_channel, timeout=config.rpc_timeout_seconds)
    memo.kube = Kube(load_api_client(), field_manager=config.field_manager, secret_ttl=config.secret_cache_seconds)
    memo.http = aiohttp.ClientSession(headers={"User-Agent": "mintplane-operator"})
    memo.abi_cache = {}
    log.info("operator configured", registry=config.registry_target, catalog=config.catalog_target,
             namespaces=config.namespaces or "cluster-wide")


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    if "http" in memo:
        await memo.http.close()
    for channel in ("registry_channel", "catalog_channel"):
        if channel in memo:
            await memo[channel].close()
    if "kube" in memo:
        memo.kube.close()

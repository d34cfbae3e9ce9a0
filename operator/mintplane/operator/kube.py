"""The few Kubernetes API calls the operator makes itself (Kopf does the watching and the status patches).

Workloads are written with server-side apply under one field manager, so applying the same desired object
again is a no-op and applying after a crash converges whatever state the previous run left.

Calls go through the official client's ``ApiClient`` (its configuration loading, auth, TLS and retries)
but as plain JSON: the typed ``AppsV1Api``/``CoreV1Api`` wrappers import every model class, which costs
about 90 MiB of RSS for the five endpoints used here. The client is synchronous; calls run in worker
threads so the Kopf event loop never blocks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from kubernetes import client, config
from urllib3.exceptions import HTTPError

APPLY = "application/apply-patch+yaml"
REQUEST_TIMEOUT_SECONDS = 30


class KubeError(Exception):
    """A failed API call, with the API server's own message (safe to show: it never holds secret data)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}" if status else message)

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500 or self.status == 409


class SecretUnavailable(Exception):
    """The referenced Secret or key is missing or unreadable; the message names it, never its value."""


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster service-account credentials when running in a Pod, else the (given or current) kubeconfig."""
    configuration = client.Configuration()
    # The config loaders carry no annotations; their contract is "fill this Configuration or raise".
    load_incluster = cast(Callable[..., None], config.load_incluster_config)
    load_kubeconfig = cast(Callable[..., None], config.load_kube_config)
    if kubeconfig:
        load_kubeconfig(config_file=kubeconfig, client_configuration=configuration)
        return client.ApiClient(configuration)
    try:
        load_incluster(client_configuration=configuration)
    except config.ConfigException:
        load_kubeconfig(client_configuration=configuration)
    return client.ApiClient(configuration)


def _message(reason: str, data: bytes | None) -> str:
    try:
        return str(json.loads(data or b"{}").get("message") or reason)
    except (ValueError, AttributeError):
        return reason


class Kube:
    def __init__(self, api_client: client.ApiClient, *, field_manager: str, secret_ttl: float = 30.0) -> None:
        self._api = api_client
        self._field_manager = field_manager
        self._secret_ttl = secret_ttl
        self._secrets: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

    def _request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                 body: Any = None, content_type: str | None = None) -> dict[str, Any] | None:
        """One call; None for 404, the decoded JSON body otherwise, KubeError for any other failure."""
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self._api.param_serialize(
            method=method, resource_path=path, query_params=list((query or {}).items()), header_params=headers,
            body=body, auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(method, url, header_params=headers, body=body,
                                          _request_timeout=REQUEST_TIMEOUT_SECONDS)
            read: Callable[[], bytes | None] = response.read  # unannotated in the client
            data = read()
        except HTTPError as exc:
            raise KubeError(0, f"Kubernetes API unreachable: {type(exc).__name__}") from None
        if response.status == 404:
            return None
        if not 200 <= response.status < 300:
            raise KubeError(int(response.status), _message(str(response.reason), data))
        return cast(dict[str, Any], json.loads(data)) if data else {}

    async def _run(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._request, method, path, **kwargs)

    async def _apply(self, path: str, body: dict[str, Any]) -> None:
        result = await self._run("PATCH", path, body=body, content_type=APPLY,
                                 query={"fieldManager": self._field_manager, "force": "true"})
        if result is None:
            raise KubeError(404, f"{path} not found (is its namespace gone?)")

    async def apply_deployment(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        await self._apply(f"/apis/apps/v1/namespaces/{meta['namespace']}/deployments/{meta['name']}", body)

    async def delete_deployment(self, namespace: str, name: str) -> None:
        await self._run("DELETE", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                        query={"propagationPolicy": "Background"})

    async def apply_job(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        await self._apply(f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}", body)

    async def delete_job(self, namespace: str, name: str) -> None:
        await self._run("DELETE", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
                        query={"propagationPolicy": "Background"})

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret, cached briefly so a probe every few seconds is not an API read each time."""
        cached = self._secrets.get((namespace, name))
        now = time.monotonic()
        if cached is None or now - cached[0] > self._secret_ttl:
            try:
                secret = await self._run("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
            except KubeError as exc:
                raise SecretUnavailable(f"cannot read Secret {namespace}/{name}: {exc.status}") from None
            if secret is None:
                self._secrets.pop((namespace, name), None)
                raise SecretUnavailable(f"Secret {namespace}/{name} not found")
            cached = (now, {k: str(v) for k, v in (secret.get("data") or {}).items()})
            self._secrets[(namespace, name)] = cached
        encoded = cached[1].get(key)
        if encoded is None:
            raise SecretUnavailable(f"Secret {namespace}/{name} has no key {key!r}")
        try:
            return base64.b64decode(encoded).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise SecretUnavailable(f"Secret {namespace}/{name} key {key!r} is not UTF-8 text") from None

    def close(self) -> None:
        close = cast(Callable[[], None], self._api.close)  # unannotated in the client
        close()

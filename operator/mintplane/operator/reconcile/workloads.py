"""The Kubernetes writes reconcile code needs, as a protocol (the real one is :class:`mintplane.operator.kube.Kube`)."""

from __future__ import annotations

from typing import Any, Protocol


class Workloads(Protocol):
    async def apply_deployment(self, body: dict[str, Any]) -> None: ...

    async def delete_deployment(self, namespace: str, name: str) -> None: ...

    async def apply_job(self, body: dict[str, Any]) -> None: ...

    async def delete_job(self, namespace: str, name: str) -> None: ...

    async def secret_value(self, namespace: str, name: str, key: str) -> str: ...

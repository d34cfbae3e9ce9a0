"""One failure type for reconcile code, and its translation into Kopf's retry semantics.

Reconcile functions raise :class:`ReconcileError` with a CamelCase reason and a message fit for a status
condition; handlers write that condition and re-raise it as ``kopf.TemporaryError`` (retry after a delay:
a service or the API server is unavailable) or ``kopf.PermanentError`` (the spec must change).
"""

from __future__ import annotations

import grpc
import kopf

from mintplane.operator.kube import KubeError, SecretUnavailable
from mintplane.operator.rpc import ServiceError, ServiceNotFound, ServiceUnavailable
from mintplane.operator.specs import SpecError


class ReconcileError(Exception):
    def __init__(self, reason: str, message: str, *, retryable: bool, delay: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.delay = delay


def classify(exc: Exception, *, what: str) -> ReconcileError:
    """Map a failure from a client module to a reason; ``what`` names the step for the message."""
    if isinstance(exc, ReconcileError):
        return exc
    if isinstance(exc, SpecError):
        return ReconcileError("InvalidSpec", str(exc), retryable=False)
    if isinstance(exc, ServiceUnavailable):
        reason = "RegistryUnavailable" if exc.service == "chain_registry" else "CatalogUnavailable"
        return ReconcileError(reason, f"{what}: {exc}", retryable=True)
    if isinstance(exc, ServiceNotFound):
        return ReconcileError("NotFound", f"{what}: {exc}", retryable=True)
    if isinstance(exc, ServiceError) and exc.code == grpc.StatusCode.FAILED_PRECONDITION:
        # State, not input: e.g. the chain is still disabled from an earlier delete until its Chain's own
        # reconcile re-enables it. Retry with backoff instead of failing the resource for good.
        reason = "ChainDisabled" if "disabled" in exc.details else "PreconditionFailed"
        return ReconcileError(reason, f"{what}: {exc}", retryable=True, delay=1)
    if isinstance(exc, ServiceError):
        reason = "RegistryRejected" if exc.service == "chain_registry" else "CatalogRejected"
        return ReconcileError(reason, f"{what}: {exc}", retryable=False)
    if isinstance(exc, KubeError):
        return ReconcileError("KubernetesError", f"{what}: {exc}", retryable=exc.retryable)
    if isinstance(exc, SecretUnavailable):
        return ReconcileError("SecretUnavailable", str(exc), retryable=True)
    raise exc


MAX_DELAY_SECONDS = 60.0


def to_kopf(error: ReconcileError, *, default_delay: float,
            retry: int = 0) -> kopf.TemporaryError | kopf.PermanentError:
    """Retries back off exponentially from the error's own delay (or the default), capped at a minute."""
    text = f"{error.reason}: {error.message}"
    if error.retryable:
        base = error.delay or default_delay
        return kopf.TemporaryError(text, delay=min(base * 2 ** min(retry, 6), MAX_DELAY_SECONDS))
    return kopf.PermanentError(text)

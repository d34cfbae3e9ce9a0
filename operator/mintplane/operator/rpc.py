"""How the operator reads a failed gRPC call: worth retrying (the service is down, overloaded, or does not
implement the call yet) or a definite answer about this request (bad input, missing row).

Kopf handlers turn the first kind into ``kopf.TemporaryError`` and the second into ``kopf.PermanentError``
or a condition, so a registry restart never becomes a permanently failed resource.
"""

from __future__ import annotations

import grpc

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)


class ServiceError(Exception):
    """A failed call to one of our services, with a message that is safe to show in a status."""

    def __init__(self, service: str, method: str, code: grpc.StatusCode, details: str) -> None:
        self.service = service
        self.method = method
        self.code = code
        self.details = details
        text = f"{service}.{method}: {code.name}"
        super().__init__(f"{text}: {details}" if details else text)


class ServiceUnavailable(ServiceError):
    """Retry later: nothing was decided about the request."""


class ServiceRejected(ServiceError):
    """The service refused the request itself (INVALID_ARGUMENT, FAILED_PRECONDITION, ...)."""


class ServiceNotFound(ServiceError):
    """The row the request names does not exist."""


def classify(service: str, method: str, exc: grpc.aio.AioRpcError) -> ServiceError:
    code = exc.code()
    details = exc.details() or ""
    if code in RETRYABLE:
        return ServiceUnavailable(service, method, code, details)
    if code == grpc.StatusCode.NOT_FOUND:
        return ServiceNotFound(service, method, code, details)
    return ServiceRejected(service, method, code, details)

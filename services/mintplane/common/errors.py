"""Domain errors that carry their gRPC status code.

Services raise these from plain domain code; the server interceptor turns them into a status with the
error's message, so handlers stay thin and clients always get a code that says what went wrong. Anything
else becomes INTERNAL with a generic message (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

from typing import ClassVar

import grpc


class DomainError(Exception):
    """Base of every expected failure. Subclasses fix the status code."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE


class Aborted(DomainError):
    code = grpc.StatusCode.ABORTED

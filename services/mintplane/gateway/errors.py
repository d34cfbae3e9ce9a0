"""What a client sees when something fails: a GraphQL error with a stable `extensions.code`.

Expected failures (bad input, missing session, someone else's data, rate limits) keep their message, which
the domain services write for end users. Everything else is masked to a generic message by MaskErrors and
logged here with its details, so no internals (addresses, SQL, tracebacks) reach a client.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import grpc
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors, ParserCache, SchemaExtension

from mintplane.common.log import get_logger

log = get_logger(__name__)


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL = "INTERNAL"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


class GatewayError(Exception):
    """An expected failure whose message is safe to show. graphql-core copies `extensions` onto the error."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extensions: dict[str, Any] = {"code": self.code.value, **extra}


class Unauthenticated(GatewayError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(GatewayError):
    code = ErrorCode.FORBIDDEN


class BadUserInput(GatewayError):
    code = ErrorCode.BAD_USER_INPUT


class NotFound(GatewayError):
    code = ErrorCode.NOT_FOUND


class RateLimited(GatewayError):
    code = ErrorCode.RATE_LIMITED


class UpstreamUnavailable(GatewayError):
    """A dependency is down or slow: the client may retry, and is told so without naming the dependency."""

    code = ErrorCode.INTERNAL

    def __init__(self) -> None:
        super().__init__("The service is temporarily unavailable; retry shortly.", retryable=True)


_PASS_THROUGH: dict[grpc.StatusCode, tuple[type[GatewayError], dict[str, Any]]] = {
    grpc.StatusCode.UNAUTHENTICATED: (Unauthenticated, {}),
    grpc.StatusCode.PERMISSION_DENIED: (Forbidden, {}),
    grpc.StatusCode.INVALID_ARGUMENT: (BadUserInput, {}),
    grpc.StatusCode.OUT_OF_RANGE: (BadUserInput, {}),
    grpc.StatusCode.ALREADY_EXISTS: (BadUserInput, {"reason": "ALREADY_EXISTS"}),
    grpc.StatusCode.FAILED_PRECONDITION: (BadUserInput, {"reason": "FAILED_PRECONDITION"}),
    grpc.StatusCode.NOT_FOUND: (NotFound, {}),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (RateLimited, {}),
}
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED})


class UpstreamFailure(Exception):
    """An upstream answered with a status that must not reach clients (INTERNAL, UNIMPLEMENTED, ...).

    It is not a GatewayError on purpose: MaskErrors replaces it with a generic INTERNAL error."""

    def __init__(self, service: str, method: str, status: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{service}.{method} failed with {status.name}: {details}")
        self.status = status


def from_status(status: grpc.StatusCode, details: str, *, service: str = "", method: str = "") -> Exception:
    """Translate an upstream gRPC status into what the resolver raises."""
    mapped = _PASS_THROUGH.get(status)
    if mapped is not None:
        error_type, extra = mapped
        return error_type(details or status.name.replace("_", " ").lower(), **extra)
    if status in _RETRYABLE:
        log.warning("upstream unavailable", upstream=service, rpc=method, grpc_code=status.name, details=details)
        return UpstreamUnavailable()
    return UpstreamFailure(service, method, status, details)


def _is_expected(error: GraphQLError) -> bool:
    """Errors that are safe to show: ours, and the request's own parse/validation/variable errors."""
    original = error.original_error
    return original is None or isinstance(original, GatewayError | GraphQLError)


class GatewayMaskErrors(MaskErrors):
    """Strawberry's MaskErrors, keeping expected errors and giving masked ones the INTERNAL code."""

    def __init__(self) -> None:
        super().__init__(
            should_mask_error=lambda error: not _is_expected(error), error_message="Internal server error."
        )

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": ErrorCode.INTERNAL.value}
        return masked


def _with_code(error: GraphQLError, code: ErrorCode) -> GraphQLError:
    """A copy with a code: validation errors come from a shared cache and must not be mutated."""
    return GraphQLError(
        error.message, nodes=error.nodes, source=error.source, positions=error.positions, path=error.path,
        original_error=error.original_error, extensions={**(error.extensions or {}), "code": code.value},
    )


class CodedParserCache(ParserCache):
    """ParserCache whose syntax errors carry GRAPHQL_PARSE_FAILED: it parses while its hook is being entered,
    so the error leaves the operation before ErrorCodes could see it."""

    def on_parse(self) -> Iterator[None]:
        try:
            yield from super().on_parse()
        except GraphQLSyntaxError as error:  # a fresh object per failure: lru_cache does not cache exceptions
            error.extensions = {**(error.extensions or {}), "code": ErrorCode.GRAPHQL_PARSE_FAILED.value}
            raise


class ErrorCodes(SchemaExtension):
    """Gives every error a code. Listed first among the extensions, so it runs after masking."""

    def __init__(self) -> None:
        self._validation_errors: set[int] = set()

    def on_validate(self) -> Iterator[None]:
        yield
        self._validation_errors = {id(error) for error in self.execution_context.pre_execution_errors or ()}

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self._coded(error) for error in result.errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        if error.extensions and "code" in error.extensions:
            return error
        if isinstance(error, GraphQLSyntaxError):
            return _with_code(error, ErrorCode.GRAPHQL_PARSE_FAILED)
        if id(error) in self._validation_errors:
            return _with_code(error, ErrorCode.GRAPHQL_VALIDATION_FAILED)
        # Raised before any field ran (variable coercion and the like): the request itself is wrong.
        return _with_code(error, ErrorCode.BAD_USER_INPUT if error.path is None else ErrorCode.INTERNAL)


def log_unexpected(errors: list[GraphQLError]) -> None:
    """Log what will be masked, with its traceback; expected errors are part of normal traffic."""
    for error in errors:
        if _is_expected(error):
            continue
        if isinstance(error.original_error, UpstreamFailure):  # the upstream logged its own traceback
            log.error("upstream failed", path=error.path, error=str(error.original_error))
        else:
            log.error("unexpected error while resolving", path=error.path, exc_info=error.original_error)

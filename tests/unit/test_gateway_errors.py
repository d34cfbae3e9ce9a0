"""Every error a client sees has a code; expected ones keep their message, anything else is masked."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import grpc
import pytest

from mintplane.api.user.v1 import user_pb2
from mintplane.gateway.errors import ErrorCode, GatewayError, UpstreamFailure, from_status
from mintplane.gateway.schema import build_schema
from mintplane.gateway.settings import GatewaySettings
from mintplane.gateway.testing import FakeBackend, FakeUser, execute

pytestmark = pytest.mark.unit

SCHEMA = build_schema(GatewaySettings())


@pytest.mark.parametrize(("status", "code"), [
    (grpc.StatusCode.UNAUTHENTICATED, ErrorCode.UNAUTHENTICATED),
    (grpc.StatusCode.PERMISSION_DENIED, ErrorCode.FORBIDDEN),
    (grpc.StatusCode.INVALID_ARGUMENT, ErrorCode.BAD_USER_INPUT),
    (grpc.StatusCode.OUT_OF_RANGE, ErrorCode.BAD_USER_INPUT),
    (grpc.StatusCode.ALREADY_EXISTS, ErrorCode.BAD_USER_INPUT),
    (grpc.StatusCode.FAILED_PRECONDITION, ErrorCode.BAD_USER_INPUT),
    (grpc.StatusCode.NOT_FOUND, ErrorCode.NOT_FOUND),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, ErrorCode.RATE_LIMITED),
])
def test_expected_statuses_keep_the_services_message(status: grpc.StatusCode, code: ErrorCode) -> None:
    error = from_status(status, "username is taken")
    assert isinstance(error, GatewayError)
    assert error.extensions["code"] == code.value
    assert error.message == "username is taken"


@pytest.mark.parametrize("status", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_transient_statuses_say_retry_without_naming_the_dependency(status: grpc.StatusCode) -> None:
    error = from_status(status, "connect to 10.0.0.7:50052 failed", service="user")
    assert isinstance(error, GatewayError)
    assert error.extensions == {"code": "INTERNAL", "retryable": True}
    assert "10.0.0.7" not in error.message and "user" not in error.message


@pytest.mark.parametrize("status", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNIMPLEMENTED,
                                    grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS])
def test_other_statuses_are_not_client_errors(status: grpc.StatusCode) -> None:
    error = from_status(status, "relation users.profiles does not exist")
    assert isinstance(error, UpstreamFailure) and not isinstance(error, GatewayError)


class ExplodingUser(FakeUser):
    async def batch_get_users(self, request: user_pb2.BatchGetUsersRequest) -> Any:
        raise RuntimeError("asyncpg: password authentication failed for user mintplane at 10.1.2.3")

    async def get_user_by_username(self, request: user_pb2.GetUserByUsernameRequest) -> Any:
        raise from_status(grpc.StatusCode.INTERNAL, 'syntax error at or near "FROM" in SELECT * FROM users.profiles')


def exploding_backend() -> FakeBackend:
    backend = FakeBackend()
    clients = backend.clients()
    backend.clients = lambda timeout=0: dataclasses.replace(  # type: ignore[method-assign]
        clients, user=ExplodingUser(backend)
    )
    return backend


@pytest.mark.parametrize("query", [
    '{ userById(id: "6f1c1f5e-7a43-4a8e-9b55-2f1de1a1a111") { id } }',
    '{ user(username: "alice") { id } }',
])
async def test_unexpected_failures_are_masked(query: str) -> None:
    result = await execute(SCHEMA, exploding_backend(), query)
    assert len(result.errors) == 1
    formatted = result.errors[0].formatted
    assert formatted["message"] == "Internal server error."
    assert formatted["extensions"] == {"code": "INTERNAL"}
    text = json.dumps(formatted)
    for leak in ("asyncpg", "password", "10.1.2.3", "SELECT", "Traceback", "users.profiles"):
        assert leak not in text


async def test_request_errors_have_codes() -> None:
    backend = FakeBackend()
    parse = await execute(SCHEMA, backend, "{ me { id ")
    unknown_field = await execute(SCHEMA, backend, "{ me { password } }")
    bad_variable = await execute(SCHEMA, backend, "query($n: Int!) { sessions(first: $n) { totalCount } }",
                                 variables={"n": "ten"})
    missing_variable = await execute(SCHEMA, backend, "query($n: Int!) { sessions(first: $n) { totalCount } }")
    bad_enum = await execute(SCHEMA, backend, "mutation { updatePreferences(input: {theme: PINK}) { theme } }")
    assert parse.errors[0].extensions["code"] == "GRAPHQL_PARSE_FAILED"
    assert unknown_field.errors[0].extensions["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert bad_variable.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert missing_variable.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert bad_enum.errors[0].extensions["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_cached_validation_errors_are_coded_every_time() -> None:
    backend = FakeBackend()
    for _ in range(3):  # the second and third come from the ValidationCache
        result = await execute(SCHEMA, backend, "{ me { nope } }")
        assert [error.extensions["code"] for error in result.errors] == ["GRAPHQL_VALIDATION_FAILED"]


async def test_malformed_authorization_header_is_unauthenticated() -> None:
    from mintplane.gateway.context import ClientInfo, GatewayContext

    backend = FakeBackend()
    context = GatewayContext(clients=backend.clients(), settings=GatewaySettings(), authorization="Basic dXNlcg==",
                             client=ClientInfo())
    result = await SCHEMA.execute("{ me { id } }", context_value=context)
    assert [error.extensions["code"] for error in result.errors] == ["UNAUTHENTICATED"]
    assert backend.calls["ValidateSession"] == 0

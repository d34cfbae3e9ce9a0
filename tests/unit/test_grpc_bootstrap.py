"""The shared gRPC bootstrap: domain errors reach clients as their status code with the message, anything
unexpected as INTERNAL without internals, health and reflection are served, metrics count outcomes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mintplane.common.errors import NotFound, PermissionDenied
from mintplane.common.grpc_server import BuiltServer, build_server
from mintplane.common.metrics import GRPC_HANDLED
from mintplane.common.settings import ServiceSettings

pytestmark = pytest.mark.unit

SERVICE = "mintplane.test.v1.ProbeService"


def _identity(data: bytes) -> bytes:
    return data


async def _not_found(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise NotFound(f"token {request.decode()} does not exist")


async def _crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("password=hunter2 in a stack trace")


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _stream_then_deny(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"first"
    raise PermissionDenied("not your collection")


def _register(server: grpc.aio.Server) -> None:
    handlers = {
        "NotFound": grpc.unary_unary_rpc_method_handler(_not_found, _identity, _identity),
        "Crash": grpc.unary_unary_rpc_method_handler(_crash, _identity, _identity),
        "Echo": grpc.unary_unary_rpc_method_handler(_echo, _identity, _identity),
        "Stream": grpc.unary_stream_rpc_method_handler(_stream_then_deny, _identity, _identity),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture
async def served() -> AsyncIterator[tuple[BuiltServer, grpc.aio.Channel]]:
    built = build_server(ServiceSettings(grpc_port=0), [_register], [SERVICE])
    await built.server.start()
    await built.set_serving(True)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    yield built, channel
    await channel.close()
    await built.server.stop(0)


def _call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=_identity, response_deserializer=_identity)


async def test_domain_error_maps_to_its_code_and_message(served: tuple[BuiltServer, grpc.aio.Channel]) -> None:
    _, channel = served
    before = GRPC_HANDLED.labels(SERVICE, "NotFound", "NOT_FOUND")._value.get()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(channel, "NotFound")(b"42")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "token 42 does not exist"
    assert GRPC_HANDLED.labels(SERVICE, "NotFound", "NOT_FOUND")._value.get() == before + 1


async def test_unexpected_error_is_internal_without_details(served: tuple[BuiltServer, grpc.aio.Channel]) -> None:
    _, channel = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(channel, "Crash")(b"")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error"
    assert "hunter2" not in (caught.value.debug_error_string() or "")


async def test_success_passes_through(served: tuple[BuiltServer, grpc.aio.Channel]) -> None:
    _, channel = served
    assert await _call(channel, "Echo")(b"hello") == b"hello"


async def test_streaming_error_after_items(served: tuple[BuiltServer, grpc.aio.Channel]) -> None:
    _, channel = served
    call = channel.unary_stream(f"/{SERVICE}/Stream", request_serializer=_identity, response_deserializer=_identity)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for item in call(b""):
            received.append(item)
    assert received == [b"first"]
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_health_follows_serving_state(served: tuple[BuiltServer, grpc.aio.Channel]) -> None:
    built, channel = served
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await built.set_serving(False)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_the_service(served: tuple[BuiltServer, grpc.aio.Channel]) -> None:
    _, channel = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def one_request() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = []
    async for reply in stub.ServerReflectionInfo(one_request()):
        names = [service.name for service in reply.list_services_response.service]
    assert SERVICE in names
    assert "grpc.health.v1.Health" in names

"""The gRPC server bootstrap every service uses: one interceptor for error mapping and metrics, the
standard health service and reflection, a bound port, and graceful shutdown on SIGTERM/SIGINT.

A service's `server.py` calls `build_server(...)` with its servicer registrations and `run(...)` in its
`__main__`; nothing else in a service knows how gRPC servers are set up.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mintplane.common.errors import DomainError
from mintplane.common.log import get_logger
from mintplane.common.metrics import GRPC_HANDLED, GRPC_LATENCY, serve_metrics
from mintplane.common.settings import ServiceSettings

log = get_logger(__name__)

Registrar = Callable[[grpc.aio.Server], None]
if TYPE_CHECKING:  # the stubs' generics don't exist at run time
    Context = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    Context = Handler = Any
    _Interceptor = grpc.aio.ServerInterceptor


def _split_method(full_method: str) -> tuple[str, str]:
    _, service, method = full_method.split("/", 2) if full_method.count("/") >= 2 else ("", "", full_method)
    return service, method


def _aborted_code(context: Context) -> grpc.StatusCode:
    """The code a handler passed to context.abort itself."""
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


class ErrorAndMetricsInterceptor(_Interceptor):
    """Maps DomainError to its status code and anything unexpected to INTERNAL, and records metrics."""

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        service, method = _split_method(handler_call_details.method)

        async def guard(call: Callable[[], Any], context: Context) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                result = call()
                return await result if inspect.isawaitable(result) else result
            except DomainError as exc:
                code = exc.code
                await context.abort(exc.code, exc.message)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = _aborted_code(context)
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error in rpc", grpc_service=service, grpc_method=method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                GRPC_HANDLED.labels(service, method, code.name).inc()
                GRPC_LATENCY.labels(service, method).observe(time.perf_counter() - started)

        async def stream_guard(call: Callable[[], Any], context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                items = call()
                if hasattr(items, "__aiter__"):
                    async for item in items:
                        yield item
                else:
                    for item in items:
                        yield item
            except DomainError as exc:
                code = exc.code
                await context.abort(exc.code, exc.message)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = _aborted_code(context)
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error in rpc", grpc_service=service, grpc_method=method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                GRPC_HANDLED.labels(service, method, code.name).inc()
                GRPC_LATENCY.labels(service, method).observe(time.perf_counter() - started)

        # grpc.aio decides how to run a handler by inspecting it, so wrappers must be `async def`.
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary or handler.stream_unary:
            inner_unary: Any = handler.unary_unary or handler.stream_unary

            async def unary_response(request: Any, context: Context) -> Any:
                return await guard(lambda: inner_unary(request, context), context)

            factory = (
                grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
            )
            return factory(unary_response, **serializers)

        inner_stream: Any = handler.unary_stream or handler.stream_stream

        async def stream_response(request: Any, context: Context) -> AsyncIterator[Any]:
            async for item in stream_guard(lambda: inner_stream(request, context), context):
                yield item

        stream_factory = (
            grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        )
        return stream_factory(stream_response, **serializers)


@dataclass
class BuiltServer:
    server: grpc.aio.Server
    port: int
    health: Any  # grpc_health.v1.health.aio.HealthServicer (untyped package)
    service_names: tuple[str, ...]

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *self.service_names):
            await self.health.set(name, status)


def build_server(
    settings: ServiceSettings,
    registrars: Sequence[Registrar],
    service_names: Sequence[str],
    *,
    extra_interceptors: Sequence[_Interceptor] = (),
) -> BuiltServer:
    """Create the server, register the servicers, health and reflection, and bind the port.

    `service_names` are full proto service names (e.g. `mintplane.api.auth.v1.AuthService`), used for
    per-service health and reflection. Port 0 binds an ephemeral port; the bound one is returned.
    """
    server = grpc.aio.server(
        interceptors=[ErrorAndMetricsInterceptor(), *extra_interceptors],
        options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
    )
    for register in registrars:
        register(server)
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
    if port == 0:
        raise RuntimeError(f"cannot bind {settings.grpc_host}:{settings.grpc_port}")
    return BuiltServer(server=server, port=port, health=health_servicer, service_names=tuple(service_names))


async def run(
    name: str,
    settings: ServiceSettings,
    build: Callable[[], Awaitable[BuiltServer]],
    *,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then report NOT_SERVING, drain in-flight RPCs and close resources."""
    serve_metrics(settings.metrics_port, settings.metrics_host)
    built = await build()
    await built.server.start()
    await built.set_serving(True)
    log.info("serving", service=name, port=built.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", service=name, grace_seconds=settings.shutdown_grace_seconds)
    await built.set_serving(False)
    await built.server.stop(settings.shutdown_grace_seconds)
    if on_shutdown is not None:
        with contextlib.suppress(Exception):
            await on_shutdown()
    log.info("stopped", service=name)

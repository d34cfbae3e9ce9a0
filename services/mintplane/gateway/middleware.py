"""Pure ASGI middleware (no per-request BaseHTTPMiddleware task overhead) for what every request needs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mintplane.gateway.clients import request_id

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class _BodyTooLarge(Exception):
    pass


async def _reject_too_large(send: Send, limit: int, rest: bool = False) -> None:
    message = f"Request body is larger than {limit} bytes."
    body = orjson.dumps({"error": {"code": "PAYLOAD_TOO_LARGE", "message": message}} if rest else {"errors": [{
        "message": message, "extensions": {"code": "PAYLOAD_TOO_LARGE"},
    }]})
    await send({
        "type": "http.response.start", "status": 413,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """413 for bodies over `max_bytes`: by Content-Length up front, or while reading a chunked body.

    `overrides` gives REST paths (by prefix) their own limit and a REST-shaped error: uploads to /media are
    far larger than any GraphQL request may be."""

    def __init__(self, app: ASGIApp, max_bytes: int, overrides: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = dict(overrides or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = next((value for prefix, value in self.overrides.items() if path.startswith(prefix)), None)
        rest = limit is not None
        max_bytes = self.max_bytes if limit is None else limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > max_bytes:
                    await _reject_too_large(send, max_bytes, rest)
                    return
                break
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await _reject_too_large(send, max_bytes, rest)


class RequestId:
    """Takes the caller's X-Request-ID (when sane) or makes one, echoes it, logs and forwards it upstream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _SAFE_REQUEST_ID.match(candidate) else ""
                break
        rid = rid or uuid.uuid4().hex
        token = request_id.set(rid)
        structlog.contextvars.bind_contextvars(request_id=rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            request_id.reset(token)

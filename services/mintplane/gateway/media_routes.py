"""The gateway's media endpoints, REST rather than GraphQL because they carry files:

- `POST /media` (multipart/form-data, `Authorization: Bearer`): the `file` part is streamed to the media
  service (CreateUpload, then UploadChunk) under the signed-in user's id; answers 201 with the upload.
- `GET /media/{cid}`: the stored bytes (ReadMedia), with single byte ranges, `ETag: "<cid>"` and immutable
  caching (content under a CID never changes), and headers that keep served files inert on our origin.

Errors are `{"error": {"code", "message"}}` with the HTTP status of the upstream's gRPC status; unexpected
failures are logged here and answered with a generic message (no internals reach the client).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.common.log import get_logger
from mintplane.gateway.clients import MediaClient
from mintplane.gateway.context import ClientInfo, GatewayContext
from mintplane.gateway.errors import (
    BadUserInput,
    Forbidden,
    GatewayError,
    NotFound,
    RateLimited,
    Unauthenticated,
    UpstreamUnavailable,
)
from mintplane.gateway.settings import GatewaySettings
from mintplane.media import cid as cids

log = get_logger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
# Served bytes are user content: never sniffed into something executable, never running script here.
CONTENT_HEADERS = {
    "Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox", "Accept-Ranges": "bytes",
}
PURPOSES = {
    "avatar": pb.MEDIA_PURPOSE_AVATAR, "banner": pb.MEDIA_PURPOSE_BANNER,
    "collection_image": pb.MEDIA_PURPOSE_COLLECTION_IMAGE, "token_media": pb.MEDIA_PURPOSE_TOKEN_MEDIA,
    "metadata": pb.MEDIA_PURPOSE_METADATA,
}
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_STATUS: dict[type[GatewayError], int] = {
    Unauthenticated: 401, Forbidden: 403, BadUserInput: 400, NotFound: 404, RateLimited: 413,
    UpstreamUnavailable: 503,
}


class Unsatisfiable(Exception):
    """A Range header no byte of the content satisfies (416)."""


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _from_exception(exc: Exception) -> Response:
    """What a failure looks like to the client: expected ones keep their message, the rest are masked."""
    if isinstance(exc, GatewayError):
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
        code = "PAYLOAD_TOO_LARGE" if status == 413 else str(exc.extensions.get("reason") or exc.code.value)
        headers = {"Retry-After": "5"} if status == 503 else None
        if status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(status, code, exc.message, headers)
    log.error("media request failed", error=repr(exc)[:500])
    return error_response(500, "INTERNAL", "Internal server error.")


def parse_range(header: str | None) -> tuple[int, int] | None:
    """A single `bytes=a-b` / `bytes=a-` / `bytes=-n` range as ReadMedia's (offset, length); None when there
    is none or it is not one we honour (several ranges, other units, nonsense: RFC 9110 lets us send the
    whole content then). Unsatisfiable when it can match no byte whatever the size (`bytes=-0`, b < a)."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last n bytes
        if int(last) == 0:
            raise Unsatisfiable
        return -int(last), 0
    start = int(first)
    if not last:
        return start, 0
    if int(last) < start:
        return None
    return start, int(last) - start + 1


def _etag_matches(header: str | None, cid: str) -> bool:
    if not header:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or f'"{cid}"' in tags


def upload_json(upload: pb.Upload) -> dict[str, Any]:
    """The upload as the client sees it. `cid` is the content's CID as soon as the bytes are verified (it is
    computed locally, equal to kubo's); `ipfsUri` is set once the processing job has pinned it."""
    cid = upload.ipfs_cid or (upload.url.rsplit("/", 1)[-1] if upload.url else "")
    return {
        "id": upload.file_id, "cid": cid, "ipfsUri": upload.ipfs_uri, "url": upload.url,
        "sizeBytes": upload.size_bytes, "contentType": upload.file_type,
        "status": pb.UploadStatus.Name(upload.status).removeprefix("UPLOAD_STATUS_"),
        "width": upload.width, "height": upload.height, "jobIds": list(upload.job_ids),
    }


def media_routes(settings: GatewaySettings) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def media_client(request: Request) -> MediaClient:
        client: MediaClient | None = getattr(request.app.state, "media", None)
        if client is None:
            raise UpstreamUnavailable()
        return client

    async def uploader(request: Request) -> str:
        context = GatewayContext(clients=request.app.state.clients, settings=settings,
                                 authorization=request.headers.get("authorization"), client=ClientInfo())
        return (await context.viewer()).user_id

    @router.post("/media")
    async def upload(request: Request) -> Response:
        """Multipart fields: `file` (required) and `purpose` (avatar, banner, collection_image, token_media
        (default), metadata). Starlette's parser (python-multipart) spools the part (memory up to 1 MiB, then
        a temporary file); its bytes then go upstream chunk by chunk, never held whole in memory."""
        try:
            user_id = await uploader(request)
            if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
                return error_response(415, "UNSUPPORTED_MEDIA_TYPE", "Send the file as multipart/form-data.")
            media = media_client(request)
            async with request.form(max_files=1, max_fields=8) as form:
                file = form.get("file")
                if not isinstance(file, UploadFile):
                    raise BadUserInput("The multipart body needs a `file` part.")
                purpose_name = str(form.get("purpose") or "token_media")
                if purpose_name not in PURPOSES:
                    raise BadUserInput(f"Unknown purpose {purpose_name[:40]!r}; one of: {', '.join(PURPOSES)}.")
                created = await media.create_upload(pb.CreateUploadRequest(
                    user_id=user_id, file_name=file.filename or "", file_type=file.content_type or "",
                    size_bytes=file.size or 0, purpose=PURPOSES[purpose_name],
                ))
                chunk = min(settings.media_chunk_bytes, created.max_chunk_bytes or settings.media_chunk_bytes)

                async def chunks() -> AsyncIterator[pb.UploadChunkRequest]:
                    offset = 0
                    while piece := await file.read(chunk):
                        yield pb.UploadChunkRequest(file_id=created.upload.file_id, offset=offset, data=piece)
                        offset += len(piece)

                finished = await media.upload_chunk(chunks())
        except Exception as exc:  # mapped to a status; unexpected ones are logged and masked
            return _from_exception(exc)
        log.info("media uploaded", file_id=finished.upload.file_id, size_bytes=finished.upload.size_bytes)
        return Response(orjson.dumps(upload_json(finished.upload)), status_code=201, media_type="application/json")

    @router.get("/media/{cid}")
    async def content(cid: str, request: Request) -> Response:
        try:
            canonical = cids.parse(cid)
        except ValueError:
            return error_response(400, "BAD_USER_INPUT", "Not a CID this gateway serves.")
        etag = f'"{canonical}"'
        # Bytes under a CID never change: a client holding this ETag holds the content.
        if _etag_matches(request.headers.get("if-none-match"), canonical):
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})
        try:
            wanted = parse_range(request.headers.get("range"))
        except Unsatisfiable:
            wanted, unsatisfiable = None, True
        else:
            unsatisfiable = False
        offset, length = wanted if wanted is not None else (0, 0)
        try:
            stream = media_client(request).read_media(pb.ReadMediaRequest(cid=canonical, offset=offset,
                                                                          length=length))
            head = await anext(stream)
        except Exception as exc:
            return _from_exception(exc)
        size, start = head.size_bytes, head.offset
        end = size if (wanted is None or length == 0) else min(size, start + length)
        if unsatisfiable or (wanted is not None and start >= size):
            await stream.aclose()
            return error_response(416, "RANGE_NOT_SATISFIABLE", f"The content is {size} bytes long.",
                                  {"Content-Range": f"bytes */{size}", **CONTENT_HEADERS, "ETag": etag})
        headers = {**CONTENT_HEADERS, "ETag": etag, "Content-Length": str(end - start)}
        status = 200
        if wanted is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"

        async def body() -> AsyncIterator[bytes]:
            try:
                async for message in stream:
                    yield message.data
            finally:
                await stream.aclose()

        return StreamingResponse(body(), status_code=status, media_type=head.content_type, headers=headers)

    return router

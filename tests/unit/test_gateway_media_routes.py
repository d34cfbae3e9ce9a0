"""POST /media and GET /media/{cid} over fake upstreams: authentication, streaming to the media client in
chunks under the viewer's id, the gRPC -> HTTP error mapping, ranges, ETag/304, and the inert-content headers.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
import pytest

from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.gateway.app import create_app
from mintplane.gateway.errors import from_status
from mintplane.gateway.media_routes import Unsatisfiable, parse_range
from mintplane.gateway.settings import GatewaySettings
from mintplane.gateway.testing import FakeBackend
from mintplane.media import cid as cids

pytestmark = pytest.mark.unit

CONTENT = bytes(range(256)) * 40  # 10240 bytes
CID = cids.compute(CONTENT)


class FakeMedia:
    """Keeps uploads in memory; records each chunk it receives. `fail` makes CreateUpload fail so."""

    def __init__(self) -> None:
        self.blobs: dict[str, tuple[str, bytes]] = {CID: ("image/png", CONTENT)}
        self.created: list[pb.CreateUploadRequest] = []
        self.chunk_sizes: list[int] = []
        self.fail: grpc.StatusCode | None = None
        self.reads = 0

    async def create_upload(self, request: pb.CreateUploadRequest) -> pb.CreateUploadResponse:
        if self.fail is not None:
            raise from_status(self.fail, f"refused with {self.fail.name}", service="media", method="CreateUpload")
        self.created.append(request)
        upload = pb.Upload(file_id=f"f{len(self.created)}", user_id=request.user_id, file_type=request.file_type,
                           size_bytes=request.size_bytes, status=pb.UPLOAD_STATUS_PENDING)
        return pb.CreateUploadResponse(upload=upload, max_chunk_bytes=4096)

    async def upload_chunk(self, requests: AsyncIterable[pb.UploadChunkRequest]) -> pb.UploadChunkResponse:
        data = bytearray()
        file_id = ""
        async for message in requests:
            assert message.offset == len(data)
            file_id = message.file_id
            self.chunk_sizes.append(len(message.data))
            data.extend(message.data)
        request = self.created[-1]
        cid = cids.compute(bytes(data))
        self.blobs[cid] = (request.file_type, bytes(data))
        return pb.UploadChunkResponse(upload=pb.Upload(
            file_id=file_id, user_id=request.user_id, file_type=request.file_type, size_bytes=len(data),
            status=pb.UPLOAD_STATUS_UPLOADED, url=f"http://gw/media/{cid}"))

    async def read_media(self, request: pb.ReadMediaRequest) -> AsyncGenerator[pb.ReadMediaResponse, None]:
        self.reads += 1
        if request.cid not in self.blobs:
            raise from_status(grpc.StatusCode.NOT_FOUND, "nothing stored", service="media", method="ReadMedia")
        content_type, data = self.blobs[request.cid]
        start = max(len(data) + request.offset, 0) if request.offset < 0 else request.offset
        end = len(data) if request.length == 0 else min(len(data), start + request.length)
        yield pb.ReadMediaResponse(content_type=content_type, size_bytes=len(data), offset=start)
        for at in range(start, end, 3000):
            yield pb.ReadMediaResponse(data=data[at:min(at + 3000, end)])


@asynccontextmanager
async def client_for(backend: FakeBackend, media: FakeMedia, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewaySettings(**settings), upstreams=backend, media=media)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_an_upload_streams_in_chunks_under_the_viewers_id() -> None:
    backend, media = FakeBackend(), FakeMedia()
    user = backend.add_user("alice")
    token = backend.sign_in_as(user)
    data = bytes(range(256)) * 50  # 12800 bytes: four chunks of at most 4096
    async with client_for(backend, media) as client:
        response = await client.post("/media", headers=_auth(token), data={"purpose": "collection_image"},
                                     files={"file": ("art.png", data, "image/png")})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["cid"] == cids.compute(data) and body["status"] == "UPLOADED" and body["sizeBytes"] == len(data)
    assert media.created[0].user_id == user and media.created[0].size_bytes == len(data)
    assert media.created[0].purpose == pb.MEDIA_PURPOSE_COLLECTION_IMAGE
    assert media.created[0].file_name == "art.png" and media.created[0].file_type == "image/png"
    assert media.chunk_sizes == [4096, 4096, 4096, 512]


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer not-a-session"}, {"authorization": "Basic x"}])
async def test_an_upload_without_a_valid_session_is_401(headers: dict[str, str]) -> None:
    backend, media = FakeBackend(), FakeMedia()
    async with client_for(backend, media) as client:
        response = await client.post("/media", headers=headers, files={"file": ("a.png", b"x", "image/png")})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"] == "Bearer"
    assert media.created == []


@pytest.mark.parametrize(("status", "http", "code"), [
    (grpc.StatusCode.INVALID_ARGUMENT, 400, "BAD_USER_INPUT"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, 413, "PAYLOAD_TOO_LARGE"),
    (grpc.StatusCode.PERMISSION_DENIED, 403, "FORBIDDEN"),
    (grpc.StatusCode.FAILED_PRECONDITION, 400, "FAILED_PRECONDITION"),
    (grpc.StatusCode.UNAVAILABLE, 503, "INTERNAL"),
    (grpc.StatusCode.INTERNAL, 500, "INTERNAL"),
])
async def test_upstream_failures_map_to_http_statuses_without_internals(
        status: grpc.StatusCode, http: int, code: str) -> None:
    backend, media = FakeBackend(), FakeMedia()
    token = backend.sign_in_as(backend.add_user("bob"))
    media.fail = status
    async with client_for(backend, media) as client:
        response = await client.post("/media", headers=_auth(token), files={"file": ("a.png", b"x", "image/png")})
    assert response.status_code == http
    error = response.json()["error"]
    assert error["code"] == code
    if http >= 500:
        assert status.name not in error["message"] and "Traceback" not in response.text


async def test_bad_multipart_requests_are_refused() -> None:
    backend, media = FakeBackend(), FakeMedia()
    token = backend.sign_in_as(backend.add_user("carol"))
    async with client_for(backend, media) as client:
        not_multipart = await client.post("/media", headers=_auth(token), content=b"raw")
        no_file = await client.post("/media", headers=_auth(token), data={"purpose": "avatar"},
                                    files={"other": ("a.png", b"x", "image/png")})
        bad_purpose = await client.post("/media", headers=_auth(token), data={"purpose": "wallpaper"},
                                        files={"file": ("a.png", b"x", "image/png")})
    assert not_multipart.status_code == 415
    assert no_file.status_code == 400 and "file" in no_file.json()["error"]["message"]
    assert bad_purpose.status_code == 400 and "wallpaper" in bad_purpose.json()["error"]["message"]
    assert media.created == []


async def test_the_upload_limit_is_its_own_and_graphql_keeps_its_limit() -> None:
    backend, media = FakeBackend(), FakeMedia()
    token = backend.sign_in_as(backend.add_user("dave"))
    async with client_for(backend, media, max_request_bytes=4096, media_max_upload_bytes=64 * 1024) as client:
        fits = await client.post("/media", headers=_auth(token), files={"file": ("a.png", b"x" * 20_000, "image/png")})
        too_big = await client.post("/media", headers=_auth(token),
                                    files={"file": ("a.png", b"x" * 70_000, "image/png")})
        graphql = await client.post("/graphql", json={"query": "{ __typename }", "pad": "x" * 20_000})
    assert fits.status_code == 201
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert graphql.status_code == 413 and graphql.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_content_is_served_whole_with_immutable_inert_headers() -> None:
    async with client_for(FakeBackend(), FakeMedia()) as client:
        response = await client.get(f"/media/{CID}")
    assert response.status_code == 200 and response.content == CONTENT
    assert response.headers["etag"] == f'"{CID}"'
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert response.headers["content-length"] == str(len(CONTENT))


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-99", 0, 99), ("bytes=5000-", 5000, len(CONTENT) - 1), ("bytes=-100", len(CONTENT) - 100,
                                                                     len(CONTENT) - 1),
    ("bytes=10000-99999", 10000, len(CONTENT) - 1), ("bytes=-99999", 0, len(CONTENT) - 1),
])
async def test_a_single_range_is_206_with_its_content_range(header: str, start: int, end: int) -> None:
    async with client_for(FakeBackend(), FakeMedia()) as client:
        response = await client.get(f"/media/{CID}", headers={"range": header})
    assert response.status_code == 206
    assert response.content == CONTENT[start:end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(CONTENT)}"
    assert response.headers["etag"] == f'"{CID}"'


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-30000", "bytes=-0"])
async def test_an_unsatisfiable_range_is_416(header: str) -> None:
    async with client_for(FakeBackend(), FakeMedia()) as client:
        response = await client.get(f"/media/{CID}", headers={"range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(CONTENT)}"


async def test_ranges_we_do_not_honour_get_the_whole_content() -> None:
    async with client_for(FakeBackend(), FakeMedia()) as client:
        several = await client.get(f"/media/{CID}", headers={"range": "bytes=0-1,5-6"})
        other_unit = await client.get(f"/media/{CID}", headers={"range": "items=0-1"})
    assert several.status_code == 200 and several.content == CONTENT
    assert other_unit.status_code == 200 and other_unit.content == CONTENT


async def test_a_matching_etag_is_304_without_reading_the_content() -> None:
    media = FakeMedia()
    async with client_for(FakeBackend(), media) as client:
        matching = await client.get(f"/media/{CID}", headers={"if-none-match": f'"other", "{CID}"'})
        other = await client.get(f"/media/{CID}", headers={"if-none-match": '"other"'})
    assert matching.status_code == 304 and matching.content == b""
    assert matching.headers["etag"] == f'"{CID}"'
    assert other.status_code == 200
    assert media.reads == 1


async def test_a_malformed_cid_is_400_and_an_unknown_one_404() -> None:
    media = FakeMedia()
    unknown = cids.compute(b"never stored")
    async with client_for(FakeBackend(), media) as client:
        malformed = await client.get("/media/not-a-cid")
        missing = await client.get(f"/media/{unknown}")
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "BAD_USER_INPUT"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert media.reads == 1


def test_parse_range() -> None:
    assert parse_range(None) is None
    assert parse_range("bytes=3-7") == (3, 5)
    assert parse_range("bytes=3-") == (3, 0)
    assert parse_range("bytes=-4") == (-4, 0)
    assert parse_range("bytes=7-3") is None
    assert parse_range("bytes=-") is None
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=-0")

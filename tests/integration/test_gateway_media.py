"""POST /media and GET /media/{cid} through the real gateway app (httpx ASGI transport) over the media
service in this process (FerretDB/GridFS, kubo) and this source tree's auth, user and wallet processes, with
a user really signed in (SIWE): a PNG is uploaded under its uploader's id and served back whole, by range and
as 304; unauthenticated and hostile uploads are refused with nothing stored. Own MongoDB database, dropped."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
import pytest_asyncio
from PIL import Image
from test_gateway_cache import Signed, _sign_in

from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.api.media.v1 import media_pb2_grpc
from mintplane.common.service import Resources
from mintplane.gateway.app import create_app
from mintplane.gateway.localstack import delete_identities, local_stack
from mintplane.gateway.settings import GatewaySettings
from mintplane.media import cid as cids
from mintplane.media.server import NEEDS, Media, assemble, serve
from mintplane.media.settings import MediaSettings

pytestmark = pytest.mark.integration


@dataclass
class Env:
    client: httpx.AsyncClient
    media: Media
    media_port: int
    alice: Signed

    async def count(self, collection: str) -> int:
        found: int = await self.media.repo.db[collection].count_documents({})
        return found


@dataclass
class Identity:
    ports: dict[str, int]
    alice: Signed


@pytest_asyncio.fixture(scope="module")
async def identity() -> AsyncIterator[Identity]:
    """Auth, user and wallet processes (slow to start: once per module) and a user signed in through them."""
    users: list[str] = []
    addresses: list[str] = []
    try:
        async with local_stack() as stack, httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
            yield Identity(stack.ports, await _sign_in(client, users, addresses))
    finally:
        await delete_identities(users, addresses)


@pytest_asyncio.fixture
async def env(identity: Identity) -> AsyncIterator[Env]:
    database = f"media_gw_test_{uuid.uuid4().hex[:12]}"
    settings = MediaSettings(grpc_port=0, media_database=database, job_poll_seconds=0.2)
    resources = await Resources.open(settings, NEEDS, name="media-gateway-test")
    media = await assemble(settings, resources)
    built = serve(media, resources)
    await built.server.start()
    ports = identity.ports
    app = create_app(GatewaySettings(
        auth_addr=f"127.0.0.1:{ports['auth']}", user_addr=f"127.0.0.1:{ports['user']}",
        wallet_addr=f"127.0.0.1:{ports['wallet']}", media_addr=f"127.0.0.1:{built.port}",
        result_cache_namespace=f"test:gw:{uuid.uuid4().hex[:10]}",
    ))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60) as client:
                yield Env(client, media, built.port, identity.alice)
    finally:
        await built.server.stop(None)
        await resources.mongo.drop_database(database)
        await resources.close()


def _png(width: int = 640, height: int = 480) -> bytes:
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))  # noise: ~900 KB
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _auth(signed: Signed) -> dict[str, str]:
    return {"authorization": f"Bearer {signed.token}"}


async def test_a_png_is_uploaded_by_its_owner_and_served_whole_by_range_and_as_304(env: Env) -> None:
    original = _png()
    response = await env.client.post("/media", headers=_auth(env.alice), data={"purpose": "token_media"},
                                     files={"file": ("art.png", original, "image/png")})
    assert response.status_code == 201, response.text
    upload = response.json()
    assert upload["contentType"] == "image/png" and upload["status"] in ("UPLOADED", "PROCESSING", "READY")
    stored = await env.media.repo.get_upload(upload["id"])
    assert stored is not None and stored["user_id"] == env.alice.user_id and stored["cid"] == upload["cid"]

    whole = await env.client.get(f"/media/{upload['cid']}")
    assert whole.status_code == 200
    assert cids.compute(whole.content) == upload["cid"]  # the bytes are the content under that CID
    assert Image.open(io.BytesIO(whole.content)).size == (640, 480)  # re-encoded, same picture
    assert whole.headers["etag"] == f'"{upload["cid"]}"'
    assert whole.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert whole.headers["content-type"] == "image/png"
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert whole.headers["content-security-policy"] == "default-src 'none'; sandbox"

    size = len(whole.content)
    # across GridFS chunk boundaries (1 MiB chunks) and the suffix form
    for header, start, end in [("bytes=0-99", 0, 99), (f"bytes={size - 10}-", size - 10, size - 1),
                               ("bytes=-300000", size - 300000, size - 1), ("bytes=1000-700000", 1000, 700000)]:
        part = await env.client.get(f"/media/{upload['cid']}", headers={"range": header})
        assert part.status_code == 206, header
        assert part.content == whole.content[start:end + 1], header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
    beyond = await env.client.get(f"/media/{upload['cid']}", headers={"range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"

    cached = await env.client.get(f"/media/{upload['cid']}", headers={"if-none-match": whole.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""

    unknown = await env.client.get(f"/media/{cids.compute(os.urandom(64))}")
    malformed = await env.client.get("/media/bafy-not-a-cid")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "BAD_USER_INPUT"


async def test_an_unauthenticated_upload_is_refused_and_nothing_is_stored(env: Env) -> None:
    for headers in ({}, {"authorization": "Bearer forged.token.value"}):
        response = await env.client.post("/media", headers=headers, files={"file": ("a.png", _png(32, 32),
                                                                                   "image/png")})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert await env.count("media_uploads") == 0
    assert await env.count("blobs.files") == 0


@pytest.mark.parametrize(("data", "claimed"), [
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>',
     "image/svg+xml"),
    (b"<svg><script>alert(1)</script></svg>", "image/png"),
])
async def test_a_hostile_svg_is_refused_and_nothing_is_stored(env: Env, data: bytes, claimed: str) -> None:
    response = await env.client.post("/media", headers=_auth(env.alice),
                                     files={"file": ("evil.svg", data, claimed)})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BAD_USER_INPUT" and "SVG is not accepted" in error["message"]
    assert "Traceback" not in response.text
    assert await env.count("blobs.files") == 0
    assert await env.count("staging.files") == 0


async def test_read_media_streams_in_pieces_and_resolves_offsets(env: Env) -> None:
    """The ReadMedia RPC itself: header message first, then pieces no larger than a GridFS chunk."""
    data = os.urandom(2 * 1024 * 1024 + 123)
    cid = cids.compute(data)
    await env.media.repo.put_blob(cid, data, "application/octet-stream")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{env.media_port}") as channel:
        stub = media_pb2_grpc.MediaServiceStub(channel)
        messages = [m async for m in stub.ReadMedia(pb.ReadMediaRequest(cid=cid))]
        assert messages[0].size_bytes == len(data) and messages[0].offset == 0 and messages[0].data == b""
        assert b"".join(m.data for m in messages[1:]) == data
        assert max(len(m.data) for m in messages) <= env.media.settings.gridfs_chunk_bytes
        tail = [m async for m in stub.ReadMedia(pb.ReadMediaRequest(cid=cid, offset=-5))]
        assert tail[0].offset == len(data) - 5 and b"".join(m.data for m in tail) == data[-5:]
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            _ = [m async for m in stub.ReadMedia(pb.ReadMediaRequest(cid="nope"))]
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

"""The media service in this process against the dev stack's FerretDB (GridFS) and kubo: uploads over gRPC
become READY, pinned under the CID computed locally, with WebP thumbnails; hostile uploads are refused with
nothing stored; the same bytes are stored once; jobs survive an unreachable node and a crashed runner.
Each test uses its own MongoDB database, dropped afterwards."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
import pytest_asyncio
from PIL import Image, PngImagePlugin

from mintplane.api.common.v1 import common_pb2
from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.api.media.v1 import media_pb2_grpc
from mintplane.common.service import Resources
from mintplane.media import cid
from mintplane.media.server import NEEDS, Media, assemble, serve
from mintplane.media.settings import MediaSettings

pytestmark = pytest.mark.integration
TOKEN = pb.MEDIA_PURPOSE_TOKEN_MEDIA


class Env:
    def __init__(self, stub: media_pb2_grpc.MediaServiceStub, media: Media, resources: Resources) -> None:
        self.stub, self.media, self.resources = stub, media, resources
        self.db = media.repo.db
        self.user = f"user-{uuid.uuid4()}"

    async def stored_blobs(self) -> int:
        count: int = await self.db["blobs.files"].count_documents({})
        return count

    async def staged(self) -> int:
        count: int = await self.db["staging.files"].count_documents({})
        return count

    async def wait_finished(self, file_id: str, timeout: float = 60) -> pb.Upload:
        async with asyncio.timeout(timeout):
            while True:
                upload = (await self.stub.GetUpload(pb.GetUploadRequest(file_id=file_id))).upload
                if upload.status in (pb.UPLOAD_STATUS_READY, pb.UPLOAD_STATUS_FAILED):
                    return upload
                await asyncio.sleep(0.1)


async def _open(**overrides: Any) -> tuple[Media, Resources]:
    settings = MediaSettings(grpc_port=0, **overrides)
    resources = await Resources.open(settings, NEEDS, name="media-test")
    return await assemble(settings, resources), resources


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    database = f"media_test_{uuid.uuid4().hex[:12]}"
    media, resources = await _open(media_database=database, job_poll_seconds=0.2, max_banner_bytes=64 * 1024)
    built = serve(media, resources)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}", options=[
        ("grpc.max_send_message_length", 16 * 1024 * 1024)])
    try:
        yield Env(media_pb2_grpc.MediaServiceStub(channel), media, resources)
    finally:
        await channel.close(None)
        await built.server.stop(None)
        await resources.mongo.drop_database(database)
        await resources.close()


def _png(width: int = 300, height: int = 200, *, text: str | None = None, noise: bool = False) -> bytes:
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), (20, 120, 220))
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", text)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


async def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details() or ""


def _small(env: Env, data: bytes, file_type: str = "image/png", purpose: int = TOKEN) -> Any:
    return env.stub.UploadMedia(pb.UploadMediaRequest(user_id=env.user, file_name="art.png", file_type=file_type,
                                                      purpose=purpose, data=data))


def _chunks(file_id: str, data: bytes, offset: int, chunk: int) -> list[pb.UploadChunkRequest]:
    return [pb.UploadChunkRequest(file_id=file_id, offset=start, data=data[start - offset:start - offset + chunk])
            for start in range(offset, offset + len(data), chunk)]


async def _stream(env: Env, file_id: str, data: bytes, offset: int = 0, chunk: int = 256 * 1024) -> pb.Upload:
    async def messages() -> AsyncIterator[pb.UploadChunkRequest]:
        for message in _chunks(file_id, data, offset, chunk):
            yield message

    return (await env.stub.UploadChunk(messages())).upload


async def _broken_stream(env: Env, file_id: str, data: bytes, offset: int) -> None:
    """Send three chunks, then the client goes away mid-stream (the call is cancelled); returns once the
    server is done with the stream: its segment either dropped or committed, never half there."""
    sent = asyncio.Event()

    async def messages() -> AsyncIterator[pb.UploadChunkRequest]:
        for message in _chunks(file_id, data, offset, 256 * 1024)[:3]:
            yield message
        sent.set()
        await asyncio.Event().wait()  # never sends the rest

    call = env.stub.UploadChunk(messages())
    await sent.wait()
    await asyncio.sleep(0.3)  # the server has the three chunks in its segment by now
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    pattern = {"$regex": f"^{file_id}/{offset:015d}-"}
    async with asyncio.timeout(10):
        while True:
            doc = await env.db["media_uploads"].find_one({"_id": file_id})
            committed = [segment for segment in doc["segments"] if segment.startswith(f"{file_id}/{offset:015d}-")]
            if committed or not await env.db["staging.chunks"].count_documents({"files_id": pattern}):
                return
            await asyncio.sleep(0.05)


async def test_an_image_becomes_ready_pinned_under_its_local_cid_with_webp_thumbnails(env: Env) -> None:
    source = _png(text="GPS 52.37N 4.89E")
    created = (await _small(env, source)).upload
    assert created.status == pb.UPLOAD_STATUS_PROCESSING or created.status == pb.UPLOAD_STATUS_UPLOADED
    upload = await env.wait_finished(created.file_id)
    assert upload.status == pb.UPLOAD_STATUS_READY, upload.error
    stored = await env.media.repo.read_blob(upload.ipfs_cid)
    assert stored is not None and b"52.37N" not in stored  # re-encoded without its text chunk
    assert upload.ipfs_cid == cid.compute(stored) and upload.ipfs_uri == f"ipfs://{upload.ipfs_cid}"
    assert upload.url.endswith(f"/media/{upload.ipfs_cid}") and upload.sha256 == hashlib.sha256(source).hexdigest()
    assert await env.media.ipfs.is_pinned(upload.ipfs_cid)
    assert await env.media.ipfs.cat(upload.ipfs_cid) == stored
    assert (upload.width, upload.height) == (300, 200)
    assert {v.name: (v.content_type, v.width, v.height) for v in upload.variants} == {
        "thumb_128": ("image/webp", 128, 85), "thumb_256": ("image/webp", 256, 171),
        "thumb_512": ("image/webp", 300, 200),  # never upscaled
    }
    for variant in upload.variants:
        blob = await env.media.repo.read_blob(variant.url.rsplit("/", 1)[1])
        assert blob is not None and len(blob) == variant.size_bytes and Image.open(io.BytesIO(blob)).format == "WEBP"
    [job] = (await env.stub.ListProcessingJobs(pb.ListProcessingJobsRequest(file_id=upload.file_id))).jobs
    assert list(upload.job_ids) == [job.job_id]
    assert job.status == pb.JOB_STATUS_SUCCEEDED and job.progress_percent == 100 and job.attempts == 1
    assert [op.spec.type for op in job.operations] == [
        pb.OPERATION_TYPE_VALIDATE, pb.OPERATION_TYPE_STRIP_METADATA, pb.OPERATION_TYPE_PIN_IPFS,
        pb.OPERATION_TYPE_THUMBNAIL, pb.OPERATION_TYPE_THUMBNAIL, pb.OPERATION_TYPE_THUMBNAIL]
    assert all(op.status == pb.JOB_STATUS_SUCCEEDED for op in job.operations)
    same = (await env.stub.GetProcessingJob(pb.GetProcessingJobRequest(job_id=job.job_id))).job
    assert same == job
    await env.media.ipfs.unpin(upload.ipfs_cid)


async def test_a_streamed_upload_resumes_after_a_broken_stream(env: Env) -> None:
    data = _png(1200, 900, noise=True)  # ~3.2 MB: more than one message, more than one segment
    created = (await env.stub.CreateUpload(pb.CreateUploadRequest(
        user_id=env.user, file_name="../../etc/big.png", file_type="image/png", size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(), purpose=TOKEN))).upload
    assert created.file_name == "big.png" and created.status == pb.UPLOAD_STATUS_PENDING
    half = len(data) // 2
    first = await _stream(env, created.file_id, data[:half])
    assert (first.status, first.bytes_received) == (pb.UPLOAD_STATUS_UPLOADING, half)
    await _broken_stream(env, created.file_id, data[half:], offset=half)
    resume = (await env.stub.GetUpload(pb.GetUploadRequest(file_id=created.file_id))).upload.bytes_received
    # Either the broken stream's bytes were dropped, or all three chunks it sent were kept: never a part.
    assert resume in (half, half + 3 * 256 * 1024)
    code, message = await _code(_stream(env, created.file_id, data[resume + 10:], offset=resume + 10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and f"resume at {resume}" in message
    done = await _stream(env, created.file_id, data[resume:], offset=resume)
    assert done.status in (pb.UPLOAD_STATUS_UPLOADED, pb.UPLOAD_STATUS_PROCESSING)
    assert done.bytes_received == len(data) and await env.staged() == 0
    ready = await env.wait_finished(created.file_id)
    assert ready.status == pb.UPLOAD_STATUS_READY, ready.error
    stored = await env.media.repo.read_blob(ready.ipfs_cid)
    assert stored is not None and cid.compute(stored) == ready.ipfs_cid
    assert Image.open(io.BytesIO(stored)).convert("RGB").tobytes() == Image.open(io.BytesIO(data)).tobytes()
    code, _ = await _code(_stream(env, created.file_id, b"more", offset=len(data)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    await env.media.ipfs.unpin(ready.ipfs_cid)


async def test_an_image_over_174_chunks_is_pinned_under_the_cid_kubo_computes(env: Env) -> None:
    data = _png(3950, 3950, noise=True)  # random pixels do not compress: ~46.8 MB, a two-level DAG
    assert len(data) > cid.MAX_LINKS * cid.CHUNK_SIZE
    created = (await env.stub.CreateUpload(pb.CreateUploadRequest(
        user_id=env.user, file_name="huge.png", file_type="image/png", size_bytes=len(data), purpose=TOKEN))).upload
    await _stream(env, created.file_id, data, chunk=env.media.settings.max_chunk_bytes)
    ready = await env.wait_finished(created.file_id, timeout=120)
    assert ready.status == pb.UPLOAD_STATUS_READY, ready.error  # the runner cross-checked kubo's CID
    stored = await env.media.repo.read_blob(ready.ipfs_cid)
    assert stored is not None and len(stored) > cid.MAX_LINKS * cid.CHUNK_SIZE
    assert ready.ipfs_cid == cid.compute(stored) == await env.media.ipfs.add(stored, only_hash=True)
    assert ready.ipfs_cid.startswith("bafybei") and await env.media.ipfs.is_pinned(ready.ipfs_cid)
    await env.media.ipfs.unpin(ready.ipfs_cid)


async def test_the_same_bytes_are_stored_once_and_deleted_with_their_last_upload(env: Env) -> None:
    data = _png(600, 400)
    first = await env.wait_finished((await _small(env, data)).upload.file_id)
    other = Env(env.stub, env.media, env.resources)  # another user uploads the very same file
    second = await other.wait_finished((await _small(other, data)).upload.file_id)
    assert first.ipfs_cid == second.ipfs_cid and first.file_id != second.file_id
    assert await env.db["blobs.files"].count_documents({"_id": first.ipfs_cid}) == 1
    blobs = await env.stored_blobs()
    assert blobs == 4  # the image and three thumbnails, once each for both uploads
    code, _ = await _code(env.stub.DeleteUpload(pb.DeleteUploadRequest(file_id=first.file_id, user_id=other.user)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    deleted = (await env.stub.DeleteUpload(pb.DeleteUploadRequest(file_id=first.file_id, user_id=env.user))).upload
    assert deleted.status == pb.UPLOAD_STATUS_DELETED
    assert await env.stored_blobs() == 4 and await env.media.ipfs.is_pinned(first.ipfs_cid)  # still used
    await env.stub.DeleteUpload(pb.DeleteUploadRequest(file_id=second.file_id, user_id=other.user))
    assert await env.stored_blobs() == 0
    assert not await env.media.ipfs.is_pinned(first.ipfs_cid)


def _polyglot() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("index.html", "<script>alert(document.domain)</script>")
    return _png(40, 40) + archive.getvalue()


def _bomb() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 30_000 // 8)
    pixels = b"".join(compressor.compress(row) for _ in range(30_000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", 30_000, 30_000, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


HOSTILE = {
    "wrong type claimed": (lambda: _png(), "image/jpeg", "not the claimed image/jpeg"),
    "decompression bomb": (_bomb, "image/png", "pixels"),
    "truncated image": (lambda: _png(200, 200, noise=True)[:50_000], "image/png", "truncated"),
    "polyglot PNG + ZIP": (_polyglot, "image/png", "polyglot"),
    "SVG with script": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)'
                        b"</script></svg>", "image/svg+xml", "SVG is not accepted"),
    "SVG claimed as PNG": (lambda: b"<svg><script>alert(1)</script></svg>", "image/png", "SVG is not accepted"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_uploads_are_refused_and_nothing_is_stored(env: Env, case: str) -> None:
    make, claimed, reason = HOSTILE[case]
    data = make()
    code, message = await _code(_small(env, data, claimed))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and reason in message
    # The same through CreateUpload + UploadChunk (when the claimed type gets that far).
    created = None
    try:
        created = (await env.stub.CreateUpload(pb.CreateUploadRequest(
            user_id=env.user, file_name="x", file_type=claimed, size_bytes=len(data), purpose=TOKEN))).upload
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and reason in (error.details() or "")
    if created is not None:
        code, message = await _code(_stream(env, created.file_id, data))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and reason in message
        failed = (await env.stub.GetUpload(pb.GetUploadRequest(file_id=created.file_id))).upload
        assert failed.status == pb.UPLOAD_STATUS_FAILED and reason in failed.error and not failed.ipfs_cid
    assert await env.stored_blobs() == 0 and await env.staged() == 0
    assert await env.db["processing_jobs"].count_documents({}) == 0
    assert await env.db["media_uploads"].count_documents({"status": {"$ne": pb.UPLOAD_STATUS_FAILED}}) == 0
    assert not await env.media.ipfs.is_pinned(cid.compute(data))


async def test_size_limits_hold_at_create_in_one_call_and_in_the_stream(env: Env) -> None:
    limit = env.media.settings.max_banner_bytes
    code, message = await _code(env.stub.CreateUpload(pb.CreateUploadRequest(
        user_id=env.user, file_name="b.png", file_type="image/png", size_bytes=limit + 1,
        purpose=pb.MEDIA_PURPOSE_BANNER)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and f"at most {limit}" in message
    big = _png(400, 400, noise=True)
    assert len(big) > limit
    code, _ = await _code(_small(env, big, purpose=pb.MEDIA_PURPOSE_BANNER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    declared = (await env.stub.CreateUpload(pb.CreateUploadRequest(
        user_id=env.user, file_name="b.png", file_type="image/png", size_bytes=1000, purpose=TOKEN))).upload
    code, message = await _code(_stream(env, declared.file_id, big[:5000], chunk=1000))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "more than the declared 1000 bytes" in message
    code, message = await _code(_stream(env, declared.file_id, os.urandom(2 * 1024 * 1024), chunk=2 * 1024 * 1024))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "at most" in message
    assert await env.staged() == 0 and await env.stored_blobs() == 0
    code, message = await _code(env.stub.CreateUpload(pb.CreateUploadRequest(
        user_id=env.user, file_name="m.mp4", file_type="video/mp4", size_bytes=10, purpose=TOKEN)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not allowed" in message


async def test_an_upload_whose_completion_was_interrupted_finishes_on_an_empty_message(env: Env) -> None:
    data = _png(80, 60)
    created = (await env.stub.CreateUpload(pb.CreateUploadRequest(
        user_id=env.user, file_name="a.png", file_type="image/png", size_bytes=len(data), purpose=TOKEN))).upload
    # All bytes committed, then the service died before checking them (simulated: the segment and the
    # counter are written the way receive() writes them, and completion never runs).
    segment = f"{created.file_id}/{0:015d}-crashed0"

    async def once() -> AsyncIterator[bytes]:
        yield data

    await env.media.repo.write_segment(created.file_id, segment, 0, once())
    await env.media.repo.update_upload(created.file_id, {"bytes_received": len(data),
                                                         "status": pb.UPLOAD_STATUS_UPLOADING},
                                       push={"segments": segment})
    finished = (await env.stub.UploadChunk(iter([pb.UploadChunkRequest(file_id=created.file_id,
                                                                       offset=len(data))]))).upload
    assert finished.status in (pb.UPLOAD_STATUS_UPLOADED, pb.UPLOAD_STATUS_PROCESSING) and await env.staged() == 0
    ready = await env.wait_finished(created.file_id)
    assert ready.status == pb.UPLOAD_STATUS_READY
    await env.media.ipfs.unpin(ready.ipfs_cid)


async def test_a_wrong_sha256_is_data_loss(env: Env) -> None:
    data = _png(50, 50)
    created = (await env.stub.CreateUpload(pb.CreateUploadRequest(
        user_id=env.user, file_name="a.png", file_type="image/png", size_bytes=len(data),
        sha256=hashlib.sha256(b"something else").hexdigest(), purpose=TOKEN))).upload
    code, _ = await _code(_stream(env, created.file_id, data))
    assert code == grpc.StatusCode.DATA_LOSS
    assert await env.stored_blobs() == 0 and await env.staged() == 0


async def test_metadata_json_is_checked_and_pinned(env: Env) -> None:
    document = b'{"name": "Token #1", "image": "ipfs://bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"}'
    created = (await _small(env, document, "application/json", pb.MEDIA_PURPOSE_METADATA)).upload
    ready = await env.wait_finished(created.file_id)
    assert ready.status == pb.UPLOAD_STATUS_READY and ready.ipfs_cid == cid.compute(document)
    assert await env.media.ipfs.cat(ready.ipfs_cid) == document and not ready.variants
    code, _ = await _code(_small(env, b"[1, 2", "application/json", pb.MEDIA_PURPOSE_METADATA))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await _code(_small(env, _png(), "application/json", pb.MEDIA_PURPOSE_METADATA))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    await env.media.ipfs.unpin(ready.ipfs_cid)


async def test_lookups_and_pages(env: Env) -> None:
    code, _ = await _code(env.stub.GetUpload(pb.GetUploadRequest(file_id=str(uuid.uuid4()))))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await _code(env.stub.GetUpload(pb.GetUploadRequest(file_id="not-a-uuid")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await _code(env.stub.GetProcessingJob(pb.GetProcessingJobRequest(job_id=str(uuid.uuid4()))))
    assert code == grpc.StatusCode.NOT_FOUND
    ids = []
    for index in range(5):
        created = await env.stub.CreateUpload(pb.CreateUploadRequest(
            user_id=env.user, file_name=f"{index}.png", file_type="image/png", size_bytes=10, purpose=TOKEN))
        ids.append(created.upload.file_id)
    seen: list[str] = []
    token = ""
    while True:
        page = await env.stub.ListUploads(pb.ListUploadsRequest(
            user_id=env.user, page=common_pb2.PageRequest(page_size=2, page_token=token)))
        seen += [upload.file_id for upload in page.uploads]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == ids[::-1]  # newest first, every upload once
    other = await env.stub.ListUploads(pb.ListUploadsRequest(user_id="someone-else"))
    assert not other.uploads


@pytest_asyncio.fixture
async def private_db() -> AsyncIterator[str]:
    """A database no background runner watches: these tests drive the runners step by step."""
    database = f"media_test_{uuid.uuid4().hex[:12]}"
    yield database
    _, resources = await _open(media_database=database)
    await resources.mongo.drop_database(database)
    await resources.close()


async def _wait_claimable(media: Media, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await media.runner.run_once():  # noqa: ASYNC110 - polling the database is the point
            await asyncio.sleep(0.1)


async def test_a_job_waits_for_an_unreachable_node_and_resumes(private_db: str) -> None:
    cut_off, cut_resources = await _open(media_database=private_db, ipfs_api_url="http://127.0.0.1:9",
                                         job_retry_max_seconds=0.3)
    healthy, healthy_resources = await _open(media_database=private_db)
    try:
        doc = await cut_off.uploads.upload_small(pb.UploadMediaRequest(
            user_id="u", file_name="a.png", file_type="image/png", purpose=TOKEN, data=_png(70, 70)))
        assert await cut_off.runner.run_once()
        job = await cut_off.repo.get_job(doc["job_ids"][0])
        assert job is not None and job["status"] == pb.JOB_STATUS_QUEUED and "unreachable" in job["error"]
        assert job["attempts"] == 1 and job["not_before"] > job["started_at"]
        assert [op["status"] for op in job["operations"]][:3] == [
            pb.JOB_STATUS_SUCCEEDED, pb.JOB_STATUS_SUCCEEDED, pb.JOB_STATUS_QUEUED]
        upload = await healthy.repo.get_upload(doc["_id"])
        assert upload is not None and upload["status"] == pb.UPLOAD_STATUS_PROCESSING
        assert not await healthy.runner.run_once()  # backing off: not claimable before not_before
        await _wait_claimable(healthy)  # the node is back (another runner reaches it): the job resumes
        upload = await healthy.repo.get_upload(doc["_id"])
        job = await healthy.repo.get_job(doc["job_ids"][0])
        assert upload is not None and upload["status"] == pb.UPLOAD_STATUS_READY and upload["pinned"]
        assert job is not None and job["status"] == pb.JOB_STATUS_SUCCEEDED and job["attempts"] == 2
        assert await healthy.ipfs.is_pinned(upload["cid"])
        await healthy.ipfs.unpin(upload["cid"])
    finally:
        await cut_resources.close()
        await healthy_resources.close()


async def test_a_crashed_runners_job_is_taken_over_after_its_lease(private_db: str) -> None:
    media, resources = await _open(media_database=private_db)
    try:
        doc = await media.uploads.upload_small(pb.UploadMediaRequest(
            user_id="u", file_name="a.png", file_type="image/png", purpose=TOKEN, data=_png(90, 90)))
        # A worker claims the job and dies without a word (SIGKILL): only its lease says it was there.
        claimed = await media.repo.claim_job("crashed-worker", timedelta(seconds=0.5), 5)
        assert claimed is not None and claimed["_id"] == doc["job_ids"][0]
        assert not await media.runner.run_once()  # the lease still holds
        await _wait_claimable(media)
        job = await media.repo.get_job(claimed["_id"])
        upload = await media.repo.get_upload(doc["_id"])
        assert job is not None and job["attempts"] == 2 and job["worker"] == media.runner.worker
        assert job["status"] == pb.JOB_STATUS_SUCCEEDED
        assert upload is not None and upload["status"] == pb.UPLOAD_STATUS_READY
        assert len(upload["variants"]) == len(media.settings.thumbnail_sizes)
        await media.ipfs.unpin(upload["cid"])
    finally:
        await resources.close()

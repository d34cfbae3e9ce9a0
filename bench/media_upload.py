"""Upload throughput of the media service for a ~20 MB image against kubo's own `ipfs add` of the same file.

Needs the dev stack's FerretDB and kubo (`make up`). Starts the media service in this process on its own
MongoDB database (dropped afterwards), then for each round:
  * streams the image over gRPC (CreateUpload + UploadChunk, 1 MiB messages) until the service answers
    UPLOADED (bytes received, SHA-256, Pillow checks and re-encoding, CID, GridFS write), and then until
    the processing job has it READY (read back, pinned in kubo, three WebP thumbnails);
  * times the stages on their own: validate + re-encode, local CID, GridFS write, kubo add over RPC;
  * runs `ipfs add --cid-version 1` (the CLI, against the same daemon) and the RPC `add` on the same file.

    .venv/bin/python bench/media_upload.py [--megabytes 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from PIL import Image

from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.api.media.v1 import media_pb2_grpc
from mintplane.common.service import Resources
from mintplane.devstack.layout import Layout
from mintplane.media import cid, images
from mintplane.media.server import NEEDS, assemble, serve
from mintplane.media.settings import MediaSettings


def noise_png(megabytes: float) -> bytes:
    """A PNG of random pixels: it does not compress, so the file is about width*height*3 bytes."""
    side = int((megabytes * 1_000_000 / 3) ** 0.5)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG", compress_level=1)
    return out.getvalue()


def rate(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:7.1f} MB/s  ({seconds * 1000:7.0f} ms)"


async def main(megabytes: float, rounds: int) -> None:
    data = noise_png(megabytes)
    size = len(data)
    database = f"media_bench_{uuid.uuid4().hex[:8]}"
    settings = MediaSettings(grpc_port=0, media_database=database, job_poll_seconds=0.05)
    resources = await Resources.open(settings, NEEDS, name="media-bench")
    media = await assemble(settings, resources)
    built = serve(media, resources)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    stub = media_pb2_grpc.MediaServiceStub(channel)
    ipfs = Layout.default().bin / "ipfs"
    results: dict[str, list[float]] = {}
    pinned: set[str] = set()

    def note(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(seconds)

    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "image.png"
            for round_ in range(rounds):
                # A fresh image per round: the same bytes would be deduplicated (stored once, pinned once).
                data = noise_png(megabytes) if round_ else data
                path.write_bytes(data)
                created = (await stub.CreateUpload(pb.CreateUploadRequest(
                    user_id="bench", file_name="image.png", file_type="image/png", size_bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(), purpose=pb.MEDIA_PURPOSE_TOKEN_MEDIA))).upload

                async def chunks(upload_id: str = created.file_id, payload: bytes = data) -> AsyncIterator[
                        pb.UploadChunkRequest]:
                    step = settings.max_chunk_bytes
                    for start in range(0, len(payload), step):
                        yield pb.UploadChunkRequest(file_id=upload_id, offset=start, data=payload[start:start + step])

                started = time.perf_counter()
                stored = (await stub.UploadChunk(chunks())).upload
                note("gRPC upload until stored (UPLOADED)", time.perf_counter() - started)
                while stored.status not in (pb.UPLOAD_STATUS_READY, pb.UPLOAD_STATUS_FAILED):
                    await asyncio.sleep(0.02)
                    stored = (await stub.GetUpload(pb.GetUploadRequest(file_id=created.file_id))).upload
                note("gRPC upload until READY (pinned, thumbnails)", time.perf_counter() - started)
                assert stored.status == pb.UPLOAD_STATUS_READY, stored.error
                pinned.add(stored.ipfs_cid)

                started = time.perf_counter()
                checked = await asyncio.to_thread(images.validate_image, data, "image/png", media.uploads.limits)
                note("  stage: Pillow validate + re-encode", time.perf_counter() - started)
                started = time.perf_counter()
                local = await asyncio.to_thread(cid.compute, checked.data)
                note("  stage: local CID", time.perf_counter() - started)
                assert local == stored.ipfs_cid
                scratch = f"bench-{uuid.uuid4()}"
                started = time.perf_counter()
                await media.repo.put_blob(scratch, checked.data, "image/png")
                note("  stage: GridFS write", time.perf_counter() - started)
                await media.repo.delete_blob(scratch)

                # kubo's own `ipfs add` of the same file, pinned, through the running daemon.
                started = time.perf_counter()
                result = await asyncio.to_thread(
                    subprocess.run, [str(ipfs), "add", "--cid-version", "1", "-Q", str(path)], check=True,
                    capture_output=True, text=True, env={**os.environ, "IPFS_PATH": str(Layout.default().data("kubo"))})
                note("kubo: ipfs add --cid-version 1 (CLI)", time.perf_counter() - started)
                pinned.add(result.stdout.strip())
                assert result.stdout.strip() == cid.compute(data)
                started = time.perf_counter()
                await media.ipfs.add(data, pin=True)
                note("kubo: RPC /api/v0/add (pin)", time.perf_counter() - started)
    finally:
        for pin in pinned:
            await media.ipfs.unpin(pin)
        await channel.close(None)
        await built.server.stop(None)
        await resources.mongo.drop_database(database)
        await resources.close()

    print(f"media upload: {size / 1e6:.1f} MB PNG (random pixels), {rounds} rounds, median of each")
    for name, seconds in results.items():
        print(f"  {name:<46} {rate(size, statistics.median(seconds))}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.megabytes, args.rounds))

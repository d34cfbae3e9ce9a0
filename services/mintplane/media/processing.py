"""Processing jobs (processing_jobs): pin to IPFS and make WebP thumbnails, with status and progress.

A job lists its operations in order; the runner claims one job at a time with a lease (one conditional
update, so two service replicas never run the same job), records each operation as it finishes, and on a
crash another runner takes the job over when the lease runs out and resumes after the last finished
operation. IPFS errors are transient (the job is queued again, up to `job_max_attempts`); anything else
fails the operation, skips the rest and fails the upload with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from typing import Any

from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.common.errors import DomainError
from mintplane.common.log import get_logger
from mintplane.media import cid as cids
from mintplane.media import images, messages
from mintplane.media.ipfs import IpfsClient, IpfsError
from mintplane.media.repository import Doc, MediaRepository, now
from mintplane.media.settings import MediaSettings

log = get_logger(__name__)


class PinMismatch(DomainError):
    """The node computed another CID for the bytes: its importer settings differ from ours."""


class JobRunner:
    def __init__(self, repo: MediaRepository, ipfs: IpfsClient, settings: MediaSettings) -> None:
        self.repo = repo
        self.ipfs = ipfs
        self.settings = settings
        self.worker = f"media-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            try:
                ran = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a database hiccup must not stop the runner; the lease recovers the job
                log.exception("processing job runner error")
                ran = False
            if not ran:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.job_poll_seconds)

    async def run_once(self) -> bool:
        """Run one claimable job; False if there was none."""
        await self._fail_exhausted()
        job = await self.repo.claim_job(self.worker, timedelta(seconds=self.settings.job_lease_seconds),
                                        self.settings.job_max_attempts)
        if job is None:
            return False
        await self.run(job)
        return True

    async def _fail_exhausted(self) -> None:
        for job in await self.repo.exhausted_jobs(self.settings.job_max_attempts):
            await self._finish(job, pb.JOB_STATUS_FAILED, job.get("error") or "gave up after repeated attempts")

    async def run(self, job: Doc) -> None:
        upload = await self.repo.get_upload(job["file_id"])
        if upload is None or upload["status"] == pb.UPLOAD_STATUS_DELETED:
            await self._finish(job, pb.JOB_STATUS_SKIPPED, "the upload was deleted")
            return
        await self.repo.update_upload(upload["_id"], {"status": pb.UPLOAD_STATUS_PROCESSING},
                                      where={"status": {"$in": [pb.UPLOAD_STATUS_UPLOADED,
                                                                 pb.UPLOAD_STATUS_PROCESSING]}})
        operations = job["operations"]
        cache: dict[str, Any] = {}  # the content and its decoded first frame, read once per run
        for index, operation in enumerate(operations):
            if operation["status"] in messages.FINISHED:
                continue  # done before a crash or before storing (validate, strip)
            await self._set_op(job, index, {"status": pb.JOB_STATUS_RUNNING})
            try:
                variant = await self._operate(operation, upload, cache)
            except IpfsError as exc:  # transient: back to the queue; attempts are counted by claim_job
                await self._set_op(job, index, {"status": pb.JOB_STATUS_QUEUED, "error": exc.message})
                delay = min(2.0 ** job.get("attempts", 1), self.settings.job_retry_max_seconds)
                await self.repo.update_job(job["_id"], {"status": pb.JOB_STATUS_QUEUED, "error": exc.message,
                                                        "lease_until": None,
                                                        "not_before": now() + timedelta(seconds=delay)},
                                           worker=self.worker)
                log.warning("processing job waits for IPFS", job_id=job["_id"], error=exc.message)
                return
            except Exception as exc:
                reason = exc.message if isinstance(exc, DomainError) else "processing failed"
                if not isinstance(exc, DomainError):
                    log.exception("processing operation failed", job_id=job["_id"])
                await self._set_op(job, index, {"status": pb.JOB_STATUS_FAILED, "error": reason})
                for later in range(index + 1, len(operations)):
                    await self._set_op(job, later, {"status": pb.JOB_STATUS_SKIPPED})
                await self._finish(job, pb.JOB_STATUS_FAILED, reason)
                return
            await self._set_op(job, index, {"status": pb.JOB_STATUS_SUCCEEDED, "error": "",
                                            "variant_name": variant or ""})
            upload = await self.repo.get_upload(upload["_id"]) or upload
        await self._finish(job, pb.JOB_STATUS_SUCCEEDED, "")

    async def _set_op(self, job: Doc, index: int, changes: Doc) -> None:
        job["operations"][index].update(changes)
        fields = {f"operations.{index}.{key}": value for key, value in changes.items()}
        fields["progress_percent"] = messages.progress(job["operations"])
        await self.repo.update_job(job["_id"], fields)

    async def _finish(self, job: Doc, status: int, error: str) -> None:
        await self.repo.update_job(job["_id"], {"status": status, "error": error, "finished_at": now(),
                                                "lease_until": None})
        if status == pb.JOB_STATUS_SKIPPED:
            return
        if status == pb.JOB_STATUS_SUCCEEDED:
            await self.repo.update_upload(job["file_id"], {"status": pb.UPLOAD_STATUS_READY, "error": ""},
                                          where={"status": pb.UPLOAD_STATUS_PROCESSING})
        else:
            await self.repo.update_upload(job["file_id"], {"status": pb.UPLOAD_STATUS_FAILED, "error": error},
                                          where={"status": {"$ne": pb.UPLOAD_STATUS_DELETED}})

    async def _operate(self, operation: Doc, upload: Doc, cache: dict[str, Any]) -> str | None:
        kind = operation["type"]
        if kind == pb.OPERATION_TYPE_PIN_IPFS:
            await self._pin(upload, cache)
            return None
        if kind == pb.OPERATION_TYPE_THUMBNAIL:
            return await self._thumbnail(upload, int(operation["params"]["size"]), cache)
        raise DomainError(f"operation {pb.OperationType.Name(kind)} is not supported")

    async def _content(self, upload: Doc, cache: dict[str, Any]) -> bytes:
        if "content" not in cache:
            cache["content"] = await self.repo.read_blob(upload["cid"])
        data: bytes | None = cache["content"]
        if data is None:
            raise DomainError("the upload's stored content is missing")
        return data

    async def _pin(self, upload: Doc, cache: dict[str, Any]) -> None:
        data = await self._content(upload, cache)
        node_cid = await self.ipfs.add(data, pin=True)
        if node_cid != upload["cid"]:
            await self.ipfs.unpin(node_cid)
            raise PinMismatch(f"the IPFS node computed {node_cid} for content we address as {upload['cid']}: "
                              "its importer settings differ (CIDv1, raw leaves, 256 KiB chunks, 174 links)")
        await self.repo.update_upload(upload["_id"], {"pinned": True, "pinned_at": now()})

    async def _thumbnail(self, upload: Doc, size: int, cache: dict[str, Any]) -> str:
        name = f"thumb_{size}"
        if "frame" not in cache:
            data = await self._content(upload, cache)
            cache["frame"] = await asyncio.to_thread(images.first_frame, data, upload["file_type"])
        webp, width, height = await asyncio.to_thread(
            images.thumbnail_from, cache["frame"], size, self.settings.thumbnail_quality
        )
        cid = await asyncio.to_thread(cids.compute, webp)
        await self.repo.put_blob(cid, webp, "image/webp")
        variant: dict[str, Any] = {"name": name, "content_type": "image/webp", "cid": cid, "width": width,
                                   "height": height, "size_bytes": len(webp)}
        await self.repo.update_upload(upload["_id"], {}, where={"variants.name": {"$ne": name}},
                                      push={"variants": variant})
        return name

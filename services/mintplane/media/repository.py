"""The only module touching MongoDB: media_uploads, processing_jobs and the GridFS buckets of file bytes.

Kept within what FerretDB 1.24 (the local MongoDB) and MongoDB both do: no transactions and no change
streams, so every state change is one conditional single-document update (the condition is the state the
caller read: two writers of one upload cannot both win), and workers find queued jobs by polling.

Bytes live in two GridFS buckets (motor's AsyncIOMotorGridFSBucket, tested against FerretDB):
- `blobs`: stored content keyed by its CID (`_id` = CID), so the same bytes are stored once whoever
  uploads them; variants (thumbnails) are blobs too;
- `staging`: the segments of an upload still arriving, one GridFS file per UploadChunk stream
  (`_id` = "<file_id>/<offset>"), so a broken stream resumes at the last complete segment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gridfs.errors import FileExists, NoFile
from motor.motor_asyncio import AsyncIOMotorGridFSBucket
from pymongo import ASCENDING, DESCENDING, ReturnDocument

from mintplane.common.pagination import Cursor

Doc = dict[str, Any]


def now() -> datetime:
    # Mongo keeps milliseconds; rounding here keeps what we return equal to what a later read returns.
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class MediaRepository:
    def __init__(self, client: Any, database: str = "media", *, chunk_bytes: int = 1024 * 1024) -> None:
        self.db = client[database]
        self.uploads = self.db["media_uploads"]
        self.jobs = self.db["processing_jobs"]
        self.blobs = AsyncIOMotorGridFSBucket(self.db, bucket_name="blobs", chunk_size_bytes=chunk_bytes)
        self.staging = AsyncIOMotorGridFSBucket(self.db, bucket_name="staging", chunk_size_bytes=chunk_bytes)

    async def ensure_indexes(self) -> None:
        await self.uploads.create_index([("user_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
                                        name="ix_uploads_user_created")
        await self.uploads.create_index([("cid", ASCENDING)], name="ix_uploads_cid")
        await self.jobs.create_index([("file_id", ASCENDING), ("created_at", ASCENDING)], name="ix_jobs_file")
        await self.jobs.create_index([("status", ASCENDING), ("lease_until", ASCENDING)], name="ix_jobs_claim")

    # --- uploads -----------------------------------------------------------------------------------------

    async def insert_upload(self, doc: Doc) -> None:
        await self.uploads.insert_one(doc)

    async def get_upload(self, file_id: str) -> Doc | None:
        doc: Doc | None = await self.uploads.find_one({"_id": file_id})
        return doc

    async def update_upload(self, file_id: str, changes: Doc, *, where: Doc | None = None,
                            push: Doc | None = None) -> Doc | None:
        """Set `changes` if the upload still matches `where`; the updated document, or None if it did not."""
        update: Doc = {"$set": {**changes, "updated_at": now()}}
        if push:
            update["$push"] = push
        doc: Doc | None = await self.uploads.find_one_and_update(
            {"_id": file_id, **(where or {})}, update, return_document=ReturnDocument.AFTER
        )
        return doc

    async def list_uploads(self, user_id: str, *, purpose: int | None, statuses: Sequence[int],
                           after: Cursor | None, limit: int) -> list[Doc]:
        query: Doc = {"user_id": user_id, "status": {"$in": list(statuses)}}
        if purpose is not None:
            query["purpose"] = purpose
        if after is not None:
            key = str(after.key)
            query["$or"] = [{"created_at": {"$lt": after.created_at}},
                            {"created_at": after.created_at, "_id": {"$lt": key}}]
        cursor = self.uploads.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [doc async for doc in cursor]

    async def count_live_references(self, cid: str, *, besides: str) -> int:
        """Uploads other than `besides` whose content or variants are this blob (deciding whether to delete)."""
        query = {"_id": {"$ne": besides}, "status": {"$nin": [7]},  # 7: UPLOAD_STATUS_DELETED
                 "$or": [{"cid": cid}, {"variants.cid": cid}]}
        count: int = await self.uploads.count_documents(query)
        return count

    # --- staged segments ---------------------------------------------------------------------------------

    async def write_segment(self, file_id: str, segment: str, offset: int, pieces: AsyncIterator[bytes]) -> int:
        """Store one stream's contiguous bytes starting at `offset`; returns how many were written. If the
        iterator raises, the partial segment is removed and the error propagates (resume from `offset`)."""
        stream = self.staging.open_upload_stream_with_id(segment, file_id, metadata={"offset": offset})
        written = 0
        try:
            async for piece in pieces:
                await stream.write(piece)
                written += len(piece)
            if written == 0:
                await stream.abort()
            else:
                await stream.close()
        except BaseException:  # includes cancellation: the client went away
            await asyncio.shield(stream.abort())
            raise
        return written

    async def read_staged(self, segments: Sequence[str]) -> bytes | None:
        """The committed segments concatenated; None if one is missing or they do not tile the file from
        byte 0 without gaps or overlaps."""
        parts: list[bytes] = []
        position = 0
        for segment in segments:
            try:
                stream = await self.staging.open_download_stream(segment)
            except NoFile:
                return None
            if (stream.metadata or {}).get("offset") != position:
                return None
            parts.append(await stream.read())
            position += len(parts[-1])
        return b"".join(parts)

    async def delete_segment(self, segment: str) -> None:
        with contextlib.suppress(NoFile):
            await self.staging.delete(segment)

    async def delete_staged(self, file_id: str) -> None:
        cursor = self.db["staging.files"].find({"filename": file_id}, {"_id": 1})
        for segment in [str(doc["_id"]) async for doc in cursor]:
            await self.delete_segment(segment)

    # --- blobs (content by CID) --------------------------------------------------------------------------

    async def has_blob(self, cid: str) -> bool:
        found: Doc | None = await self.db["blobs.files"].find_one({"_id": cid}, {"_id": 1})
        return found is not None

    async def put_blob(self, cid: str, data: bytes, content_type: str) -> bool:
        """Store the bytes under their CID once; False if they were already there (dedupe)."""
        if await self.has_blob(cid):
            return False
        try:
            await self.blobs.upload_from_stream_with_id(cid, cid, data, metadata={"content_type": content_type})
        except FileExists:
            # Another upload of the same bytes got there first, or a crashed writer left chunks behind:
            # wait for its files document; if none shows up, clear the orphan chunks and write again.
            for _ in range(20):
                if await self.has_blob(cid):
                    return False
                await asyncio.sleep(0.1)
            await self.db["blobs.chunks"].delete_many({"files_id": cid})
            await self.blobs.upload_from_stream_with_id(cid, cid, data, metadata={"content_type": content_type})
        return True

    async def read_blob(self, cid: str, start: int = 0, length: int | None = None) -> bytes | None:
        """The blob's bytes (or the range [start, start+length)), None if it is not stored."""
        try:
            stream = await self.blobs.open_download_stream(cid)
        except NoFile:
            return None
        if start:
            stream.seek(start)
        data: bytes = await stream.read(-1 if length is None else length)
        return data

    async def open_blob(self, cid: str) -> Any | None:
        """A reader of the blob (motor's GridOut: length, metadata, seek, read), None if it is not stored;
        ReadMedia streams from it piece by piece instead of loading the whole blob."""
        try:
            return await self.blobs.open_download_stream(cid)
        except NoFile:
            return None

    async def blob_info(self, cid: str) -> Doc | None:
        doc: Doc | None = await self.db["blobs.files"].find_one({"_id": cid})
        return doc

    async def delete_blob(self, cid: str) -> None:
        with contextlib.suppress(NoFile):
            await self.blobs.delete(cid)

    # --- processing jobs ---------------------------------------------------------------------------------

    async def insert_job(self, doc: Doc) -> None:
        await self.jobs.insert_one(doc)

    async def get_job(self, job_id: str) -> Doc | None:
        doc: Doc | None = await self.jobs.find_one({"_id": job_id})
        return doc

    async def list_jobs(self, file_id: str) -> list[Doc]:
        return [doc async for doc in self.jobs.find({"file_id": file_id}).sort("created_at", ASCENDING)]

    async def claim_job(self, worker: str, lease: timedelta, max_attempts: int) -> Doc | None:
        """Take the oldest queued job, or a running one whose worker's lease ran out (it crashed)."""
        moment = now()
        doc: Doc | None = await self.jobs.find_one_and_update(
            {"$and": [{"$or": [{"status": 1}, {"status": 2, "lease_until": {"$lt": moment}}]},  # QUEUED, RUNNING
                      {"$or": [{"not_before": None}, {"not_before": {"$lte": moment}}]}],
             "attempts": {"$lt": max_attempts}},
            {"$set": {"status": 2, "worker": worker, "lease_until": moment + lease, "started_at": moment},
             "$inc": {"attempts": 1}},
            sort=[("created_at", ASCENDING)], return_document=ReturnDocument.AFTER,
        )
        return doc

    async def exhausted_jobs(self, max_attempts: int) -> list[Doc]:
        """Jobs out of attempts: queued again after their last one, or whose last worker's lease ran out."""
        query = {"$or": [{"status": 1}, {"status": 2, "lease_until": {"$lt": now()}}],
                 "attempts": {"$gte": max_attempts}}
        return [doc async for doc in self.jobs.find(query)]

    async def update_job(self, job_id: str, changes: Doc, *, worker: str | None = None) -> Doc | None:
        """Record progress; with `worker`, only while that worker still holds the job."""
        where: Doc = {"_id": job_id}
        if worker is not None:
            where["worker"] = worker
        doc: Doc | None = await self.jobs.find_one_and_update(
            where, {"$set": changes}, return_document=ReturnDocument.AFTER
        )
        return doc

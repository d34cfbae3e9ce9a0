"""Uploads: limits per purpose, the byte stream, and the checks that decide whether anything is stored.

An upload is refused before its bytes reach the blob store: the declared size and type are checked at
CreateUpload, every chunk against the declared size as it arrives, and the completed file (size, SHA-256,
then the image checks of `images`) before it is stored. What is stored is the sanitised content, once
per CID (dedupe), and a processing job is queued for the rest (pinning, thumbnails).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.common import pagination
from mintplane.common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from mintplane.media import cid as cids
from mintplane.media import images
from mintplane.media.errors import DataLoss
from mintplane.media.repository import Doc, MediaRepository, now
from mintplane.media.settings import MediaSettings

JSON = "application/json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SUPPORTED_OPERATIONS = {pb.OPERATION_TYPE_VALIDATE, pb.OPERATION_TYPE_STRIP_METADATA, pb.OPERATION_TYPE_THUMBNAIL,
                         pb.OPERATION_TYPE_PIN_IPFS}
_OPEN = (pb.UPLOAD_STATUS_PENDING, pb.UPLOAD_STATUS_UPLOADING)


@dataclass(frozen=True)
class Rule:
    types: tuple[str, ...]
    max_bytes: int


def rules(settings: MediaSettings) -> dict[int, Rule]:
    return {
        pb.MEDIA_PURPOSE_AVATAR: Rule(images.IMAGE_TYPES, settings.max_avatar_bytes),
        pb.MEDIA_PURPOSE_BANNER: Rule(images.IMAGE_TYPES, settings.max_banner_bytes),
        pb.MEDIA_PURPOSE_COLLECTION_IMAGE: Rule(images.IMAGE_TYPES, settings.max_collection_image_bytes),
        pb.MEDIA_PURPOSE_TOKEN_MEDIA: Rule(images.IMAGE_TYPES, settings.max_token_media_bytes),
        pb.MEDIA_PURPOSE_METADATA: Rule((JSON,), settings.max_metadata_bytes),
    }


def _uuid(field: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(f"{field} must be a UUID") from None


def _purpose_name(purpose: int) -> str:
    return pb.MediaPurpose.Name(pb.MediaPurpose.ValueType(purpose))


def clean_file_name(name: str) -> str:
    """The last path component, without control characters, at most 255 characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    return base.strip()[:255] or "file"


def _operations(specs: Sequence[pb.OperationSpec]) -> list[Doc]:
    found = []
    for spec in specs:
        if spec.type not in _SUPPORTED_OPERATIONS:
            raise InvalidArgument(f"operation {pb.OperationType.Name(spec.type)} is not supported")
        if spec.type == pb.OPERATION_TYPE_THUMBNAIL:
            size = spec.params.get("size", "")
            if not size.isdigit() or not 16 <= int(size) <= 2048:
                raise InvalidArgument("THUMBNAIL needs params.size between 16 and 2048")
        found.append({"type": spec.type, "params": dict(spec.params)})
    return found


def _json_document(data: bytes) -> None:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument(f"the metadata is not UTF-8 JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise InvalidArgument("the metadata must be a JSON object")


@dataclass(frozen=True)
class Stored:
    """What ReadMedia says about stored content before its bytes."""

    content_type: str
    size: int
    start: int


class Uploads:
    """The media service's upload rules over the repository; `on_queued` wakes the job runner."""

    def __init__(self, repo: MediaRepository, settings: MediaSettings,
                 on_queued: Callable[[], None] = lambda: None) -> None:
        self.repo = repo
        self.settings = settings
        self._rules = rules(settings)
        self._on_queued = on_queued
        self.limits = images.Limits(settings.max_image_pixels, settings.max_image_side,
                                    settings.max_total_pixels, settings.max_frames)

    # --- creating ----------------------------------------------------------------------------------------

    def _rule(self, purpose: int, file_type: str, size: int) -> tuple[Rule, str]:
        rule = self._rules.get(purpose)
        if rule is None:
            raise InvalidArgument("purpose is required")
        content_type = images.normalise_type(file_type)
        if content_type == images.SVG:
            raise InvalidArgument("SVG is not accepted (it can carry script); upload PNG or WebP instead")
        if content_type not in rule.types:
            raise InvalidArgument(f"file_type {file_type!r} is not allowed for {_purpose_name(purpose)}; "
                                  f"allowed: {', '.join(rule.types)}")
        if size <= 0:
            raise InvalidArgument("size_bytes must be positive")
        if size > rule.max_bytes:
            raise InvalidArgument(f"the file is {size} bytes; at most {rule.max_bytes} are allowed for "
                                  f"{_purpose_name(purpose)}")
        return rule, content_type

    def _new_doc(self, user_id: str, file_name: str, content_type: str, purpose: int, size: int,
                 sha256: str, operations: list[Doc]) -> Doc:
        if not user_id:
            raise InvalidArgument("user_id is required")
        moment = now()
        return {
            "_id": str(uuid.uuid4()), "user_id": user_id, "file_name": clean_file_name(file_name),
            "file_type": content_type, "purpose": purpose, "status": pb.UPLOAD_STATUS_PENDING,
            "size_bytes": size, "bytes_received": 0, "sha256": sha256, "declared_sha256": bool(sha256),
            "operations": operations, "variants": [], "job_ids": [], "segments": [],
            "created_at": moment, "updated_at": moment,
        }

    async def create(self, request: pb.CreateUploadRequest) -> Doc:
        _, content_type = self._rule(request.purpose, request.file_type, request.size_bytes)
        sha256 = request.sha256.strip().lower()
        if sha256 and not _SHA256.match(sha256):
            raise InvalidArgument("sha256 must be 64 hex characters")
        doc = self._new_doc(request.user_id, request.file_name, content_type, request.purpose,
                            request.size_bytes, sha256, _operations(request.operations))
        await self.repo.insert_upload(doc)
        return doc

    async def upload_small(self, request: pb.UploadMediaRequest) -> Doc:
        """UploadMedia: everything is checked before the upload is recorded, so a refusal leaves nothing."""
        if len(request.data) > self.settings.max_single_call_bytes:
            raise InvalidArgument(f"UploadMedia takes at most {self.settings.max_single_call_bytes} bytes; "
                                  "use CreateUpload and UploadChunk for larger files")
        _, content_type = self._rule(request.purpose, request.file_type, len(request.data))
        doc = self._new_doc(request.user_id, request.file_name, content_type, request.purpose, len(request.data),
                            "", _operations(request.operations))
        stored = await self._accept(doc, bytes(request.data))
        doc.update(stored, bytes_received=len(request.data))
        await self.repo.insert_upload(doc)
        return await self._queue_job(doc)

    # --- receiving ---------------------------------------------------------------------------------------

    async def receive(self, requests: AsyncIterator[pb.UploadChunkRequest],
                      cancelled: Callable[[], bool] = lambda: False) -> Doc:
        """Take one UploadChunk stream. `cancelled` tells a client that went away from one that finished:
        gRPC ends the request stream of a cancelled call as if the client had half-closed it."""
        first = await anext(aiter(requests), None)
        if first is None:
            raise InvalidArgument("the stream carried no chunk")
        doc = await self._get(first.file_id)
        if doc["status"] not in _OPEN:
            raise FailedPrecondition(f"upload {doc['_id']} is {pb.UploadStatus.Name(doc['status'])}; "
                                     "it takes no more bytes")
        start = doc["bytes_received"]
        if start == doc["size_bytes"] and first.offset == start and not first.data:
            # Every byte was committed but the service stopped before checking them: an empty message at the
            # end offset finishes the upload.
            return await self._complete(doc, None)
        if first.offset != start:
            raise InvalidArgument(f"offset {first.offset} does not follow the {start} bytes received; "
                                  f"resume at {start}")
        end = start
        # A stream that carries the whole file keeps it in memory too (completion needs it all in memory
        # anyway), so completing it does not read the staged copy back.
        whole = bytearray() if start == 0 else None

        async def pieces() -> AsyncIterator[bytes]:
            nonlocal end
            message: pb.UploadChunkRequest | None = first
            while message is not None:
                if message.file_id != doc["_id"]:
                    raise InvalidArgument("every message of a stream must name the same upload")
                if message.offset != end:
                    raise InvalidArgument(f"offset {message.offset} does not follow byte {end}")
                if len(message.data) > self.settings.max_chunk_bytes:
                    raise InvalidArgument(f"a chunk may carry at most {self.settings.max_chunk_bytes} bytes")
                if end + len(message.data) > doc["size_bytes"]:
                    raise InvalidArgument(f"the stream carries more than the declared {doc['size_bytes']} bytes")
                end += len(message.data)
                if whole is not None:
                    whole.extend(message.data)
                yield message.data
                message = await anext(aiter(requests), None)
            if cancelled():  # not a finished stream: drop the segment (write_segment aborts it)
                raise Aborted("the stream was cancelled by the client")

        # One segment per stream, named by its offset and a nonce: a stream that died at this offset may still
        # be cleaning up its own segment while the client resumes here.
        segment = f"{doc['_id']}/{start:015d}-{uuid.uuid4().hex[:8]}"
        written = await self.repo.write_segment(doc["_id"], segment, start, pieces())
        if written == 0:
            return doc
        # The commit: the upload's segment list names exactly the segments that make the file; a segment a
        # dying stream managed to close without committing is an orphan, ignored and removed on completion.
        moved = await self.repo.update_upload(
            doc["_id"], {"bytes_received": end, "status": pb.UPLOAD_STATUS_UPLOADING},
            where={"bytes_received": start, "status": {"$in": list(_OPEN)}}, push={"segments": segment},
        )
        if moved is None:  # another stream got there first: ours is not part of the file
            await self.repo.delete_segment(segment)
            raise Aborted("another stream wrote this part of the upload; read GetUpload and resume")
        if end < doc["size_bytes"]:
            return moved
        return await self._complete(moved, bytes(whole) if whole is not None else None)

    async def _complete(self, doc: Doc, received: bytes | None) -> Doc:
        data = received if received is not None else await self.repo.read_staged(doc.get("segments", []))
        try:
            if data is None or len(data) != doc["size_bytes"]:
                raise DataLoss(f"the stored parts of the upload do not add up to the declared {doc['size_bytes']} "
                               "bytes; upload it again")
            stored = await self._accept(doc, data)
        except DomainError as exc:
            await self.repo.delete_staged(doc["_id"])
            await self.repo.update_upload(doc["_id"], {"status": pb.UPLOAD_STATUS_FAILED, "error": exc.message})
            raise
        await self.repo.delete_staged(doc["_id"])
        updated = await self.repo.update_upload(doc["_id"], stored, where={"status": pb.UPLOAD_STATUS_UPLOADING})
        if updated is None:
            raise Aborted("the upload changed while it was being completed")
        return await self._queue_job(updated)

    async def _accept(self, doc: Doc, data: bytes) -> Doc:
        """Verify and sanitise complete content, store it by CID; the fields to set on the upload."""
        sha256 = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        if doc.get("declared_sha256") and sha256 != doc["sha256"]:
            raise DataLoss(f"the received bytes have SHA-256 {sha256}, not the declared {doc['sha256']}")
        fields: Doc = {"sha256": sha256, "status": pb.UPLOAD_STATUS_UPLOADED}
        if doc["file_type"] == JSON:
            actual = images.sniff(data)
            if actual != JSON:
                raise InvalidArgument(f"the content is {actual or 'not JSON'}, not the claimed {JSON}")
            _json_document(data)
            content = data
            strip = False
        else:
            checked = await asyncio.to_thread(images.validate_image, data, doc["file_type"], self.limits)
            content = checked.data
            fields.update(width=checked.width, height=checked.height, frames=checked.frames)
            strip = True
        cid = await asyncio.to_thread(cids.compute, content)
        await self.repo.put_blob(cid, content, doc["file_type"])
        fields.update(cid=cid, stored_bytes=len(content), stripped=strip)
        return fields

    async def _queue_job(self, doc: Doc) -> Doc:
        operations = doc.get("operations") or self._default_operations(doc)
        done = {pb.OPERATION_TYPE_VALIDATE, pb.OPERATION_TYPE_STRIP_METADATA}  # happened before storing
        job_id = str(uuid.uuid4())
        moment = now()
        ops = [{"type": op["type"], "params": op.get("params", {}),
                "status": pb.JOB_STATUS_SUCCEEDED if op["type"] in done else pb.JOB_STATUS_QUEUED,
                "variant_name": "", "error": ""} for op in operations]
        await self.repo.insert_job({
            "_id": job_id, "file_id": doc["_id"], "operations": ops, "status": pb.JOB_STATUS_QUEUED,
            "attempts": 0, "error": "", "created_at": moment, "started_at": None, "finished_at": None,
            "lease_until": None, "worker": None,
        })
        updated = await self.repo.update_upload(doc["_id"], {}, push={"job_ids": job_id})
        self._on_queued()
        return updated or doc

    def _default_operations(self, doc: Doc) -> list[Doc]:
        ops: list[Doc] = [{"type": pb.OPERATION_TYPE_VALIDATE, "params": {}}]
        if doc["file_type"] != JSON:
            ops.append({"type": pb.OPERATION_TYPE_STRIP_METADATA, "params": {}})
        ops.append({"type": pb.OPERATION_TYPE_PIN_IPFS, "params": {}})
        if doc["file_type"] != JSON:
            ops += [{"type": pb.OPERATION_TYPE_THUMBNAIL, "params": {"size": str(size)}}
                    for size in self.settings.thumbnail_sizes]
        return ops

    # --- reading and deleting ----------------------------------------------------------------------------

    async def _get(self, file_id: str) -> Doc:
        doc = await self.repo.get_upload(_uuid("file_id", file_id))
        if doc is None:
            raise NotFound(f"upload {file_id} does not exist")
        return doc

    async def get(self, file_id: str) -> Doc:
        return await self._get(file_id)

    async def page(self, request: pb.ListUploadsRequest) -> tuple[list[Doc], str]:
        if not request.user_id:
            raise InvalidArgument("user_id is required")
        statuses = list(request.statuses) or [s for s in pb.UploadStatus.values() if s != pb.UPLOAD_STATUS_DELETED]
        scope = pagination.scope_of(request.user_id, request.purpose, sorted(statuses))
        after = pagination.decode(request.page.page_token, "uploads", scope)
        size = pagination.page_size(request.page.page_size)
        rows = await self.repo.list_uploads(request.user_id, purpose=request.purpose or None, statuses=statuses,
                                            after=after, limit=size + 1)
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            token = pagination.encode("uploads", scope, pagination.Cursor(last["created_at"], uuid.UUID(last["_id"])))
        return rows, token

    async def delete(self, file_id: str, user_id: str, unpin: Callable[[str], Any]) -> Doc:
        doc = await self._get(file_id)
        if doc["user_id"] != user_id:
            raise PermissionDenied("the upload belongs to another user")
        if doc["status"] == pb.UPLOAD_STATUS_DELETED:
            return doc
        deleted = await self.repo.update_upload(file_id, {"status": pb.UPLOAD_STATUS_DELETED},
                                                where={"status": doc["status"]})
        if deleted is None:
            raise Aborted("the upload changed while it was being deleted; try again")
        await self.repo.delete_staged(file_id)
        for cid in [doc.get("cid"), *(variant["cid"] for variant in doc.get("variants", []))]:
            if cid and not await self.repo.count_live_references(cid, besides=file_id):
                await self.repo.delete_blob(cid)
                if cid == doc.get("cid") and doc.get("pinned"):
                    await unpin(cid)
        return deleted

    async def read(self, cid: str, offset: int, length: int) -> tuple[Stored, AsyncIterator[bytes]]:
        """Stored content by CID: its type and size, the resolved start (HTTP range rules: a negative offset
        counts from the end), and its bytes from there in GridFS-chunk-sized pieces."""
        try:
            canonical = cids.parse(cid)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        if length < 0:
            raise InvalidArgument("length must not be negative")
        reader = await self.repo.open_blob(canonical)
        if reader is None:
            raise NotFound(f"no content is stored under {canonical}")
        size = int(reader.length)
        start = max(size + offset, 0) if offset < 0 else offset
        end = size if length == 0 else min(size, start + length)
        stored = Stored(content_type=str((reader.metadata or {}).get("content_type", "application/octet-stream")),
                        size=size, start=start)

        async def pieces() -> AsyncIterator[bytes]:
            if start >= end:
                return
            reader.seek(start)
            position = start
            while position < end:
                piece: bytes = await reader.read(min(self.settings.gridfs_chunk_bytes, end - position))
                if not piece:
                    raise DataLoss(f"the stored content of {canonical} ends before its recorded size")
                position += len(piece)
                yield piece

        return stored, pieces()

    async def jobs(self, file_id: str) -> list[Doc]:
        await self._get(file_id)
        return await self.repo.list_jobs(file_id)

    async def job(self, job_id: str) -> Doc:
        doc = await self.repo.get_job(_uuid("job_id", job_id))
        if doc is None:
            raise NotFound(f"processing job {job_id} does not exist")
        return doc

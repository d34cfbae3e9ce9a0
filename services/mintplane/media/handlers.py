"""gRPC servicer of the media service: thin, it translates messages and calls the upload rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from mintplane.api.common.v1 import common_pb2
from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.api.media.v1 import media_pb2_grpc
from mintplane.common.log import get_logger
from mintplane.media import messages
from mintplane.media.ipfs import IpfsClient
from mintplane.media.uploads import Uploads

Context = Any  # grpc.aio.ServicerContext; errors travel as DomainError
log = get_logger(__name__)


class MediaServicer(media_pb2_grpc.MediaServiceServicer):
    def __init__(self, uploads: Uploads, ipfs: IpfsClient) -> None:
        self._uploads = uploads
        self._ipfs = ipfs
        self._public_url = uploads.settings.media_public_url

    def _upload(self, doc: dict[str, Any]) -> pb.Upload:
        return messages.upload(doc, self._public_url)

    async def CreateUpload(self, request: pb.CreateUploadRequest, context: Context) -> pb.CreateUploadResponse:
        doc = await self._uploads.create(request)
        log.info("upload created", file_id=doc["_id"], purpose=doc["purpose"], size_bytes=doc["size_bytes"])
        return pb.CreateUploadResponse(upload=self._upload(doc),
                                       max_chunk_bytes=self._uploads.settings.max_chunk_bytes)

    async def UploadChunk(self, request_iterator: AsyncIterator[pb.UploadChunkRequest],
                          context: Context) -> pb.UploadChunkResponse:
        doc = await self._uploads.receive(request_iterator, context.cancelled)
        if doc.get("cid"):
            log.info("upload stored", file_id=doc["_id"], cid=doc["cid"], stored_bytes=doc.get("stored_bytes"))
        return pb.UploadChunkResponse(upload=self._upload(doc))

    async def UploadMedia(self, request: pb.UploadMediaRequest, context: Context) -> pb.UploadMediaResponse:
        doc = await self._uploads.upload_small(request)
        log.info("upload stored", file_id=doc["_id"], cid=doc["cid"], stored_bytes=doc.get("stored_bytes"))
        return pb.UploadMediaResponse(upload=self._upload(doc))

    async def GetUpload(self, request: pb.GetUploadRequest, context: Context) -> pb.GetUploadResponse:
        return pb.GetUploadResponse(upload=self._upload(await self._uploads.get(request.file_id)))

    async def ListUploads(self, request: pb.ListUploadsRequest, context: Context) -> pb.ListUploadsResponse:
        rows, token = await self._uploads.page(request)
        return pb.ListUploadsResponse(uploads=[self._upload(row) for row in rows],
                                      page=common_pb2.PageResponse(next_page_token=token))

    async def DeleteUpload(self, request: pb.DeleteUploadRequest, context: Context) -> pb.DeleteUploadResponse:
        doc = await self._uploads.delete(request.file_id, request.user_id, self._ipfs.unpin)
        log.info("upload deleted", file_id=doc["_id"])
        return pb.DeleteUploadResponse(upload=self._upload(doc))

    async def GetProcessingJob(self, request: pb.GetProcessingJobRequest,
                               context: Context) -> pb.GetProcessingJobResponse:
        return pb.GetProcessingJobResponse(job=messages.job(await self._uploads.job(request.job_id)))

    async def ListProcessingJobs(self, request: pb.ListProcessingJobsRequest,
                                 context: Context) -> pb.ListProcessingJobsResponse:
        jobs = await self._uploads.jobs(request.file_id)
        return pb.ListProcessingJobsResponse(jobs=[messages.job(job) for job in jobs])

    async def ReadMedia(self, request: pb.ReadMediaRequest, context: Context) -> AsyncIterator[pb.ReadMediaResponse]:
        stored, pieces = await self._uploads.read(request.cid, request.offset, request.length)
        yield pb.ReadMediaResponse(content_type=stored.content_type, size_bytes=stored.size, offset=stored.start)
        async for piece in pieces:
            yield pb.ReadMediaResponse(data=piece)

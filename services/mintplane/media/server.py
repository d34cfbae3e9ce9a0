"""Builds the media gRPC server: the upload rules over MongoDB/GridFS, the IPFS client, and the processing
job runner as a background task of the same process (stopped on shutdown; a job it leaves half done is
resumed by whichever runner claims it after its lease)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from mintplane.api.media.v1 import media_pb2, media_pb2_grpc
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings
from mintplane.media.handlers import MediaServicer
from mintplane.media.ipfs import IpfsClient
from mintplane.media.processing import JobRunner
from mintplane.media.repository import MediaRepository
from mintplane.media.settings import MediaSettings
from mintplane.media.uploads import Uploads

NEEDS = Needs(mongo=True)
SERVICE_NAME = media_pb2.DESCRIPTOR.services_by_name["MediaService"].full_name


def ipfs_client(settings: MediaSettings) -> IpfsClient:
    auth = settings.ipfs_api_authorization
    return IpfsClient(settings.ipfs_api_url, authorization=auth.get_secret_value() if auth else None,
                      timeout=settings.ipfs_timeout_seconds)


@dataclass
class Media:
    """The service's parts, assembled once; in-process tests reach the runner and repository through it."""

    settings: MediaSettings
    repo: MediaRepository
    ipfs: IpfsClient
    runner: JobRunner
    uploads: Uploads
    servicer: MediaServicer


async def assemble(settings: ServiceSettings, resources: Resources) -> Media:
    own = settings if isinstance(settings, MediaSettings) else MediaSettings(**settings.model_dump())
    repo = MediaRepository(resources.mongo, own.media_database, chunk_bytes=own.gridfs_chunk_bytes)
    await repo.ensure_indexes()
    ipfs = ipfs_client(own)
    resources.add_closer(ipfs.close)
    runner = JobRunner(repo, ipfs, own)
    uploads = Uploads(repo, own, on_queued=runner.wake)
    return Media(own, repo, ipfs, runner, uploads, MediaServicer(uploads, ipfs))


def serve(media: Media, resources: Resources, *, run_jobs: bool = True) -> BuiltServer:
    if run_jobs:
        task = asyncio.create_task(media.runner.run_forever(), name="media-jobs")

        async def stop_jobs() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        resources.add_closer(stop_jobs)
    return build_grpc_server(
        media.settings,
        [lambda server: media_pb2_grpc.add_MediaServiceServicer_to_server(media.servicer, server)],
        [SERVICE_NAME],
    )


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    return serve(await assemble(settings, resources), resources)

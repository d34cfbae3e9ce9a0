"""Settings of the media service; every field is also an env var (MINTPLANE_...).

Limits are per purpose because an avatar and a token's artwork have different honest sizes; everything a
hostile upload could inflate (bytes, pixels, frames) has a cap here.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings

MiB = 1024 * 1024


class MediaSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["media"]
    # MongoDB database holding media_uploads, processing_jobs and the GridFS buckets (MINTPLANE_MEDIA_DATABASE).
    media_database: str = "media"

    # The IPFS node's RPC API (kubo's /api/v0; locally the dev stack's kubo). In a cluster any endpoint that
    # speaks it: a kubo StatefulSet, or a hosted RPC behind an auth header from a Secret
    # (MINTPLANE_IPFS_API_URL, MINTPLANE_IPFS_API_AUTHORIZATION, e.g. "Bearer <token>" or "Basic <b64>").
    ipfs_api_url: str = "http://127.0.0.1:5001"
    ipfs_api_authorization: SecretStr | None = None
    ipfs_timeout_seconds: float = Field(default=300.0, gt=0)

    # Where the gateway serves GET /media/{cid}; upload and variant URLs are built from it.
    media_public_url: str = "http://127.0.0.1:8081/media"

    # Byte limits per purpose (MINTPLANE_MAX_<PURPOSE>_BYTES) and the largest UploadChunk message.
    max_avatar_bytes: int = Field(default=5 * MiB, ge=1024)
    max_banner_bytes: int = Field(default=10 * MiB, ge=1024)
    max_collection_image_bytes: int = Field(default=10 * MiB, ge=1024)
    max_token_media_bytes: int = Field(default=64 * MiB, ge=1024)
    max_metadata_bytes: int = Field(default=1 * MiB, ge=1024)
    max_chunk_bytes: int = Field(default=1 * MiB, ge=16 * 1024, le=8 * MiB)
    # UploadMedia carries the whole file in one message; keep it under gRPC's default 4 MiB message limit.
    max_single_call_bytes: int = Field(default=3 * MiB, ge=1024)

    # Decoded-size caps: a few KB of PNG can claim gigapixels (decompression bombs).
    max_image_pixels: int = Field(default=64_000_000, ge=1)  # per frame
    max_image_side: int = Field(default=16_384, ge=1)
    max_total_pixels: int = Field(default=256_000_000, ge=1)  # over all frames of an animation
    max_frames: int = Field(default=1_000, ge=1)

    # Thumbnails (WebP) made by processing jobs: the longest side of each, never upscaled.
    thumbnail_sizes: list[int] = Field(default_factory=lambda: [128, 256, 512])
    thumbnail_quality: int = Field(default=80, ge=1, le=100)

    # Processing jobs: how often an idle worker looks for queued jobs, how long a claim holds before another
    # worker may take the job over (a crashed worker's job resumes), and how often a job is retried.
    job_poll_seconds: float = Field(default=1.0, gt=0)
    job_lease_seconds: float = Field(default=300.0, gt=0)
    # An unreachable IPFS node re-queues the job after 2, 4, 8... seconds (capped): about ten minutes of
    # outage are waited out before the upload fails.
    job_max_attempts: int = Field(default=12, ge=1)
    job_retry_max_seconds: float = Field(default=60.0, gt=0)
    # GridFS chunk size of stored blobs: larger chunks mean fewer documents per file (FerretDB is faster so).
    gridfs_chunk_bytes: int = Field(default=1 * MiB, ge=64 * 1024, le=8 * MiB)

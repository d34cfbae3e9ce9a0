"""Upload rules that need no database: limits per purpose, type allow-lists, names, operations, progress."""

from __future__ import annotations

from typing import Any, cast

import pytest

from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.common.errors import InvalidArgument
from mintplane.media import messages
from mintplane.media.repository import MediaRepository
from mintplane.media.settings import MediaSettings
from mintplane.media.uploads import Uploads, clean_file_name

pytestmark = pytest.mark.unit


class NoRepository:
    """Refusals must happen before any storage call: every attribute access fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the repository was touched ({name}) for a request that should be refused")


def _uploads() -> Uploads:
    return Uploads(cast(MediaRepository, NoRepository()), MediaSettings(max_avatar_bytes=10_000))


def _create(**fields: Any) -> pb.CreateUploadRequest:
    base: dict[str, Any] = {"user_id": "u", "file_name": "a.png", "file_type": "image/png", "size_bytes": 100,
                            "purpose": pb.MEDIA_PURPOSE_AVATAR}
    return pb.CreateUploadRequest(**{**base, **fields})


@pytest.mark.parametrize(("fields", "reason"), [
    ({"size_bytes": 10_001}, "at most 10000"),
    ({"size_bytes": 0}, "positive"),
    ({"file_type": "image/svg+xml"}, "SVG is not accepted"),
    ({"file_type": "text/html"}, "not allowed for MEDIA_PURPOSE_AVATAR"),
    ({"file_type": "application/json"}, "not allowed"),
    ({"purpose": pb.MEDIA_PURPOSE_UNSPECIFIED}, "purpose is required"),
    ({"user_id": ""}, "user_id is required"),
    ({"sha256": "abc"}, "64 hex"),
    ({"operations": [pb.OperationSpec(type=pb.OPERATION_TYPE_TRANSCODE)]}, "not supported"),
    ({"operations": [pb.OperationSpec(type=pb.OPERATION_TYPE_THUMBNAIL, params={"size": "5000"})]}, "size"),
])
async def test_create_refuses_before_touching_storage(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidArgument, match=reason):
        await _uploads().create(_create(**fields))


async def test_one_call_uploads_are_capped_below_the_grpc_message_limit() -> None:
    uploads = _uploads()
    request = pb.UploadMediaRequest(user_id="u", file_type="image/png", purpose=pb.MEDIA_PURPOSE_TOKEN_MEDIA,
                                    data=b"\x00" * (uploads.settings.max_single_call_bytes + 1))
    with pytest.raises(InvalidArgument, match="CreateUpload and UploadChunk"):
        await uploads.upload_small(request)


def test_metadata_takes_json_and_images_take_the_four_raster_types() -> None:
    rules = _uploads()._rules
    assert rules[pb.MEDIA_PURPOSE_METADATA].types == ("application/json",)
    for purpose in (pb.MEDIA_PURPOSE_AVATAR, pb.MEDIA_PURPOSE_TOKEN_MEDIA):
        assert rules[purpose].types == ("image/png", "image/jpeg", "image/gif", "image/webp")
    assert rules[pb.MEDIA_PURPOSE_TOKEN_MEDIA].max_bytes > 174 * 256 * 1024  # room for a two-level DAG


def test_file_names_lose_paths_and_control_characters() -> None:
    assert clean_file_name("../../etc/passwd") == "passwd"
    assert clean_file_name("C:\\Users\\me\\art\x00work\u202e.png") == "artwork.png"
    assert clean_file_name("   ") == "file"
    assert len(clean_file_name("x" * 1000)) == 255


def test_progress_counts_finished_operations() -> None:
    ops = [{"status": pb.JOB_STATUS_SUCCEEDED}, {"status": pb.JOB_STATUS_RUNNING},
           {"status": pb.JOB_STATUS_SKIPPED}, {"status": pb.JOB_STATUS_QUEUED}]
    assert messages.progress(ops) == 50
    assert messages.progress([]) == 100

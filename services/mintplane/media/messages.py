"""MongoDB documents -> response messages (the wire conventions live here, not in the repository)."""

from __future__ import annotations

from typing import Any

from mintplane.api.media.v1 import media_pb2 as pb
from mintplane.common.timestamps import timestamp

Doc = dict[str, Any]
FINISHED = (pb.JOB_STATUS_SUCCEEDED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_SKIPPED)


def blob_url(public_url: str, cid: str) -> str:
    return f"{public_url.rstrip('/')}/{cid}"


def upload(doc: Doc, public_url: str) -> pb.Upload:
    cid = doc.get("cid") or ""
    pinned = bool(doc.get("pinned"))
    return pb.Upload(
        file_id=doc["_id"], user_id=doc["user_id"], file_name=doc["file_name"], file_type=doc["file_type"],
        purpose=doc["purpose"], status=doc["status"], size_bytes=doc["size_bytes"],
        bytes_received=doc.get("bytes_received", 0), sha256=doc.get("sha256") or "",
        ipfs_cid=cid if pinned else "", ipfs_uri=f"ipfs://{cid}" if pinned else "",
        url=blob_url(public_url, cid) if cid else "",
        width=doc.get("width", 0), height=doc.get("height", 0), duration_ms=doc.get("duration_ms", 0),
        variants=[
            pb.MediaVariant(name=v["name"], content_type=v["content_type"], url=blob_url(public_url, v["cid"]),
                            width=v["width"], height=v["height"], size_bytes=v["size_bytes"])
            for v in doc.get("variants", [])
        ],
        job_ids=doc.get("job_ids", []), error=doc.get("error") or "",
        created_at=timestamp(doc.get("created_at")), updated_at=timestamp(doc.get("updated_at")),
    )


def progress(operations: list[Doc]) -> int:
    if not operations:
        return 100
    return 100 * sum(op["status"] in FINISHED for op in operations) // len(operations)


def job(doc: Doc) -> pb.ProcessingJob:
    return pb.ProcessingJob(
        job_id=doc["_id"], file_id=doc["file_id"], status=doc["status"], attempts=doc.get("attempts", 0),
        error=doc.get("error") or "",
        operations=[
            pb.OperationResult(spec=pb.OperationSpec(type=op["type"], params=op.get("params", {})),
                               status=op["status"], variant_name=op.get("variant_name") or "",
                               error=op.get("error") or "")
            for op in doc["operations"]
        ],
        created_at=timestamp(doc.get("created_at")), started_at=timestamp(doc.get("started_at")),
        finished_at=timestamp(doc.get("finished_at")), progress_percent=progress(doc["operations"]),
    )

"""Instants as google.protobuf.Timestamp, the one conversion the services' message builders share."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(value: datetime | None) -> Timestamp | None:
    """The instant as a Timestamp; None for an unknown instant, so the field stays unset (common.v1)."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp

"""Rows of the `users` schema to API messages, and the API's enums to the strings stored in the rows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from mintplane.api.user.v1 import user_pb2
from mintplane.user.repository import Follow

STATUS_TO_DB: dict[int, str] = {
    user_pb2.USER_STATUS_ACTIVE: "active",
    user_pb2.USER_STATUS_SUSPENDED: "suspended",
    user_pb2.USER_STATUS_DELETED: "deleted",
}
STATUS_FROM_DB = {v: k for k, v in STATUS_TO_DB.items()}
THEME_TO_DB: dict[int, str] = {
    user_pb2.THEME_SYSTEM: "system", user_pb2.THEME_LIGHT: "light", user_pb2.THEME_DARK: "dark",
}
THEME_FROM_DB = {v: k for k, v in THEME_TO_DB.items()}
PRIVACY_TO_DB: dict[int, str] = {
    user_pb2.PRIVACY_LEVEL_PUBLIC: "public",
    user_pb2.PRIVACY_LEVEL_FOLLOWERS: "followers",
    user_pb2.PRIVACY_LEVEL_PRIVATE: "private",
}
PRIVACY_FROM_DB = {v: k for k, v in PRIVACY_TO_DB.items()}


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def decimal_text(value: Decimal) -> str:
    """Plain base-10 text (never exponent notation), as common.proto wants amounts."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def user(row: Any) -> user_pb2.User:
    return user_pb2.User(
        user_id=str(row["user_id"]),
        status=STATUS_FROM_DB.get(row["status"], user_pb2.USER_STATUS_UNSPECIFIED),  # type: ignore[arg-type]
        profile=user_pb2.Profile(
            username=row["username"] or "",
            display_name=row["display_name"] or "",
            avatar_url=row["avatar_url"] or "",
            banner_url=row["banner_url"] or "",
            bio=row["bio"] or "",
            locale=row["locale"] or "",
            timezone=row["timezone"] or "",
            socials=row["socials_json"] or {},
            updated_at=timestamp(row["profile_updated_at"]),
        ),
        created_at=timestamp(row["created_at"]),
        updated_at=timestamp(row["updated_at"]),
    )


def preferences(row: Any) -> user_pb2.Preferences:
    return user_pb2.Preferences(
        email_notifications=row["email_notifications"],
        push_notifications=row["push_notifications"],
        marketing_emails=row["marketing_emails"],
        language=row["language"] or "",
        currency=row["currency"] or "",
        theme=THEME_FROM_DB.get(row["theme"], user_pb2.THEME_SYSTEM),  # type: ignore[arg-type]
        privacy_level=PRIVACY_FROM_DB.get(row["privacy_level"], user_pb2.PRIVACY_LEVEL_PUBLIC),  # type: ignore[arg-type]
        show_activity=row["show_activity"],
        updated_at=timestamp(row["updated_at"]),
    )


def stats(row: Any) -> user_pb2.UserStats:
    return user_pb2.UserStats(
        user_id=str(row["user_id"]),
        collections_count=row["collections_count"],
        items_count=row["items_count"],
        listings_count=row["listings_count"],
        sales_count=row["sales_count"],
        purchases_count=row["purchases_count"],
        volume_sold=decimal_text(row["volume_sold"]),
        volume_purchased=decimal_text(row["volume_purchased"]),
        followers_count=row["followers_count"],
        following_count=row["following_count"],
        updated_at=timestamp(row["updated_at"]),
    )


def follow_edge(follow: Follow) -> user_pb2.FollowEdge:
    return user_pb2.FollowEdge(
        follower_id=str(follow.follower_id),
        following_id=str(follow.following_id),
        created_at=timestamp(follow.created_at),
    )

"""The motor client for the MongoDB-backed services (media, indexer). Locally that is FerretDB 1.24, so
services stay within what both implement: no change streams, transactions, $lookup/$facet, TTL or partial
indexes (DESIGN section 5)."""

from __future__ import annotations

from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient

from mintplane.common.settings import InfraSettings


def create_client(settings: InfraSettings, *, app_name: str = "mintplane") -> Any:
    return AsyncIOMotorClient(
        settings.mongo_url.get_secret_value(), appname=app_name, serverSelectionTimeoutMS=5000, tz_aware=True
    )

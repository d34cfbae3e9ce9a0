"""The asyncpg pool every PostgreSQL-backed service uses (one per process)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from mintplane.common.settings import InfraSettings


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    # jsonb/json columns come back as Python objects and accept them on the way in.
    for typename in ("jsonb", "json"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(settings: InfraSettings, *, application_name: str = "mintplane") -> asyncpg.Pool[Any]:
    pool = await asyncpg.create_pool(
        settings.pg_dsn.get_secret_value(),
        min_size=settings.pg_pool_min,
        max_size=settings.pg_pool_max,
        init=_init_connection,
        server_settings={"application_name": application_name},
    )
    assert pool is not None
    return pool

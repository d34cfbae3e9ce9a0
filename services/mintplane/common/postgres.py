"""The asyncpg pool every PostgreSQL-backed service uses (one per process)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from mintplane.common.settings import InfraSettings


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + json.dumps(value, separators=(",", ":")).encode()


def _decode_jsonb(data: bytes) -> Any:
    return json.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    # json/jsonb columns take and return Python objects. jsonb uses the binary format (a version byte,
    # then the text) so COPY, the fastest way in, accepts it too.
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


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

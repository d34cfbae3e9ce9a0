"""Keyset pages over sort orders an index serves as one or more ordered *segments*.

A sort like "rarest first, unranked last" is not one btree order: ranked tokens come from a range scan
of ``(collection_id, rarity_rank, ...)`` and the unranked ones (rank NULL) from another. Each segment is
one index-order range scan with a unique tiebreaker as its last column, so keys never tie and a page
continues with a plain row comparison ``(a, b, c) > ($1, $2, $3)`` the btree seeks to. Segments are read
in order until the page is full: typically one statement, two at a segment boundary. Never OFFSET: a
page costs the same at any depth, and rows added or moved elsewhere in the order cannot make a page skip
or repeat a row whose own key did not change.

The page token (:mod:`mintplane.common.pagination`) holds ``[segment, key values, carried]``: the key of
the last row served and whatever the first page wants later pages to reuse (the exact total, counted
once), bound to a fingerprint of the request's filters.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mintplane.common.errors import InvalidArgument
from mintplane.common.pagination import decode_key_token, encode_key_token

_FOREIGN = "page.page_token is not a page token issued by this service"
_CASTS = {"int": "bigint", "text": "text", "uuid": "uuid", "ts": "timestamptz", "numeric": "numeric"}


@dataclass(frozen=True)
class Key:
    """One sort column: its SQL expression and how its value travels in a page token."""

    sql: str
    kind: str  # int | text | uuid | ts | numeric
    nulls_last: bool = False  # descending only: match an index declared DESC NULLS LAST


@dataclass(frozen=True)
class Segment:
    """One index-order scan: rows matching `where`, ordered by `keys` (all ascending or all descending)."""

    keys: tuple[Key, ...]
    descending: bool = False
    where: str = ""


@dataclass(frozen=True)
class Cursor:
    segment: int
    values: list[Any]
    carried: Any


class Params:
    """Positional parameters of one statement ($1, $2, ...)."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def copy(self) -> Params:
        clone = Params()
        clone.args = list(self.args)
        return clone


def _encode_value(value: Any, kind: str) -> Any:
    if kind == "int":
        return int(value)
    if kind == "ts":
        assert isinstance(value, datetime)
        return value.isoformat()
    return str(value)


def _decode_value(value: Any, kind: str) -> Any:
    try:
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(value)
            return value
        if not isinstance(value, str):
            raise ValueError(value)
        if kind == "uuid":
            return uuid.UUID(value)
        if kind == "ts":
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError(value)
            return parsed
        if kind == "numeric":
            return Decimal(value)
        return value
    except (ValueError, InvalidOperation):
        raise InvalidArgument(_FOREIGN) from None


def decode_cursor(token: str, fingerprint: Any, segments: Sequence[Segment]) -> Cursor | None:
    """The cursor of `token` for this request; None for the first page; INVALID_ARGUMENT for a foreign one."""
    raw = decode_key_token(token, fingerprint, 3)
    if raw is None:
        return None
    segment, values, carried = raw
    if isinstance(segment, bool) or not isinstance(segment, int) or not 0 <= segment < len(segments):
        raise InvalidArgument(_FOREIGN)
    keys = segments[segment].keys
    if not isinstance(values, list) or len(values) != len(keys):
        raise InvalidArgument(_FOREIGN)
    return Cursor(segment, [_decode_value(v, k.kind) for v, k in zip(values, keys, strict=True)], carried)


def encode_cursor(segment: int, row: Mapping[str, Any], segments: Sequence[Segment], fingerprint: Any,
                  carried: Any) -> str:
    keys = segments[segment].keys
    values = [_encode_value(row[f"_k{i}"], k.kind) for i, k in enumerate(keys)]
    return encode_key_token([segment, values, carried], fingerprint)


Fetch = Callable[..., Awaitable[Sequence[Any]]]


async def page(fetch: Fetch, *, select: str, source: str, where: Sequence[str], params: Params,
               segments: Sequence[Segment], cursor: Cursor | None, limit: int, cte: str = "",
               extra_column: str = "") -> tuple[list[Any], int | None]:
    """Up to `limit` rows after `cursor`, and the segment of the last row when more rows follow.

    `select` is the column list, `source` the FROM clause, `where` the request's filters (sharing `params`),
    `cte` an optional WITH list they may read. Rows carry their sort key as ``_k0``, ``_k1``, ... for
    :func:`encode_cursor`; `extra_column` is one more select expression (the caller reads it from the first row).
    """
    rows: list[tuple[int, Any]] = []
    first = cursor.segment if cursor is not None else 0
    for index in range(first, len(segments)):
        segment = segments[index]
        p = params.copy()
        clauses = list(where)
        if segment.where:
            clauses.append(segment.where)
        if cursor is not None and index == cursor.segment:
            columns = ", ".join(k.sql for k in segment.keys)
            bound = ", ".join(f"{p(v)}::{_CASTS[k.kind]}" for v, k in zip(cursor.values, segment.keys, strict=True))
            clauses.append(f"({columns}) {'<' if segment.descending else '>'} ({bound})")
        order = ", ".join(k.sql + (" DESC" if segment.descending else "")
                          + (" NULLS LAST" if segment.descending and k.nulls_last else "") for k in segment.keys)
        keys = ", ".join(f"{k.sql} AS _k{i}" for i, k in enumerate(segment.keys))
        wanted = limit + 1 - len(rows)
        extra = f", {extra_column}" if extra_column else ""  # in every statement: they share the parameters
        statement = (f"{'WITH ' + cte + ' ' if cte else ''}SELECT {select}{extra}, {keys} FROM {source} "  # noqa: S608
                     f"WHERE {' AND '.join(clauses) or 'TRUE'} ORDER BY {order} LIMIT {p(wanted)}")
        rows.extend((index, row) for row in await fetch(statement, *p.args))
        if len(rows) > limit:
            break
    more = len(rows) > limit
    served = rows[:limit]
    return [row for _, row in served], (served[-1][0] if more and served else None)

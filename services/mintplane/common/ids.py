"""Request ids: UUIDs in, canonical lowercase strings out, with errors that name the field.

asyncpg would reject a malformed id too, but as an unhandled DataError (INTERNAL to the client). Parsing
at the edge turns it into INVALID_ARGUMENT naming the field, and dedupes batch requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from mintplane.common.errors import InvalidArgument, Unauthenticated

MAX_BATCH = 100


def parse(field: str, value: str) -> uuid.UUID:
    if not value:
        raise InvalidArgument(f"{field} is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{field} must be a UUID, got {value[:64]!r}") from None


def parse_many(field: str, values: Iterable[str], *, limit: int = MAX_BATCH) -> list[uuid.UUID]:
    """Distinct ids in first-seen order; INVALID_ARGUMENT above `limit` distinct ids."""
    seen: dict[uuid.UUID, None] = {}
    for value in values:
        seen[parse(field, value)] = None
        if len(seen) > limit:
            raise InvalidArgument(f"{field} may hold at most {limit} ids")
    return list(seen)


def actor(value: str, field: str = "actor_user_id") -> uuid.UUID:
    """The signed-in user a call acts for. Missing means the caller forgot to authenticate."""
    if not value:
        raise Unauthenticated(f"{field} is required: this call acts on behalf of a signed-in user")
    return parse(field, value)

"""Trait, numeric and owner filters of ListTokens and ListTraits: validated, then resolved to ids once.

Filters name traits and values as people type them; the catalog matches them by ``traits.normalized_name``
and ``trait_values.normalized_value`` through the same :func:`mintplane.catalog.traits.normalize_text`
ingestion stores them with, so "Blue Sky" finds "blue  sky". One small statement resolves every filter of a
request to trait and value ids (through ``ux_traits_collection_id_normalized_name`` and
``ux_trait_values_trait_id_normalized_value``); the token queries then probe the link table by id. A
filter naming an unknown trait or value matches nothing, which the callers answer without a scan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.catalog.traits import normalize_text
from mintplane.common.errors import InvalidArgument

MAX_TRAIT_FILTERS = 20
MAX_FILTER_VALUES = 100
MAX_OWNER_ADDRESSES = 50
MAX_QUERY_CHARS = 200
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

_RESOLVE = """
SELECT tr.id AS trait_id, tr.normalized_name, v.id AS value_id, v.normalized_value
  FROM catalog.traits tr
  LEFT JOIN catalog.trait_values v ON v.trait_id = tr.id AND v.normalized_value = ANY($3::text[])
 WHERE tr.collection_id = $1 AND tr.normalized_name = ANY($2::text[])
"""


@dataclass(frozen=True)
class ValueFilter:
    """Tokens having any of `values` for the trait `name` (OR within one trait)."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class RangeFilter:
    """Tokens whose value of the numeric trait `name` lies in [low, high] (None: open)."""

    name: str
    low: Decimal | None
    high: Decimal | None


@dataclass
class Resolved:
    """The filters as ids. A trait id is None when the collection lacks the trait; a value filter's id list
    is empty when it lacks every value named. Such a filter matches no token."""

    values: list[tuple[UUID | None, list[UUID]]] = field(default_factory=list)  # (trait id, accepted value ids)
    ranges: list[tuple[UUID | None, Decimal | None, Decimal | None]] = field(default_factory=list)

    @property
    def impossible(self) -> bool:
        return (any(t is None or not ids for t, ids in self.values)
                or any(t is None for t, _, _ in self.ranges))


def address(value: str, field_name: str) -> str:
    if not _ADDRESS.match(value):
        raise InvalidArgument(f"{field_name} must be a 0x-prefixed 20-byte hex address, got {value[:50]!r}")
    return value.lower()


def owners(single: str, many: Sequence[str]) -> list[str]:
    """owner_address and owner_addresses as one sorted set of lowercase addresses (empty: no owner filter)."""
    if len(many) > MAX_OWNER_ADDRESSES:
        raise InvalidArgument(f"owner_addresses holds {len(many)} addresses; at most {MAX_OWNER_ADDRESSES}")
    found = {address(a, f"owner_addresses[{i}]") for i, a in enumerate(many)}
    if single:
        found.add(address(single, "owner_address"))
    return sorted(found)


def _bound(text: str, where: str) -> Decimal | None:
    if not text.strip():
        return None
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidArgument(f"{where} must be a decimal number, got {text[:50]!r}") from None
    if not number.is_finite():
        raise InvalidArgument(f"{where} must be a finite decimal number")
    return number


def parse(trait_filters: Sequence[pb.TraitFilter],
          numeric_filters: Sequence[pb.NumericTraitFilter]) -> tuple[list[ValueFilter], list[RangeFilter]]:
    """Normalised filters; INVALID_ARGUMENT for empty names, no values, bad or crossed bounds, too many."""
    if len(trait_filters) + len(numeric_filters) > MAX_TRAIT_FILTERS:
        raise InvalidArgument(f"at most {MAX_TRAIT_FILTERS} trait and numeric filters together")
    by_name: dict[str, set[str]] = {}
    for i, f in enumerate(trait_filters):
        name = normalize_text(f.name)
        if not name:
            raise InvalidArgument(f"trait_filters[{i}].name is required")
        values = {normalize_text(v) for v in f.values} - {""}
        if not values:
            raise InvalidArgument(f"trait_filters[{i}] ({f.name!r}) needs at least one non-empty value")
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidArgument(f"trait_filters[{i}] has more than {MAX_FILTER_VALUES} values")
        # two filters on one trait: a token must satisfy both, so only the values they share remain
        by_name[name] = by_name[name] & values if name in by_name else values
    ranges = []
    for i, n in enumerate(numeric_filters):
        name = normalize_text(n.name)
        if not name:
            raise InvalidArgument(f"numeric_filters[{i}].name is required")
        low, high = _bound(n.min, f"numeric_filters[{i}].min"), _bound(n.max, f"numeric_filters[{i}].max")
        if low is None and high is None:
            raise InvalidArgument(f"numeric_filters[{i}] ({n.name!r}) needs a min, a max or both")
        if low is not None and high is not None and low > high:
            raise InvalidArgument(f"numeric_filters[{i}] ({n.name!r}): min {low} is greater than max {high}")
        ranges.append(RangeFilter(name, low, high))
    value_filters = [ValueFilter(name, tuple(sorted(v))) for name, v in sorted(by_name.items())]
    return value_filters, sorted(ranges, key=lambda r: (r.name, str(r.low), str(r.high)))


def fingerprint(values: Sequence[ValueFilter], ranges: Sequence[RangeFilter]) -> list[Any]:
    """The filters as plain data, for page-token fingerprints."""
    return [[f.name, list(f.values)] for f in values] + [[r.name, str(r.low), str(r.high)] for r in ranges]


async def resolve(fetch: Any, collection_id: UUID, values: Sequence[ValueFilter],
                  ranges: Sequence[RangeFilter]) -> Resolved:
    """Trait and value ids of the filters, in one statement (none when there are no filters)."""
    resolved = Resolved()
    if not values and not ranges:
        return resolved
    names = sorted({f.name for f in values} | {r.name for r in ranges})
    wanted = sorted({v for f in values for v in f.values})
    rows = await fetch(_RESOLVE, collection_id, names, wanted)
    traits: dict[str, UUID] = {}
    found: dict[tuple[str, str], UUID] = {}
    for row in rows:
        traits[row["normalized_name"]] = row["trait_id"]
        if row["value_id"] is not None:
            found[(row["normalized_name"], row["normalized_value"])] = row["value_id"]
    for f in values:
        ids = sorted(found[(f.name, v)] for v in f.values if (f.name, v) in found)
        resolved.values.append((traits.get(f.name), ids))
    resolved.ranges = [(traits.get(r.name), r.low, r.high) for r in ranges]
    return resolved


def like_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` as a literal substring (%, _ and \\ escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def query_text(text: str) -> str:
    stripped = text.strip()
    if len(stripped) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"query is longer than {MAX_QUERY_CHARS} characters")
    return stripped


def value_condition(p: Any, trait_id: UUID, value_ids: Sequence[UUID]) -> str:
    """The token has one of the values: a primary-key probe of token_trait_links (token, trait, value)."""
    return (f"EXISTS (SELECT 1 FROM catalog.token_trait_links k WHERE k.token_id = t.id "  # noqa: S608
            f"AND k.trait_id = {p(trait_id)}::uuid AND k.trait_value_id = ANY({p(list(value_ids))}::uuid[]))")


def range_condition(p: Any, trait_id: UUID, low: Decimal | None, high: Decimal | None) -> str:
    """The token's value of a numeric trait lies in the inclusive range (an open bound is left out)."""
    bounds = "".join(f" AND v.value_number {op} {p(b)}::numeric" for op, b in ((">=", low), ("<=", high))
                     if b is not None)
    return (f"EXISTS (SELECT 1 FROM catalog.token_trait_links k JOIN catalog.trait_values v "  # noqa: S608
            f"ON v.id = k.trait_value_id WHERE k.token_id = t.id AND k.trait_id = {p(trait_id)}::uuid{bounds})")


def base_conditions(p: Any, *, collection_id: UUID | None, owners: Sequence[str], include_burned: bool,
                    listed_only: bool) -> list[str]:
    """Filters on the token row itself (and its listings), shared by ListTokens and the facet counts."""
    where = []
    if collection_id is not None:
        where.append(f"t.collection_id = {p(collection_id)}::uuid")
    if len(owners) == 1:
        where.append(f"t.owner_address = {p(owners[0])}::text")
    elif owners:
        where.append(f"t.owner_address = ANY({p(list(owners))}::text[])")
    if not include_burned:
        where.append("NOT t.burned")
    if listed_only:
        where.append("EXISTS (SELECT 1 FROM catalog.listings l WHERE l.token_id = t.id AND l.is_active)")
    return where


def token_conditions(p: Any, *, collection_id: UUID | None, owners: Sequence[str], resolved: Resolved,
                     include_burned: bool, listed_only: bool, query: str) -> list[str]:
    """Every WHERE fragment of a ListTokens request, values bound through `p`."""
    where = base_conditions(p, collection_id=collection_id, owners=owners, include_burned=include_burned,
                            listed_only=listed_only)
    if query:
        where.append(f"(t.token_number = {p(query)}::text OR t.name ILIKE {p(like_pattern(query))}::text)")
    for trait_id, ids in resolved.values:
        assert trait_id is not None, "an impossible filter is answered without a query"
        where.append(value_condition(p, trait_id, ids))
    for trait_id, low, high in resolved.ranges:
        assert trait_id is not None, "an impossible filter is answered without a query"
        where.append(range_condition(p, trait_id, low, high))
    return where

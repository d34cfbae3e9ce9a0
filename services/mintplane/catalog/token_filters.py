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
MAX_BOUND_EXPONENT = 1000
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

# Value filters by (name, value); range filters by name, each with the number of links it selects (its
# posting list's length, from occurrences) so the caller can pick a plan; and the collection's item count.
_RESOLVE = """
SELECT 'value' AS kind, NULL::int AS position, tr.id AS trait_id, tr.normalized_name, v.id AS value_id,
       v.normalized_value, v.occurrences::bigint AS postings,
       (SELECT items_count FROM catalog.collection_stats WHERE collection_id = $1) AS items
  FROM catalog.traits tr
  LEFT JOIN catalog.trait_values v ON v.trait_id = tr.id AND v.normalized_value = ANY($3::text[])
 WHERE tr.collection_id = $1 AND tr.normalized_name = ANY($2::text[])
UNION ALL
SELECT 'range', r.position::int, tr.id, r.name, NULL, NULL,
       (SELECT coalesce(sum(v.occurrences), 0) FROM catalog.trait_values v
         WHERE v.trait_id = tr.id AND v.value_number >= coalesce(r.low, '-Infinity'::numeric)
           AND v.value_number <= coalesce(r.high, 'Infinity'::numeric))::bigint,
       (SELECT items_count FROM catalog.collection_stats WHERE collection_id = $1)
  FROM unnest($4::text[], $5::numeric[], $6::numeric[]) WITH ORDINALITY AS r(name, low, high, position)
  LEFT JOIN catalog.traits tr ON tr.collection_id = $1 AND tr.normalized_name = r.name
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


@dataclass(frozen=True)
class Filter:
    """One resolved filter: tokens with one of `value_ids` of the trait, or a value_number in [low, high].

    `trait_id` is None when the collection lacks the trait, and a value filter's `value_ids` is empty when it
    lacks every value named: such a filter matches no token. `postings` is the number of links it selects.
    """

    trait_id: UUID | None
    value_ids: tuple[UUID, ...] | None  # None for a range filter
    low: Decimal | None = None
    high: Decimal | None = None
    postings: int = 0

    @property
    def impossible(self) -> bool:
        return self.trait_id is None or (self.value_ids is not None and not self.value_ids)


@dataclass
class Resolved:
    filters: list[Filter] = field(default_factory=list)
    items: int = 0  # the collection's items_count

    @property
    def impossible(self) -> bool:
        return any(f.impossible for f in self.filters)

    def selectivity(self) -> float:
        """Share of the collection's tokens expected to pass every filter (independent traits assumed)."""
        share = 1.0
        for f in self.filters:
            share *= min(1.0, f.postings / max(self.items, 1))
        return share


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
    if number and abs(number.adjusted()) > MAX_BOUND_EXPONENT:  # PostgreSQL's numeric could not hold it
        raise InvalidArgument(f"{where} is out of range (at most 1e{MAX_BOUND_EXPONENT} in magnitude)")
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
    """Trait and value ids of the filters with their sizes, in one statement (none without filters).

    Filters come back smallest first, the order their conditions are best checked in.
    """
    resolved = Resolved()
    if not values and not ranges:
        return resolved
    names = sorted({f.name for f in values})
    wanted = sorted({v for f in values for v in f.values})
    rows = await fetch(_RESOLVE, collection_id, names, wanted, [r.name for r in ranges], [r.low for r in ranges],
                       [r.high for r in ranges])
    traits: dict[str, UUID] = {}
    found: dict[tuple[str, str], tuple[UUID, int]] = {}
    range_rows: dict[int, Any] = {}
    for row in rows:
        resolved.items = row["items"] or 0
        if row["kind"] == "range":
            range_rows[row["position"]] = row
            continue
        traits[row["normalized_name"]] = row["trait_id"]
        if row["value_id"] is not None:
            found[(row["normalized_name"], row["normalized_value"])] = (row["value_id"], row["postings"])
    for f in values:
        hits = sorted(found[(f.name, v)] for v in f.values if (f.name, v) in found)
        resolved.filters.append(Filter(traits.get(f.name), tuple(h[0] for h in hits),
                                       postings=sum(h[1] for h in hits)))
    for position, r in enumerate(ranges, start=1):
        row = range_rows[position]
        resolved.filters.append(Filter(row["trait_id"], None, r.low, r.high, postings=row["postings"]))
    resolved.filters.sort(key=lambda f: f.postings)
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


def probe(p: Any, f: Filter, subject: str = "t.id") -> str:
    """The token `subject` passes the filter: a primary-key probe of token_trait_links (token, ...).

    Written as a scalar subquery, which PostgreSQL keeps as a per-row check instead of turning it into a
    join: its estimates for "tokens having one of these value ids" are too coarse to choose joins by (they
    picked whole-set sorts over a 50-row index walk), and which set drives is decided here instead.
    """
    assert f.trait_id is not None, "an impossible filter is answered without a query"
    if f.value_ids is not None:
        # one descent to the token's (token, trait) entries; several values are checked on those entries
        # ("IS TRUE" keeps PostgreSQL 15 from descending once per value)
        accepted = (f"k.trait_value_id = {p(f.value_ids[0])}::uuid" if len(f.value_ids) == 1
                    else f"(k.trait_value_id = ANY({p(list(f.value_ids))}::uuid[])) IS TRUE")
        return (f"(SELECT true FROM catalog.token_trait_links k WHERE k.token_id = {subject} "  # noqa: S608
                f"AND k.trait_id = {p(f.trait_id)}::uuid AND {accepted} LIMIT 1)")
    return (f"(SELECT true FROM catalog.token_trait_links k JOIN catalog.trait_values v "  # noqa: S608
            f"ON v.id = k.trait_value_id WHERE k.token_id = {subject} AND k.trait_id = {p(f.trait_id)}::uuid"
            f"{_bounds(p, f)} LIMIT 1)")


def _bounds(p: Any, f: Filter) -> str:
    return "".join(f" AND v.value_number {op} {p(b)}::numeric" for op, b in ((">=", f.low), ("<=", f.high))
                   if b is not None)


def posting_list(p: Any, f: Filter, *, distinct: bool = True) -> str:
    """The tokens passing the filter, from the link table's (trait_value_id, token_id) index."""
    assert f.trait_id is not None, "an impossible filter is answered without a query"
    select = "SELECT DISTINCT k.token_id" if distinct else "SELECT k.token_id"
    if f.value_ids is not None:
        return (f"{select} FROM catalog.token_trait_links k "
                f"WHERE k.trait_value_id = ANY({p(list(f.value_ids))}::uuid[])")
    return (f"{select} FROM catalog.trait_values v JOIN catalog.token_trait_links k "
            f"ON k.trait_value_id = v.id WHERE v.trait_id = {p(f.trait_id)}::uuid{_bounds(p, f)}")


def member(p: Any, f: Filter, subject: str) -> str:
    """`subject` is among the filter's tokens: its posting list read once into a hash ("hashed SubPlan";
    ``IS TRUE`` keeps the ``IN`` out of the join planner), a sequential index-only read instead of a
    primary-key probe per row."""
    return f"({subject} IN ({posting_list(p, f, distinct=False)})) IS TRUE"


def not_burned(p: Any, collection_id: UUID, subject: str) -> str:
    """`subject` is not a burned token of the collection (the few burned ones, from a partial index)."""
    return (f"({subject} IN (SELECT b.id FROM catalog.tokens b WHERE b.collection_id = "  # noqa: S608
            f"{p(collection_id)}::uuid AND b.burned)) IS NOT TRUE")


def matching(p: Any, chosen: Sequence[Filter]) -> str:
    """The tokens passing every filter in `chosen`: the shortest posting list, checked against the others.

    Each other filter is a :func:`member` check.
    """
    driver, *rest = sorted(chosen, key=lambda f: f.postings)
    checks = "".join(f" AND {member(p, f, 'm.token_id')}" for f in rest)
    return f"SELECT m.token_id FROM ({posting_list(p, driver)}) AS m WHERE TRUE{checks}"  # noqa: S608


@dataclass(frozen=True)
class Scope:
    """Which tokens a request is about before trait filters: a collection and/or owners, and row flags."""

    collection_id: UUID | None
    owners: tuple[str, ...] = ()
    include_burned: bool = False
    listed_only: bool = False
    query: str = ""

    @property
    def whole_collection(self) -> bool:
        """Exactly the collection's unburned tokens (its items_count)."""
        return self.collection_id is not None and not (self.owners or self.include_burned or self.listed_only
                                                       or self.query)


def base_conditions(p: Any, scope: Scope) -> list[str]:
    """Filters on the token row itself (and its listings), shared by ListTokens and the facet counts."""
    where = []
    if scope.collection_id is not None:
        where.append(f"t.collection_id = {p(scope.collection_id)}::uuid")
    if len(scope.owners) == 1:
        where.append(f"t.owner_address = {p(scope.owners[0])}::text")
    elif scope.owners:
        where.append(f"t.owner_address = ANY({p(list(scope.owners))}::text[])")
    if not scope.include_burned:
        where.append("NOT t.burned")
    if scope.listed_only:
        where.append("EXISTS (SELECT 1 FROM catalog.listings l WHERE l.token_id = t.id AND l.is_active)")
    if scope.query:
        # each side of the OR has its own index (the collection's token numbers; name trigrams), so a rare
        # match is a bitmap of a few rows rather than a walk through the collection
        number = f"t.token_number = {p(scope.query)}::text"
        if scope.collection_id is not None:
            number = f"(t.collection_id = {p(scope.collection_id)}::uuid AND {number})"
        where.append(f"({number} OR t.name ILIKE {p(like_pattern(scope.query))}::text)")
    return where


def token_conditions(p: Any, scope: Scope, resolved: Resolved) -> list[str]:
    """Every WHERE fragment of a ListTokens request, values bound through `p`."""
    return base_conditions(p, scope) + [probe(p, f) for f in resolved.filters]

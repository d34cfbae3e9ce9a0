"""ListTraits: a collection's traits with every value's count, optionally counted under filters (facets).

Without filters the answer is stored data: one statement reads the collection, its traits and values
(``occurrences`` is kept exact by the trait writer). With filters, each value's ``filtered_count`` is the
number of tokens matching every filter *except those on the value's own trait* (checking "Blue" must not
zero "Red"). One more statement computes all of them set-based, whatever the number of traits: a UNION
ALL of one aggregate per group of traits sharing a token set,

- the unfiltered traits: links of the tokens passing every filter;
- each filtered trait T: T's links of the tokens passing the filters on the other traits; when no other
  filter remains that set is the whole collection, whose counts are T's ``occurrences`` less the burned
  tokens (a partial index finds those), so no link is scanned.

Token sets start from the shortest posting list of their filters (the link table's value index), probed
for the others, or from the owner's tokens when an owner is given. Resolving the filters is one small
statement before that (:func:`mintplane.catalog.token_filters.resolve`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.catalog import token_filters as filters
from mintplane.catalog.keyset import Params
from mintplane.catalog.queries import uuid_of
from mintplane.catalog.repository import CatalogRepository
from mintplane.catalog.views import Row, decimal_text
from mintplane.common.errors import NotFound

VALUE_TYPES = {"string": pb.TRAIT_VALUE_TYPE_STRING, "number": pb.TRAIT_VALUE_TYPE_NUMBER,
               "date": pb.TRAIT_VALUE_TYPE_DATE}

_TRAITS = """
SELECT c.id AS collection_id, s.items_count, tr.id AS trait_id, tr.name, tr.normalized_name, tr.value_type,
       tr.display_type, tr.sort_order, tr.is_meta, tr.null_occurrences, v.id AS value_id, v.value_string,
       v.value_number, v.normalized_value, v.occurrences, v.rarity_score
  FROM catalog.collections c
  LEFT JOIN catalog.collection_stats s ON s.collection_id = c.id
  LEFT JOIN catalog.traits tr ON tr.collection_id = c.id
  LEFT JOIN catalog.trait_values v ON v.trait_id = tr.id
 WHERE c.id = $1
 ORDER BY tr.is_meta, tr.sort_order NULLS LAST, tr.normalized_name, v.occurrences DESC, v.normalized_value
"""

def _trait(row: Row) -> pb.Trait:
    return pb.Trait(
        id=str(row["trait_id"]), collection_id=str(row["collection_id"]), name=row["name"],
        normalized_name=row["normalized_name"] or "",
        value_type=VALUE_TYPES.get(row["value_type"] or "", pb.TRAIT_VALUE_TYPE_UNSPECIFIED),
        display_type=row["display_type"] or "", sort_order=row["sort_order"] or 0, is_meta=row["is_meta"],
        null_occurrences=row["null_occurrences"],
    )


class Facets:
    def __init__(self, repository: CatalogRepository) -> None:
        self._repo = repository

    async def list_traits(self, request: pb.ListTraitsRequest) -> pb.ListTraitsResponse:
        collection_id = uuid_of(request.collection_id, "collection_id")
        assert collection_id is not None
        values, ranges = filters.parse(request.trait_filters, request.numeric_filters)
        owners = filters.owners(request.owner_address, ())
        filtered = bool(values or ranges or owners or request.listed_only)
        rows = await self._repo.fetch(_TRAITS, collection_id)
        if not rows:
            raise NotFound(f"collection {request.collection_id} not found")
        counts: dict[UUID, int] | None = None
        if filtered:
            counts = await self._counts(collection_id, values, ranges, owners, request.listed_only)
        response = pb.ListTraitsResponse(items_count=rows[0]["items_count"] or 0)
        current: pb.Trait | None = None
        numbers: list[Any] = []
        for row in rows:
            if row["trait_id"] is None:
                continue
            if current is None or current.id != str(row["trait_id"]):
                self._close(current, numbers)
                current, numbers = response.traits.add(), []
                current.CopyFrom(_trait(row))
            if row["value_id"] is None:
                continue
            if row["value_number"] is not None and row["occurrences"] > 0:
                numbers.append(row["value_number"])
            current.values.append(pb.TraitValue(
                id=str(row["value_id"]), trait_id=str(row["trait_id"]), value_string=row["value_string"] or "",
                value_number=decimal_text(row["value_number"]), normalized_value=row["normalized_value"] or "",
                occurrences=row["occurrences"], rarity_score=decimal_text(row["rarity_score"]),
                filtered_count=row["occurrences"] if counts is None else counts.get(row["value_id"], 0),
            ))
        self._close(current, numbers)
        return response

    @staticmethod
    def _close(trait: pb.Trait | None, numbers: Sequence[Any]) -> None:
        """Sets min/max of a NUMBER/DATE trait from the values tokens carry."""
        if trait is not None and numbers and trait.value_type in (pb.TRAIT_VALUE_TYPE_NUMBER,
                                                                  pb.TRAIT_VALUE_TYPE_DATE):
            trait.min_value, trait.max_value = decimal_text(min(numbers)), decimal_text(max(numbers))

    async def _counts(self, collection_id: UUID, values: Sequence[filters.ValueFilter],
                      ranges: Sequence[filters.RangeFilter], owners: Sequence[str],
                      listed_only: bool) -> dict[UUID, int]:
        """filtered_count of every value: tokens passing all filters but those on the value's own trait."""
        resolved = await filters.resolve(self._repo.fetch, collection_id, values, ranges)
        scope = filters.Scope(collection_id, tuple(owners), listed_only=listed_only)
        p = Params()
        filtered = sorted({f.trait_id for f in resolved.filters if f.trait_id is not None})
        groups = [self._group(p, scope, None, resolved.filters, filtered)]
        for trait_id in filtered:
            others = [f for f in resolved.filters if f.trait_id != trait_id]
            groups.append(self._group(p, scope, trait_id, others, filtered))
        parts = [g for g in groups if g]
        if not parts:
            return {}
        rows = await self._repo.fetch(" UNION ALL ".join(f"({g})" for g in parts), *p.args)
        return {row["trait_value_id"]: row["n"] for row in rows}

    @staticmethod
    def _group(p: Params, scope: filters.Scope, trait_id: UUID | None, chosen: Sequence[filters.Filter],
               filtered: Sequence[UUID]) -> str:
        """Counts of one trait's values (trait_id), or of every unfiltered trait's (None), under `chosen`.

        Empty when a chosen filter names an unknown trait or value: no token passes it, every count is 0.
        """
        if any(f.impossible for f in chosen):
            return ""
        assert scope.collection_id is not None
        if scope.whole_collection and trait_id is not None and not chosen:
            # nothing else filters this trait: its occurrences, less the burned tokens carrying each value
            c, t = p(scope.collection_id), p(trait_id)
            return f"""SELECT v.id AS trait_value_id, v.occurrences - coalesce(b.n, 0) AS n
                         FROM catalog.trait_values v
                         LEFT JOIN (SELECT k.trait_value_id, count(*) AS n FROM catalog.tokens t
                                      JOIN catalog.token_trait_links k ON k.token_id = t.id AND k.trait_id = {t}::uuid
                                     WHERE t.collection_id = {c}::uuid AND t.burned GROUP BY k.trait_value_id) AS b
                           ON b.trait_value_id = v.id
                        WHERE v.trait_id = {t}::uuid"""  # noqa: S608
        if scope.whole_collection and trait_id is not None:
            # every link of the trait, kept when its token is in the other filters' (hashed) posting lists
            checks = "".join(f" AND {filters.member(p, f, 'k.token_id')}" for f in chosen)
            return (f"SELECT k.trait_value_id, count(*) AS n FROM catalog.trait_values v "  # noqa: S608
                    f"JOIN catalog.token_trait_links k ON k.trait_value_id = v.id WHERE v.trait_id = "
                    f"{p(trait_id)}::uuid{checks} AND {filters.not_burned(p, scope.collection_id, 'k.token_id')} "
                    f"GROUP BY k.trait_value_id")
        links = (f"k.trait_id = {p(trait_id)}::uuid" if trait_id is not None
                 else f"k.trait_id <> ALL({p(list(filtered))}::uuid[])")
        if scope.whole_collection:
            # the tokens passing every filter (few, typically), each with its links of the unfiltered traits
            return (f"SELECT k.trait_value_id, count(*) AS n FROM ({filters.matching(p, chosen)}) AS s "  # noqa: S608
                    f"JOIN catalog.token_trait_links k ON k.token_id = s.token_id AND {links} "
                    f"WHERE {filters.not_burned(p, scope.collection_id, 's.token_id')} GROUP BY k.trait_value_id")
        # an owner's tokens (or the listed ones), probed for the filters
        base = " AND ".join(filters.base_conditions(p, scope))
        checks = "".join(f" AND {filters.probe(p, f)}" for f in chosen)
        return (f"SELECT k.trait_value_id, count(*) AS n FROM catalog.tokens t "  # noqa: S608
                f"JOIN catalog.token_trait_links k ON k.token_id = t.id AND {links} WHERE {base}{checks} "
                f"GROUP BY k.trait_value_id")

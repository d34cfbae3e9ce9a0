"""ListTraits: a collection's traits with every value's count, optionally counted under filters (facets).

Without filters the answer is stored data: one statement reads the collection, its traits and values
(``occurrences`` is maintained by the rarity recompute). With filters, each value's ``filtered_count`` is
the number of tokens matching every filter *except those on the value's own trait* (checking "Blue" must
not zero "Red"), computed set-based in one more statement, whatever the number of traits:

1. every filter gets a bit; the tokens carrying an accepted value (or a value in range) of filter ``i``
   come from the link table's ``(trait_value_id, token_id)`` index, and ``bit_or`` folds them into a
   per-token mask of the filters it passes;
2. a link (token, trait T, value) counts iff ``mask(token) | mask(T) = all bits``, where ``mask(T)`` holds
   the bits of the filters on T (zero for unfiltered traits, which therefore need every filter passed);
3. with two or more filtered traits only tokens passing some filter can count, so the candidates are the
   masked tokens; with one, every token of the base set (owner, listed, not burned) counts for that
   trait's own values.
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

_COUNTS = """
WITH fv AS (SELECT * FROM unnest({vbits}::int[], {vids}::uuid[]) AS f(bit, value_id)),
fr AS (SELECT * FROM unnest({rbits}::int[], {rtraits}::uuid[], {lows}::numeric[], {highs}::numeric[])
                  AS r(bit, trait_id, low, high)),
hits AS (
    SELECT k.token_id, fv.bit FROM fv JOIN catalog.token_trait_links k ON k.trait_value_id = fv.value_id
    UNION ALL
    SELECT k.token_id, fr.bit
      FROM fr
      JOIN catalog.trait_values v ON v.trait_id = fr.trait_id
       AND v.value_number >= coalesce(fr.low, '-Infinity'::numeric)
       AND v.value_number <= coalesce(fr.high, 'Infinity'::numeric)
      JOIN catalog.token_trait_links k ON k.trait_value_id = v.id
),
masks AS (SELECT token_id, bit_or(bit) AS mask FROM hits GROUP BY token_id),
tm AS (SELECT * FROM unnest({ttraits}::uuid[], {tmasks}::int[]) AS x(trait_id, mask)),
cand AS ({candidates})
SELECT k.trait_value_id, count(*) AS n
  FROM cand c
  JOIN catalog.token_trait_links k ON k.token_id = c.id
  LEFT JOIN tm ON tm.trait_id = k.trait_id
 WHERE (c.mask | coalesce(tm.mask, 0)) = {full}
 GROUP BY k.trait_value_id
"""
# two or more filtered traits: a counted token passes every filter but maybe those of one trait
_MASKED_CANDIDATES = """SELECT t.id, m.mask FROM masks m JOIN catalog.tokens t ON t.id = m.token_id
 WHERE {base} AND EXISTS (SELECT 1 FROM tm WHERE (m.mask | tm.mask) = {full})"""
# at most one filtered trait: every token of the base set counts toward that trait's values
_ALL_CANDIDATES = """SELECT t.id, coalesce(m.mask, 0) AS mask FROM catalog.tokens t
  LEFT JOIN masks m ON m.token_id = t.id WHERE {base}"""


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
        # A filter naming an unknown value or trait keeps its bit, which no token sets: nothing counts
        # except the values of a known trait whose own filter it is (the bit is in that trait's mask).
        unknown_traits = 0
        value_bits: list[int] = []
        value_ids: list[UUID] = []
        trait_masks: dict[UUID, int] = {}
        bit = 1
        for value_trait, ids in resolved.values:
            value_bits += [bit] * len(ids)
            value_ids += ids
            if value_trait is None:
                unknown_traits += 1
            else:
                trait_masks[value_trait] = trait_masks.get(value_trait, 0) | bit
            bit <<= 1
        range_rows = []
        for range_trait, low, high in resolved.ranges:
            if range_trait is None:
                unknown_traits += 1
            else:
                range_rows.append((bit, range_trait, low, high))
                trait_masks[range_trait] = trait_masks.get(range_trait, 0) | bit
            bit <<= 1
        full = bit - 1
        p = Params()
        base = filters.base_conditions(p, collection_id=collection_id, owners=owners, include_burned=False,
                                       listed_only=listed_only)
        placeholders = {
            "vbits": p(value_bits), "vids": p(value_ids),
            "rbits": p([r[0] for r in range_rows]), "rtraits": p([r[1] for r in range_rows]),
            "lows": p([r[2] for r in range_rows]), "highs": p([r[3] for r in range_rows]),
            "ttraits": p(list(trait_masks)), "tmasks": p(list(trait_masks.values())), "full": f"{p(full)}::int",
        }
        template = _MASKED_CANDIDATES if len(trait_masks) + unknown_traits >= 2 else _ALL_CANDIDATES
        candidates = template.format(base=" AND ".join(base), full=placeholders["full"])
        rows = await self._repo.fetch(_COUNTS.format(candidates=candidates, **placeholders), *p.args)
        return {row["trait_value_id"]: row["n"] for row in rows}

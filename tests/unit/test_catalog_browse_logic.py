"""The catalog read path's plain logic: keyset segments and their page tokens, filter parsing, plan choice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mintplane.api.catalog.v1 import catalog_pb2 as pb
from mintplane.catalog import token_filters as filters
from mintplane.catalog.keyset import Key, Params, Segment, decode_cursor, encode_cursor, page
from mintplane.catalog.queries import _gather_first, token_segments
from mintplane.catalog.synthetic import ranks_with_ties
from mintplane.common.errors import InvalidArgument
from mintplane.common.pagination import encode_key_token

pytestmark = pytest.mark.unit

SEGMENTS = [Segment((Key("t.rarity_rank", "int"), Key("t.token_number", "text")), where="t.rarity_rank IS NOT NULL"),
            Segment((Key("t.minted_at", "ts"), Key("t.id", "uuid")), descending=True)]


def test_cursor_round_trips_typed_keys_and_refuses_foreign_or_tampered_tokens() -> None:
    row = {"_k0": datetime(2026, 5, 1, 12, tzinfo=UTC), "_k1": uuid.uuid4()}
    token = encode_cursor(1, row, SEGMENTS, ["tokens", "a"], 17)
    cursor = decode_cursor(token, ["tokens", "a"], SEGMENTS)
    assert cursor is not None and (cursor.segment, cursor.values, cursor.carried) == (1, [row["_k0"], row["_k1"]], 17)
    assert decode_cursor("", ["tokens", "a"], SEGMENTS) is None
    with pytest.raises(InvalidArgument, match="different request"):
        decode_cursor(token, ["tokens", "b"], SEGMENTS)
    naive_time = [1, ["2026-05-01T12:00:00", str(uuid.uuid4())], 0]
    for forged in ([5, [1, "2"], 0], [0, [1], 0], [0, ["one", "2"], 0], naive_time, [True, [1, "2"], 0],
                   [1, ["2026-05-01T12:00:00+00:00", "not-a-uuid"], 0]):
        with pytest.raises(InvalidArgument, match="page token"):
            decode_cursor(encode_key_token(forged, ["tokens", "a"]), ["tokens", "a"], SEGMENTS)


async def test_page_reads_segments_in_order_and_continues_with_a_row_comparison() -> None:
    statements: list[tuple[str, tuple[Any, ...]]] = []
    answers = [[{"_k0": 1, "_k1": "5", "id": "a"}], [{"_k0": None, "_k1": uuid.uuid4(), "id": "b"}] * 2]

    async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
        statements.append((sql, args))
        return answers[len(statements) - 1]

    p = Params()
    where = [f"t.collection_id = {p('c')}"]
    rows, last = await page(fetch, select="t.id", source="catalog.tokens t", where=where, params=p,
                            segments=SEGMENTS, cursor=decode_cursor(
                                encode_cursor(0, {"_k0": 1, "_k1": "4"}, SEGMENTS, "f", 0), "f", SEGMENTS), limit=2)
    assert [r["id"] for r in rows] == ["a", "b"] and last == 1  # a third row exists: more to come
    first, second = statements
    assert "(t.rarity_rank, t.token_number) > ($2::bigint, $3::text)" in first[0] and first[1][1:3] == (1, "4")
    assert first[0].endswith("ORDER BY t.rarity_rank, t.token_number LIMIT $4") and first[1][3] == 3
    assert "ORDER BY t.minted_at DESC, t.id DESC" in second[0] and " > (" not in second[0]
    assert second[1] == ("c", 2), "the second segment fetches only what the page still lacks, plus one"
    assert p.args == ["c"], "the caller's parameters are not consumed"


def test_token_sorts_put_unranked_and_undated_tokens_last_with_unique_tiebreakers() -> None:
    for sort in (pb.TOKEN_SORT_RARITY_ASC, pb.TOKEN_SORT_RARITY_DESC):
        ranked, unranked = token_segments(sort, scoped=True)
        assert ranked.where == "t.rarity_rank IS NOT NULL" and unranked.where == "t.rarity_rank IS NULL"
        assert ranked.descending == (sort == pb.TOKEN_SORT_RARITY_DESC) and not unranked.descending
        assert [k.sql for k in unranked.keys] == ["length(t.token_number)", "t.token_number"]
    dated, undated = token_segments(pb.TOKEN_SORT_TRANSFERRED_AT_DESC, scoped=False)
    assert [k.sql for k in dated.keys] == ["t.last_transfer_at", "t.id"] and dated.keys[0].nulls_last
    assert [k.sql for k in undated.keys] == ["t.id"]
    (across,) = token_segments(pb.TOKEN_SORT_TOKEN_NUMBER_ASC, scoped=False)
    assert across.keys[0].sql == "t.collection_id", "without one collection, its id joins the key"


def test_filters_are_normalised_merged_and_validated() -> None:
    values, ranges = filters.parse(
        [pb.TraitFilter(name=" Background ", values=["RED", "Blue  Sky", "red"]),
         pb.TraitFilter(name="background", values=["red", "green"])],
        [pb.NumericTraitFilter(name="Level", min="2", max="")])
    assert values == [filters.ValueFilter("background", ("red",))], "two filters on one trait keep what they share"
    assert ranges == [filters.RangeFilter("level", Decimal(2), None)]
    bad = [([pb.TraitFilter(name="", values=["x"])], [], "name is required"),
           ([pb.TraitFilter(name="a", values=[])], [], "non-empty value"),
           ([], [pb.NumericTraitFilter(name="a", min="1e400000000000", max="")], "out of range"),
           ([], [pb.NumericTraitFilter(name="a", min="ten")], "decimal number"),
           ([], [pb.NumericTraitFilter(name="a", min="Infinity")], "finite"),
           ([], [pb.NumericTraitFilter(name="a", min="3", max="2")], "greater than max"),
           ([pb.TraitFilter(name=str(i), values=["x"]) for i in range(21)], [], "at most 20")]
    for trait_filters, numeric, message in bad:
        with pytest.raises(InvalidArgument, match=message):
            filters.parse(trait_filters, numeric)
    ab, cd = "0x" + "ab" * 20, "0x" + "cd" * 20
    assert filters.owners(ab.upper().replace("0X", "0x"), [ab, cd]) == [ab, cd]
    assert filters.like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_plan_choice_walks_for_common_values_and_gathers_for_rare_ones() -> None:
    def resolved(*postings: int) -> filters.Resolved:
        return filters.Resolved([filters.Filter(uuid.uuid4(), (uuid.uuid4(),), postings=n) for n in postings],
                                items=100_000)

    assert not _gather_first(resolved(40_000), 50, True), "40% match: a 50-token page is ~125 tokens into the walk"
    assert not _gather_first(resolved(11_000), 50, True)
    assert _gather_first(resolved(300), 50, False), "300 matches at most: read them, do not walk 100k tokens"
    assert _gather_first(resolved(30_000, 4_000), 50, True), "1.2% match: gather, and count on the way"
    assert resolved(50_000, 10_000).selectivity() == pytest.approx(0.05)


def test_competition_ranks_share_a_rank_and_skip_after_ties() -> None:
    assert ranks_with_ties([Decimal(5), Decimal(9), Decimal(5), Decimal(1), Decimal(9)]) == [3, 1, 3, 5, 1]

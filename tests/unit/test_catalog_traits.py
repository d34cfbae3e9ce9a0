"""Trait normalisation: every shape of attributes seen in the wild, and every bad entry skipped with a reason."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mintplane.catalog.traits import (
    BARE_VALUE_TRAIT_NAME,
    MAX_ENTRIES,
    MAX_NAME_CHARS,
    MAX_TRAITS,
    MAX_VALUE_CHARS,
    NormalizedTrait,
    normalize_attributes,
    normalize_text,
)

pytestmark = pytest.mark.unit


def one(attributes: object) -> NormalizedTrait:
    traits, reasons = normalize_attributes(attributes)
    assert reasons == []
    assert len(traits) == 1
    return traits[0]


def skipped(attributes: object) -> str:
    traits, reasons = normalize_attributes(attributes)
    assert traits == []
    assert len(reasons) == 1
    return reasons[0]


def test_opensea_string_trait_keeps_its_text_and_normalises_its_identity() -> None:
    trait = one([{"trait_type": "  Background ", "value": " Blue  Sky "}])
    assert trait == NormalizedTrait("Background", "background", "Blue  Sky", "blue sky", None, None, "string")


def test_normalisation_is_nfkc_casefold_and_collapsed_whitespace() -> None:
    assert normalize_text("\uff22\uff2c\uff35\uff25\u00a0\tSky")  # full-width BLUE, no-break space == "blue sky"
    assert normalize_text("Straße") == normalize_text("STRASSE") == "strasse"
    assert normalize_text("ﬁre") == "fire"  # the ligature is one NFKC compatibility character


@pytest.mark.parametrize("display_type", ["number", "boost_number", "boost_percentage", "Number "])
def test_numeric_display_types_give_numbers(display_type: str) -> None:
    trait = one([{"trait_type": "Level", "value": "5.50", "display_type": display_type, "max_value": 10}])
    assert trait.value_type == "number"
    assert trait.value_number == Decimal("5.50")
    assert trait.value_string == trait.normalized_value == "5.5"
    assert trait.display_type == display_type.strip().lower()


def test_equal_numbers_are_one_value_whatever_their_spelling() -> None:
    texts = {one([{"trait_type": "Power", "value": v, "display_type": "number"}]).normalized_value
             for v in (5, 5.0, "5.00", " 5 ", "5e0")}
    assert texts == {"5"}
    assert one([{"trait_type": "Tiny", "value": 1e-7, "display_type": "number"}]).value_string == "0.0000001"


def test_date_is_unix_seconds_shown_as_iso_time() -> None:
    trait = one([{"trait_type": "Birthday", "value": 1546360800, "display_type": "date"}])
    assert trait.value_type == "date"
    assert trait.value_number == Decimal(1546360800)
    assert trait.value_string == "2019-01-01T16:40:00Z"
    assert trait.normalized_value == "1546360800"


def test_plain_json_number_without_display_type_is_a_category_with_a_number() -> None:
    trait = one([{"trait_type": "Generation", "value": 2}])
    assert (trait.value_type, trait.value_string, trait.value_number) == ("string", "2", Decimal(2))


def test_booleans_become_strings() -> None:
    traits, reasons = normalize_attributes([{"trait_type": "Legendary", "value": True},
                                            {"trait_type": "Cursed", "value": False}])
    assert reasons == []
    assert [(t.value_string, t.value_type, t.value_number) for t in traits] == [("true", "string", None),
                                                                                ("false", "string", None)]


def test_bare_values_get_the_generic_name_and_only_the_first_is_kept() -> None:
    traits, reasons = normalize_attributes([{"value": "Gold"}, "Silver", {"trait_type": "Hat", "value": "Cap"}])
    assert [(t.name, t.value_string) for t in traits] == [(BARE_VALUE_TRAIT_NAME, "Gold"), ("Hat", "Cap")]
    assert len(reasons) == 1 and reasons[0].startswith("attributes[1]: duplicate trait name")


def test_dict_form_and_nested_value_objects() -> None:
    traits, reasons = normalize_attributes({"Background": "Blue", "Level": {"value": 3, "display_type": "number"}})
    assert reasons == []
    assert [(t.name, t.value_string, t.value_type) for t in traits] == [("Background", "Blue", "string"),
                                                                        ("Level", "3", "number")]


def test_a_whole_document_and_the_traits_alias() -> None:
    document = {"name": "Token #1", "image": "ipfs://x", "attributes": [{"trait_type": "Eyes", "value": "Laser"}]}
    assert one(document).name == "Eyes"
    assert one({"name": "Token #2", "traits": [{"trait_type": "Eyes", "value": "Sleepy"}]}).value_string == "Sleepy"
    assert one({"attributes": None, "traits": {"Mouth": "Grin"}}).name == "Mouth"


def test_no_attributes_is_no_traits_and_no_complaint() -> None:
    assert normalize_attributes(None) == ([], [])
    assert normalize_attributes([]) == ([], [])


@pytest.mark.parametrize(("attributes", "why"), [
    ("Blue", "is a string, not a list or an object"),
    (42, "is a number, not a list or an object"),
    ({"attributes": "Blue"}, "neither a list nor an object"),
])
def test_unusable_containers_are_reported(attributes: object, why: str) -> None:
    assert why in skipped(attributes)


@pytest.mark.parametrize(("entry", "why"), [
    ({"trait_type": "Hat", "value": None}, "null value"),
    ({"trait_type": "Hat"}, "null value"),
    ({"trait_type": "Hat", "value": {"a": 1}}, "nested object"),
    ({"trait_type": "Hat", "value": [1, 2]}, "nested array"),
    ({"trait_type": "   ", "value": "Cap"}, "empty trait name"),
    ({"trait_type": ["Hat"], "value": "Cap"}, "trait_type is a array"),
    ({"trait_type": True, "value": "Cap"}, "trait_type is a boolean"),
    ({"trait_type": "H" * (MAX_NAME_CHARS + 1), "value": "Cap"}, "trait name longer than"),
    ({"trait_type": "Hat", "value": "C" * (MAX_VALUE_CHARS + 1)}, "value longer than"),
    ({"trait_type": "Level", "value": "high", "display_type": "number"}, "is not a number"),
    ({"trait_type": "Level", "value": "NaN", "display_type": "number"}, "not a finite number"),
    ({"trait_type": "Level", "value": float("inf")}, "not a finite number"),
    ({"trait_type": "Level", "value": True, "display_type": "number"}, "a boolean is not a number"),
    ({"trait_type": "Level", "value": "1e400", "display_type": "boost_number"}, "out of range"),
    ({"trait_type": "Born", "value": 10**15, "display_type": "date"}, "out of range"),
    ({"trait_type": "Meta_Trait:Trait_Count", "value": "3"}, "reserved for the trait-count trait"),
])
def test_bad_entries_are_skipped_with_a_reason(entry: dict[str, object], why: str) -> None:
    traits, reasons = normalize_attributes([entry, {"trait_type": "Eyes", "value": "Laser"}])
    assert [t.name for t in traits] == ["Eyes"]  # the rest of the token still counts
    assert len(reasons) == 1
    assert reasons[0].startswith("attributes[0]: ") and why in reasons[0]


def test_duplicate_names_keep_the_first_after_normalisation() -> None:
    traits, reasons = normalize_attributes([{"trait_type": "Hat", "value": "Cap"},
                                            {"trait_type": " HAT ", "value": "Beanie"}])
    assert [t.value_string for t in traits] == ["Cap"]
    assert reasons == ["attributes[1]: duplicate trait name 'HAT': the first one is kept"]


def test_more_than_the_cap_of_traits_are_skipped() -> None:
    traits, reasons = normalize_attributes({f"t{i}": str(i) for i in range(MAX_TRAITS + 3)})
    assert len(traits) == MAX_TRAITS
    assert len(reasons) == 3 and all(f"more than {MAX_TRAITS} traits" in r for r in reasons)


def test_hostile_entry_counts_stop_being_read() -> None:
    traits, reasons = normalize_attributes([{"trait_type": "x", "value": None}] * (MAX_ENTRIES + 500))
    assert traits == []
    assert len(reasons) == MAX_ENTRIES + 1
    assert "not read" in reasons[-1]


def test_unknown_display_types_stay_strings_and_odd_ones_are_dropped() -> None:
    assert one([{"trait_type": "Color", "value": "Red", "display_type": "Color"}]).display_type == "color"
    assert one([{"trait_type": "Color", "value": "Red", "display_type": 7}]).display_type is None


def test_numeric_trait_names_are_text() -> None:
    assert one({7: "lucky"}).name == "7"


"""Parsing a metadata document with limits (depth, elements), and the fields the catalog keeps."""

from __future__ import annotations

import json

import pytest

from mintplane.catalog.metadata.document import MAX_NAME, JsonLimits, check_structure, extract, parse_json
from mintplane.catalog.metadata.failures import PermanentFailure
from mintplane.catalog.metadata.uris import UriRules

pytestmark = pytest.mark.unit
LIMITS = JsonLimits(max_depth=8, max_elements=1000)
RULES = UriRules.of(["https://gw.example"], ["https://ar.example"], [], 1 << 20)
CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"


def _reason(body: bytes, limits: JsonLimits = LIMITS) -> str:
    with pytest.raises(PermanentFailure) as failure:
        parse_json(body, limits)
    return failure.value.reason


def test_a_json_bomb_of_nested_arrays_is_refused_quickly_without_recursion() -> None:
    bomb = b"[" * 500_000 + b"]" * 500_000
    assert _reason(bomb, JsonLimits(max_depth=32, max_elements=50_000)) == "JSON nested deeper than 32 levels"
    assert _reason(b"{\"a\":" * 20 + b"1" + b"}" * 20) == "JSON nested deeper than 8 levels"


def test_depth_counts_structure_not_brackets_inside_strings() -> None:
    inside = json.dumps({"name": "[[[[[[[[[[[[[[[[[[[[", "d": "\\\"[[[[[[[[[[[[[["}).encode()
    assert parse_json(inside, LIMITS)["name"] == "[" * 20
    exactly = b"[" * 8 + b"]" * 8
    check_structure(exactly, LIMITS)  # at the limit: fine
    assert _reason(b"{\"a\":" + b"[" * 8 + b"]" * 8 + b"}") == "JSON nested deeper than 8 levels"
    many_shallow = json.dumps({"attributes": [{"trait_type": f"t{i}", "value": i} for i in range(100)]}).encode()
    assert len(parse_json(many_shallow, LIMITS)["attributes"]) == 100


def test_element_count_limit() -> None:
    assert _reason(json.dumps({"a": list(range(2000))}).encode()) == "JSON has more than 1000 elements"


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "document is empty"),
    (b"<html>hi</html>", "not valid JSON"),
    (b'{"name": "x"', "not valid JSON"),
    (b"[1, 2]", "document is a JSON list, not an object"),
    (b'"text"', "document is a JSON str, not an object"),
    (b"{[}", "not valid JSON"),
])
def test_invalid_documents(body: bytes, reason: str) -> None:
    assert reason in _reason(body)


def test_extract_keeps_capped_fields_and_rewrites_media() -> None:
    document = {
        "name": "  Genesis #1\u0000 ", "description": 42, "image": f"ipfs://{CID}/1.png",
        "animation_url": "javascript:alert(1)", "external_url": "https://site.example/1",
        "attributes": [{"trait_type": "Background", "value": "Blue"}], "extra": {"k": "v\u0000"},
    }
    meta = extract(parse_json(json.dumps(document).encode(), LIMITS), RULES)
    assert meta.name == "Genesis #1"
    assert meta.description == "42"
    assert meta.image_url == f"https://gw.example/ipfs/{CID}/1.png"
    assert meta.animation_url is None
    assert meta.external_url == "https://site.example/1"
    assert meta.attributes == [{"trait_type": "Background", "value": "Blue"}]
    assert meta.document["extra"] == {"k": "v"}  # NUL stripped: jsonb refuses \u0000
    long = extract({"name": "n" * 5000, "image_url": "https://cdn.example/x.png", "traits": {"Eyes": "Red"}}, RULES)
    assert long.name is not None and len(long.name) == MAX_NAME
    assert long.image_url == "https://cdn.example/x.png"
    assert long.attributes == {"Eyes": "Red"}  # any shape goes to trait normalisation as is


def test_oversized_documents_are_stored_reduced() -> None:
    huge = {"name": "Big", "image": "https://cdn.example/b.png", "attributes": [], "blob": "x" * 400_000}
    meta = extract(huge, RULES)
    assert meta.document.get("_truncated") is True and "blob" not in meta.document
    assert meta.name == "Big" and meta.document["name"] == "Big"


def test_inline_svg_image_data_becomes_a_data_url() -> None:
    meta = extract({"name": "On chain", "image_data": "<svg xmlns='http://www.w3.org/2000/svg'/>"}, RULES)
    assert meta.image_url is not None and meta.image_url.startswith("data:image/svg+xml;base64,")
    assert extract({"image_data": "<script>alert(1)</script>"}, RULES).image_url is None

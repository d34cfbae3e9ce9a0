"""ABI content addressing (mintplane.chain_registry.abi): canonical form, hash, standard detection."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from mintplane.chain_registry import abi
from mintplane.chain_registry.models import Standard

pytestmark = pytest.mark.unit

ADDR = {"type": "address", "indexed": True}


def _transfer(third_indexed: bool) -> dict[str, Any]:
    return {
        "type": "event",
        "name": "Transfer",
        "anonymous": False,
        "inputs": [
            {"name": "from", **ADDR},
            {"name": "to", **ADDR},
            {"name": "value", "type": "uint256", "indexed": third_indexed},
        ],
    }


ERC1155 = [
    {
        "type": "event",
        "name": "TransferSingle",
        "inputs": [
            {"name": "operator", **ADDR},
            {"name": "from", **ADDR},
            {"name": "to", **ADDR},
            {"name": "id", "type": "uint256"},
            {"name": "value", "type": "uint256"},
        ],
    },
    {
        "type": "event",
        "name": "TransferBatch",
        "inputs": [
            {"name": "operator", **ADDR},
            {"name": "from", **ADDR},
            {"name": "to", **ADDR},
            {"name": "ids", "type": "uint256[]"},
            {"name": "values", "type": "uint256[]"},
        ],
    },
]


def _hash_of(text: str) -> str:
    return abi.sha256_of(abi.canonical_json(abi.parse(text)))


def test_key_order_and_whitespace_do_not_change_the_hash() -> None:
    fragments = [
        _transfer(True),
        {"type": "function", "name": "ownerOf", "inputs": [{"name": "id", "type": "uint256"}]},
    ]
    compact = json.dumps(fragments, separators=(",", ":"))
    pretty = json.dumps([dict(reversed(list(f.items()))) for f in fragments], indent=2)
    assert _hash_of(compact) == _hash_of(pretty)
    canonical = abi.canonical_json(abi.parse(pretty))
    assert canonical == json.dumps(fragments, sort_keys=True, separators=(",", ":"))
    assert _hash_of(compact) == hashlib.sha256(canonical.encode()).hexdigest()


def test_different_abis_hash_differently_and_fragment_order_counts() -> None:
    one, two = _transfer(True), _transfer(False)
    assert _hash_of(json.dumps([one])) != _hash_of(json.dumps([two]))
    assert _hash_of(json.dumps([one, two])) != _hash_of(json.dumps([two, one]))


def test_canonical_form_keeps_unicode_as_utf8() -> None:
    text = json.dumps([{"type": "function", "name": "mint", "inputs": [], "notice": "Ünïcode ✓"}])
    canonical = abi.canonical_json(abi.parse(text))
    assert "Ünïcode ✓" in canonical and "\\u" not in canonical


@pytest.mark.parametrize(
    ("fragments", "standard"),
    [
        ([_transfer(True)], Standard.ERC721),
        ([_transfer(False)], Standard.ERC20),
        (ERC1155, Standard.ERC1155),
        ([*ERC1155, _transfer(True)], Standard.ERC1155),
        ([ERC1155[0]], None),  # TransferSingle alone is not ERC-1155
        ([{"type": "function", "name": "foo", "inputs": []}], None),
        ([], None),
    ],
)
def test_detect_standard(fragments: list[dict[str, Any]], standard: Standard | None) -> None:
    assert abi.detect_standard(abi.parse(json.dumps(fragments))) == standard


def test_fragments_without_type_are_functions() -> None:
    parsed = abi.parse('[{"name": "f", "inputs": [{"type": "tuple", "components": [{"type": "uint8"}]}]}]')
    assert parsed[0]["name"] == "f"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "not valid JSON"),
        ("NaN", "NaN is not valid JSON"),
        ('{"type": "event"}', "JSON array"),
        ("[1]", "fragment 0 is not an object"),
        ('[{"type": "modifier"}]', "unknown type 'modifier'"),
        ('[{"type": "event", "inputs": []}]', 'needs a non-empty "name"'),
        ('[{"type": "function", "name": "f", "inputs": {}}]', "inputs must be an array"),
        ('[{"type": "function", "name": "f", "outputs": [{"name": "x"}]}]', 'string "type"'),
        ('[{"name": "f", "inputs": [{"type": "tuple", "components": [{}]}]}]', "components[0]"),
        ('[{"type": "function", "name": "f", "gas": 2.5}]', "non-integer number"),
        ('[{"type": "function", "name": "f", "gas": 1e400}]', "non-integer number"),
        ('[{"type": "function", "name": "f\\u0000"}]', "NUL"),
    ],
)
def test_refusals(text: str, fragment: str) -> None:
    with pytest.raises(abi.AbiError) as info:
        abi.parse(text)
    assert fragment in str(info.value)


def test_large_integers_survive_canonicalisation() -> None:
    text = '[{"type": "function", "name": "f", "gas": 115792089237316195423570985008687907853269984665640564039457}]'
    assert "115792089237316195423570985008687907853269984665640564039457" in abi.canonical_json(abi.parse(text))

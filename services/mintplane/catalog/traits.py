"""Normalisation of a metadata document's traits into the catalog's columns (pure: no I/O).

Metadata in the wild is messy, so ``normalize_attributes`` accepts every common shape and never raises: each
entry it cannot use is skipped with a reason the metadata worker records, and the rest of the token's traits
still count. Shapes accepted:

- OpenSea's ``attributes`` list of ``{"trait_type", "value", "display_type", "max_value"}`` objects
  (``traits`` is accepted as an alias key, and the whole metadata document may be passed);
- bare values, ``{"value": "Gold"}`` or a plain ``"Gold"`` in the list: OpenSea shows them as a generic
  property without a trait type, so they get the trait name ``Property`` (``BARE_VALUE_TRAIT_NAME``); as
  with any name, only the first one on a token is kept;
- the dict form ``{"Background": "Blue", "Level": {"value": 5, "display_type": "number"}}``.

Value types, as OpenRarity reads OpenSea data (its resolver keys on ``display_type``):

- ``display_type`` number / boost_number / boost_percentage: ``value_type = "number"``, ``value_number`` set
  (ints, floats and numeric strings); such traits filter by range but do not count toward rarity;
- ``display_type`` date: unix seconds, ``value_type = "date"`` (``value_string`` the ISO-8601 UTC time);
- anything else is a string trait that counts toward rarity; booleans become ``"true"`` / ``"false"``, and a
  JSON number without a numeric display type is a category too (``value_string`` its canonical text) that
  also carries ``value_number`` so it can still be range-filtered. ``max_value`` is display-only and ignored.

Names and values keep their text (trimmed) for display; ``normalized_*`` (NFKC, casefold, whitespace
collapsed) are what identify a trait and a value, so "Blue Sky", "blue  sky " and its
full-width form are one value.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

ValueType = Literal["string", "number", "date"]

BARE_VALUE_TRAIT_NAME = "Property"
# The name OpenRarity gives its trait-count trait; reserved so a document cannot collide with it.
TRAIT_COUNT_NAME = "meta_trait:trait_count"
MAX_NAME_CHARS = 128
MAX_VALUE_CHARS = 256
MAX_DISPLAY_TYPE_CHARS = 64
MAX_TRAITS = 100
# Entries looked at per token; past this a document is hostile or broken and one reason covers the rest.
MAX_ENTRIES = 1000
NUMBER_DISPLAY_TYPES = frozenset({"number", "boost_number", "boost_percentage"})
DATE_DISPLAY_TYPE = "date"
# Decimal exponents a numeric value may have: uint256 has 78 digits; anything beyond is not a trait value.
_MAX_ADJUSTED_EXPONENT = 80
_MIN_ADJUSTED_EXPONENT = -40


@dataclass(frozen=True)
class NormalizedTrait:
    """One trait of one token, in the columns of catalog.traits / catalog.trait_values."""

    name: str
    normalized_name: str
    value_string: str
    normalized_value: str
    value_number: Decimal | None
    display_type: str | None
    value_type: ValueType


class _Skip(Exception):
    """An entry that cannot be used; the message is the reason."""


def normalize_text(text: str) -> str:
    """NFKC + casefold + collapsed whitespace: the identity of a trait name or value."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def normalize_attributes(attributes: object) -> tuple[list[NormalizedTrait], list[str]]:
    """The usable traits of a token's attributes, and one reason per skipped entry; never raises."""
    traits: list[NormalizedTrait] = []
    reasons: list[str] = []
    seen: set[str] = set()
    entries, problem = _entries(attributes)
    if problem:
        reasons.append(problem)
    for index, (where, name, value, display_type) in enumerate(entries):
        if index >= MAX_ENTRIES:
            reasons.append(f"more than {MAX_ENTRIES} attribute entries: the rest were not read")
            break
        try:
            trait = _normalize_entry(name, value, display_type)
            if trait.normalized_name in seen:
                raise _Skip(f"duplicate trait name {trait.name!r}: the first one is kept")
            if len(traits) >= MAX_TRAITS:
                raise _Skip(f"more than {MAX_TRAITS} traits")
        except _Skip as skip:
            reasons.append(f"{where}: {skip}")
            continue
        seen.add(trait.normalized_name)
        traits.append(trait)
    return traits, reasons


_Entry = tuple[str, object, object, object]  # where, name (None: bare value), value, display_type


def _entries(attributes: object) -> tuple[Iterable[_Entry], str | None]:
    """The (where, name, value, display_type) entries of any accepted shape, or a reason for none."""
    if attributes is None:
        return [], None
    if isinstance(attributes, Mapping):
        for key in ("attributes", "traits"):  # a whole metadata document
            inner = attributes.get(key)
            if isinstance(inner, list | Mapping):
                return _entries(inner)
        if "attributes" in attributes or "traits" in attributes:
            return [], "attributes is neither a list nor an object"
        return _dict_entries(attributes), None
    if isinstance(attributes, list):
        return _list_entries(attributes), None
    return [], f"attributes is a {_json_type(attributes)}, not a list or an object"


def _list_entries(items: list[object]) -> Iterator[_Entry]:
    for i, item in enumerate(items):
        where = f"attributes[{i}]"
        if isinstance(item, Mapping):
            yield where, item.get("trait_type"), item.get("value"), item.get("display_type")
        else:  # a bare value straight in the list
            yield where, None, item, None


def _dict_entries(items: Mapping[object, object]) -> Iterator[_Entry]:
    for key, value in items.items():
        where = f"attributes[{str(key)[:MAX_NAME_CHARS]!r}]"
        if isinstance(value, Mapping) and "value" in value:
            yield where, key, value.get("value"), value.get("display_type")
        else:
            yield where, key, value, None


def _normalize_entry(raw_name: object, value: object, raw_display_type: object) -> NormalizedTrait:
    name = _name(raw_name)
    normalized_name = normalize_text(name)
    if not normalized_name:
        raise _Skip("empty trait name")
    if normalized_name == TRAIT_COUNT_NAME:
        raise _Skip(f"trait name {TRAIT_COUNT_NAME!r} is reserved for the trait-count trait")
    display_type = _display_type(raw_display_type)
    if value is None:
        raise _Skip(f"trait {name!r} has a null value")
    if isinstance(value, Mapping | list | tuple):
        raise _Skip(f"trait {name!r} has a nested {_json_type(value)} as its value")
    if display_type in NUMBER_DISPLAY_TYPES:
        number = _number(value, name)
        text = _number_text(number)
        return NormalizedTrait(name, normalized_name, text, text, number, display_type, "number")
    if display_type == DATE_DISPLAY_TYPE:
        seconds = _number(value, name)
        try:
            moment = dt.datetime.fromtimestamp(float(seconds), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise _Skip(f"trait {name!r}: date {value!r} is out of range") from None
        iso = moment.isoformat().replace("+00:00", "Z")
        return NormalizedTrait(name, normalized_name, iso, _number_text(seconds), seconds, display_type, "date")
    number_value: Decimal | None = None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        number_value = _number(value, name)
        text = _number_text(number_value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise _Skip(f"trait {name!r} has a value of unsupported type {_json_type(value)}")
    if len(text) > MAX_VALUE_CHARS:
        raise _Skip(f"trait {name!r}: value longer than {MAX_VALUE_CHARS} characters")
    return NormalizedTrait(name, normalized_name, text, normalize_text(text), number_value, display_type, "string")


def _name(raw: object) -> str:
    if raw is None:
        return BARE_VALUE_TRAIT_NAME
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _Skip(f"trait_type is a {_json_type(raw)}, not text")
    name = raw.strip() if isinstance(raw, str) else str(raw)
    if len(name) > MAX_NAME_CHARS:
        raise _Skip(f"trait name longer than {MAX_NAME_CHARS} characters")
    return name


def _display_type(raw: object) -> str | None:
    """The display hint, lower-cased; an unusable one is dropped rather than costing the trait."""
    if not isinstance(raw, str):
        return None
    hint = raw.strip().lower()
    return hint[:MAX_DISPLAY_TYPE_CHARS] or None


def _number(value: object, name: str) -> Decimal:
    if isinstance(value, bool):
        raise _Skip(f"trait {name!r}: a boolean is not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Skip(f"trait {name!r}: {value!r} is not a finite number")
        number = Decimal(repr(value))
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str) and len(value) <= MAX_VALUE_CHARS:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise _Skip(f"trait {name!r}: {value!r} is not a number") from None
        if not number.is_finite():
            raise _Skip(f"trait {name!r}: {value!r} is not a finite number")
    else:
        raise _Skip(f"trait {name!r}: a {_json_type(value)} is not a number")
    if number and not _MIN_ADJUSTED_EXPONENT <= number.adjusted() <= _MAX_ADJUSTED_EXPONENT:
        raise _Skip(f"trait {name!r}: number out of range")
    return number


def _number_text(number: Decimal) -> str:
    """Canonical text of a number: 5, 5.0 and "5.00" are one value, written without an exponent."""
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _json_type(value: object) -> str:
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__

"""A fetched metadata document, parsed with limits, reduced to what the catalog stores.

JSON limits are checked on the bytes before any parser runs, at C speed and without recursion: string
literals are blanked with one regular expression (possessive, so no backtracking), everything but the
brackets is deleted with ``bytes.translate``, and innermost ``[]``/``{}`` pairs are removed once per
allowed level: what remains after ``max_depth`` passes is nesting deeper than allowed (a JSON bomb of a
million nested arrays costs ``max_depth`` linear passes, then is refused). The element count is bounded by
counting separators. Only then does orjson parse (itself Rust, with its own recursion limit).

Kept: ``name``, ``description``, ``image`` (or ``image_url``, or inline SVG ``image_data`` as a data:
URL), ``animation_url``, ``external_url`` (or ``external_link``), each a string capped in length; media
URLs go through :func:`uris.display_url` (ipfs/ar through a gateway, ``javascript:`` and friends
dropped). ``attributes`` (or ``traits``) stay raw, in whatever shape, for trait normalisation. The stored
``metadata`` is the document itself when it serialises within ``MAX_STORED_BYTES``, else only the kept
fields; NUL characters, which PostgreSQL's jsonb refuses, are stripped from every string.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from mintplane.catalog.metadata.failures import PermanentFailure
from mintplane.catalog.metadata.uris import UriRules, display_url

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
MAX_NAME = 512
MAX_DESCRIPTION = 20_000
MAX_URL = 2048
MAX_SVG = 48 * 1024  # stays under display_url's 64 KiB data: limit once base64-encoded
MAX_STORED_BYTES = 256 * 1024


@dataclass(frozen=True)
class JsonLimits:
    max_depth: int = 32
    max_elements: int = 50_000


@dataclass(frozen=True)
class Metadata:
    """What a token's document says, ready for its row."""

    name: str | None
    description: str | None
    image_url: str | None
    animation_url: str | None
    external_url: str | None
    attributes: Any = None  # as the document has them (list, object or absent)
    document: dict[str, Any] = field(default_factory=dict)  # the stored (possibly reduced) document


def check_structure(body: bytes, limits: JsonLimits) -> None:
    """Refuse documents nested deeper than ``max_depth`` or with more than ``max_elements`` values."""
    skeleton = _STRING.sub(b'""', body)
    elements = skeleton.count(b",") + skeleton.count(b":") + 1
    if elements > limits.max_elements:
        raise PermanentFailure(f"JSON has more than {limits.max_elements} elements")
    brackets = skeleton.translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= limits.max_depth:
        return
    for _ in range(limits.max_depth):
        reduced = _PAIR.sub(b"", brackets)
        if not reduced:
            return
        if reduced == brackets:  # mismatched brackets: the parser will say it is not JSON
            return
        brackets = reduced
    raise PermanentFailure(f"JSON nested deeper than {limits.max_depth} levels")


def parse_json(body: bytes, limits: JsonLimits) -> dict[str, Any]:
    """The document as a JSON object; PermanentFailure with a short reason otherwise."""
    body = body.removeprefix(b"\xef\xbb\xbf").strip()
    if not body:
        raise PermanentFailure("document is empty")
    check_structure(body, limits)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        text = str(exc)
        if "recursion" in text.lower():
            raise PermanentFailure(f"JSON nested deeper than {limits.max_depth} levels") from None
        raise PermanentFailure(f"not valid JSON: {text.split(':', 1)[0][:80]}") from None
    if not isinstance(data, dict):
        raise PermanentFailure(f"document is a JSON {type(data).__name__.replace('dict', 'object')}, not an object")
    return data


def extract(data: dict[str, Any], rules: UriRules) -> Metadata:
    """The stored fields of a parsed document (never raises: odd fields are simply left out)."""
    clean = _scrub(data)
    assert isinstance(clean, dict)
    attributes = clean.get("attributes", clean.get("traits"))  # any shape: trait normalisation decides
    meta = Metadata(
        name=_text(clean.get("name"), MAX_NAME),
        description=_text(clean.get("description"), MAX_DESCRIPTION),
        image_url=display_url(clean.get("image", clean.get("image_url")), rules, MAX_URL) or _svg(clean),
        animation_url=display_url(clean.get("animation_url"), rules, MAX_URL),
        external_url=_external(clean.get("external_url", clean.get("external_link")), rules),
        attributes=attributes,
        document=clean,
    )
    if len(orjson.dumps(clean)) > MAX_STORED_BYTES:
        reduced = {k: clean[k] for k in ("name", "description", "image", "image_url", "animation_url",
                                         "external_url") if k in clean and isinstance(clean[k], str)}
        reduced = {k: v[:MAX_DESCRIPTION] for k, v in reduced.items()}
        reduced["attributes"] = attributes if len(orjson.dumps(attributes)) <= MAX_STORED_BYTES // 2 else None
        reduced["_truncated"] = True
        meta = Metadata(meta.name, meta.description, meta.image_url, meta.animation_url, meta.external_url,
                        reduced["attributes"], reduced)
    return meta


def _text(value: Any, limit: int) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] or None


def _svg(document: dict[str, Any]) -> str | None:
    """OpenSea's ``image_data`` (inline SVG) as a data: URL, when there is no image URL."""
    svg = document.get("image_data")
    if not isinstance(svg, str) or not svg.lstrip().startswith("<svg") or len(svg) > MAX_SVG:
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _external(value: Any, rules: UriRules) -> str | None:
    url = display_url(value, rules, MAX_URL)
    return None if url is None or url.startswith("data:") else url


def _scrub(value: Any) -> Any:
    """The document without NUL characters (jsonb refuses ``\\u0000``); depth is bounded by check_structure."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value

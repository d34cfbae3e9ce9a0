"""Cleaning and limits for the free-text and URL fields users control (profiles, preferences).

These strings are rendered by web and mobile front ends next to other users' content, so what is stored
must not be able to reorder or hide text around it: control characters (C0/C1) and invisible format
characters (bidi overrides and isolates, BOM, soft hyphen...) are removed, except ZWJ/ZWNJ which emoji
sequences and several scripts need. Text is NFC-normalized so equal-looking strings are equal; limits
count code points after cleaning and are refused, never silently truncated.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import zoneinfo
from functools import lru_cache
from urllib.parse import urlsplit

from mintplane.common.errors import InvalidArgument

DISPLAY_NAME_MAX = 50
BIO_MAX = 500
URL_MAX = 2048
SOCIAL_VALUE_MAX = 100
SOCIALS_MAX = 10
SOCIAL_NETWORKS: frozenset[str] = frozenset(
    {"x", "instagram", "discord", "telegram", "github", "youtube", "tiktok", "farcaster", "lens", "website"}
)

_KEEP_FORMAT = {"\u200c", "\u200d"}  # ZWNJ, ZWJ
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def clean_text(value: str, *, multiline: bool = False) -> str:
    """NFC, without control or invisible format characters; newlines/tabs kept only when multiline."""
    kept: list[str] = []
    for char in unicodedata.normalize("NFC", value):
        category = unicodedata.category(char)
        if char in "\n\t" and multiline:
            kept.append(char)
        elif category == "Cc" or (category == "Cf" and char not in _KEEP_FORMAT) or category in ("Cs", "Co"):
            continue
        else:
            kept.append(char)
    text = "".join(kept).strip()
    if multiline:
        text = re.sub(r"\n{3,}", "\n\n", text)
    return text


def bounded_text(field: str, value: str, limit: int, *, multiline: bool = False) -> str:
    text = clean_text(value, multiline=multiline)
    if len(text) > limit:
        raise InvalidArgument(f"{field} may be at most {limit} characters, got {len(text)}")
    return text


def https_url(field: str, value: str) -> str:
    """An absolute https URL on a public host name. Never fetched here; refused rather than repaired."""
    url = value.strip()
    if not url:
        return ""
    if len(url) > URL_MAX:
        raise InvalidArgument(f"{field} may be at most {URL_MAX} characters")
    if any(unicodedata.category(c)[0] in "CZ" for c in url):
        raise InvalidArgument(f"{field} may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise InvalidArgument(f"{field} is not a valid URL") from exc
    if parts.scheme.lower() != "https":
        raise InvalidArgument(f"{field} must be an https:// URL")
    if not host:
        raise InvalidArgument(f"{field} must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(f"{field} may not carry credentials")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise InvalidArgument(f"{field} must point at a public host")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host:
            raise InvalidArgument(f"{field} must point at a public host") from None
    else:
        if not ip.is_global:
            raise InvalidArgument(f"{field} must point at a public host")
    return url


def socials(values: dict[str, str]) -> dict[str, str]:
    """Known networks only; handles cleaned and bounded; the website must be an https URL."""
    if len(values) > SOCIALS_MAX:
        raise InvalidArgument(f"socials may have at most {SOCIALS_MAX} entries")
    result: dict[str, str] = {}
    for raw_key, raw_value in values.items():
        key = raw_key.strip().lower()
        if key == "twitter":
            key = "x"
        if key not in SOCIAL_NETWORKS:
            raise InvalidArgument(f"socials: unknown network {raw_key!r}; known: {', '.join(sorted(SOCIAL_NETWORKS))}")
        if key == "website":
            value = https_url("socials.website", raw_value)
        else:
            value = bounded_text(f"socials.{key}", raw_value, SOCIAL_VALUE_MAX)
            if any(c.isspace() for c in value):
                raise InvalidArgument(f"socials.{key} may not contain spaces")
        if value:
            result[key] = value
    return result


def language_tag(field: str, value: str, *, limit: int = 10) -> str:
    tag = value.strip()
    if tag and (len(tag) > limit or not _BCP47.match(tag)):
        raise InvalidArgument(f"{field} must be a BCP 47 language tag of at most {limit} characters, e.g. en-US")
    return tag


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def time_zone(value: str) -> str:
    zone = value.strip()
    if zone and (len(zone) > 50 or zone not in _time_zones()):
        raise InvalidArgument("timezone must be an IANA time zone name, e.g. Europe/Berlin")
    return zone


def currency(value: str) -> str:
    code = value.strip().upper()
    if code and not _CURRENCY.match(code):
        raise InvalidArgument("currency must be an ISO 4217 code, e.g. USD")
    return code

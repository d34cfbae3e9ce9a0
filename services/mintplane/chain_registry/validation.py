"""Input rules of the registry: each checker normalises one value or records why it is refused.

Checks collect into :class:`Problems` instead of raising at the first one, so a caller (usually the
operator, echoing a custom resource) sees every bad field of a request in one INVALID_ARGUMENT message.
Messages start with the request field path and never echo a value that may hold a credential.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from eth_utils.address import is_checksum_address

from mintplane.chain_registry.errors import Invalid

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
ZERO_ADDRESS = "0x" + "0" * 40

_CAIP2 = re.compile(r"^(?P<namespace>[-a-z0-9]{3,8}):(?P<reference>[-_a-zA-Z0-9]{1,32})$")
_DECIMAL_REFERENCE = re.compile(r"^[1-9][0-9]*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_FEATURE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_DECIMAL = re.compile(r"^(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?$")
_SECRET_REF = re.compile(
    r"^secret://(?P<namespace>[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)"
    r"/(?P<name>[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?)"
    r"/(?P<key>[-._a-zA-Z0-9]{1,253})$"
)
# An HTTP field name (RFC 9110 token), 1-64 characters: also a query parameter name that needs no escaping.
_AUTH_PARAM = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
# Headers that frame or route the request: a key sent under one of these names would break the call.
_RESERVED_HEADERS = frozenset({
    "host", "content-length", "content-type", "content-encoding", "transfer-encoding", "connection",
    "keep-alive", "te", "trailer", "upgrade", "expect",
})
# A path segment that looks like an API key: long, token-like, mixing letters and digits (Infura's
# /v3/<32 hex>, Alchemy's /v2/<key>, QuickNode's /<token>/, Blast's /<uuid>).
_KEYLIKE_SEGMENT = re.compile(r"^(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,}$")
_SECRET_PARAM = re.compile(r"(?i)(key|token|secret|pass(word)?|pwd|auth|signature|sig|credential)")
_URL_IN_TEXT = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+")
_KEYLIKE_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z_-])(?!0x)(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{24,}"
)

RPC_SCHEMES = frozenset({"http", "https", "ws", "wss"})
MAX_URL_LENGTH = 2048
MAX_ERROR_LENGTH = 1024
REDACTED = "[redacted]"


class Problems:
    """Accumulates refusals for one request; :meth:`raise_if_any` turns them into INVALID_ARGUMENT."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(f"{field}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise Invalid(self.items)


def caip2(problems: Problems, field: str, value: str) -> tuple[str, int] | None:
    """A CAIP-2 id of an EVM chain and its numeric chain id, which must fit chains.chain_numeric."""
    if not value:
        problems.add(field, "is required (a CAIP-2 chain id such as eip155:1)")
        return None
    match = _CAIP2.match(value)
    if match is None:
        problems.add(field, f"{value[:80]!r} is not a CAIP-2 chain id (namespace:reference, e.g. eip155:1)")
        return None
    if match["namespace"] != "eip155":
        problems.add(field, f"only eip155 chains are supported, not namespace {match['namespace']!r}")
        return None
    if not _DECIMAL_REFERENCE.match(match["reference"]):
        problems.add(field, f"{value!r}: the eip155 reference must be a positive decimal without leading zeros")
        return None
    numeric = int(match["reference"])
    if numeric > INT32_MAX:
        problems.add(field, f"chain id {numeric} is above {INT32_MAX}, the largest the registry stores")
        return None
    return value, numeric


def chain_numeric(problems: Problems, field: str, value: int, expected: int | None) -> None:
    """chain_numeric is optional on input (0 = derive it) but, when given, must agree with the caip2."""
    if value and expected is not None and value != expected:
        problems.add(field, f"{value} contradicts the caip2, whose chain id is {expected}")


def text(problems: Problems, field: str, value: str, *, max_length: int, required: bool = False) -> str | None:
    """Trimmed free text; empty means absent (None) unless required."""
    cleaned = value.strip()
    if not cleaned:
        if required:
            problems.add(field, "is required")
        return None
    if len(cleaned) > max_length:
        problems.add(field, f"is longer than {max_length} characters")
        return None
    if any(ord(ch) < 0x20 for ch in cleaned):
        problems.add(field, "must not contain control characters")
        return None
    return cleaned


def symbol(problems: Problems, field: str, value: str) -> str | None:
    if not value:
        return None
    if len(value) > 16 or not value.isprintable() or any(ch.isspace() for ch in value):
        problems.add(field, "must be 1-16 printable characters without spaces, e.g. ETH")
        return None
    return value


def int_range(problems: Problems, field: str, value: int, *, low: int = 0, high: int = INT32_MAX) -> int | None:
    if value < low or value > high:
        problems.add(field, f"must be between {low} and {high}, got {value}")
        return None
    return value


def features(problems: Problems, field: str, values: list[str]) -> list[str]:
    """Feature flags, deduplicated and sorted so equal sets compare (and store) equal."""
    good: set[str] = set()
    for index, value in enumerate(values):
        if _FEATURE.match(value):
            good.add(value)
        else:
            problems.add(f"{field}[{index}]", f"{value[:80]!r} is not a feature flag (lowercase a-z 0-9 _ . -)")
    if len(good) > 64:
        problems.add(field, "at most 64 feature flags")
    return sorted(good)


def address(problems: Problems, field: str, value: str, *, required: bool = True) -> str | None:
    """An EVM address, lowercased. Mixed case must be a valid EIP-55 checksum: a bad one is a typo."""
    if not value:
        if required:
            problems.add(field, "is required (a 0x-prefixed 20-byte hex address)")
        return None
    if not _ADDRESS.match(value):
        problems.add(field, f"{value[:80]!r} is not a 0x-prefixed 20-byte hex address")
        return None
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        problems.add(field, f"{value} has mixed case but an invalid EIP-55 checksum (a typo?)")
        return None
    lowered = value.lower()
    if lowered == ZERO_ADDRESS:
        problems.add(field, "must not be the zero address")
        return None
    return lowered


def sha256_hex(problems: Problems, field: str, value: str, *, required: bool = True) -> str | None:
    if not value:
        if required:
            problems.add(field, "is required (64 hex characters)")
        return None
    if not _SHA256.match(value):
        problems.add(field, f"{value[:80]!r} is not a hex SHA-256 (64 hex characters)")
        return None
    return value.lower()


def _host(hostname: str, port: int | None) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    return f"{host}:{port}" if port is not None else host


def rpc_url(problems: Problems, field: str, value: str) -> str | None:
    """A JSON-RPC URL without credentials, scheme and host lowercased.

    Credentials in any form are refused, not stripped: a caller that sent one must move it to a Secret,
    and silently storing a key-less URL would hide that its key leaked into a spec. The refusal never
    repeats the URL.
    """
    if not value:
        problems.add(field, "is required")
        return None
    if len(value) > MAX_URL_LENGTH:
        problems.add(field, f"is longer than {MAX_URL_LENGTH} characters")
        return None
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        problems.add(field, "must not contain whitespace or control characters")
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        problems.add(field, "is not a valid URL")
        return None
    scheme = parts.scheme.lower()
    if scheme not in RPC_SCHEMES:
        problems.add(field, f"scheme {parts.scheme or '(none)'!r} is not allowed; use http, https, ws or wss")
        return None
    move = "put the credential in a Secret and set auth_type and auth_secret_ref"
    if "@" in parts.netloc:
        problems.add(field, f"must not carry credentials (user:password@host); {move}")
        return None
    if not parts.hostname:
        problems.add(field, "has no host")
        return None
    if parts.fragment:
        problems.add(field, "must not have a #fragment")
        return None
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_PARAM.search(name):
            problems.add(field, f"query parameter {name[:40]!r} looks like a credential; {move}")
            return None
    if any(_KEYLIKE_SEGMENT.match(segment) for segment in parts.path.split("/")):
        problems.add(field, f"a path segment looks like an API key; pass the URL without it, {move} (API_KEY_PATH)")
        return None
    return urlunsplit((scheme, _host(parts.hostname.lower(), port), parts.path, parts.query, ""))


def explorer_url(problems: Problems, field: str, value: str) -> str | None:
    if not value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in {"http", "https"} or not parts.hostname or "@" in parts.netloc:
        problems.add(field, "must be an http(s) URL without credentials, e.g. https://etherscan.io")
        return None
    if len(value) > MAX_URL_LENGTH or any(ch.isspace() for ch in value):
        problems.add(field, f"must be at most {MAX_URL_LENGTH} characters without whitespace")
        return None
    return value


def secret_ref(problems: Problems, field: str, value: str, *, needed: bool, auth_label: str) -> str | None:
    """Where the credential lives; required exactly when the auth type needs a credential."""
    if not needed:
        if value:
            problems.add(field, f"must be empty when auth_type is {auth_label} (nothing to authenticate with)")
        return None
    if not value:
        problems.add(field, f"is required when auth_type is {auth_label} (secret://<namespace>/<name>/<key>)")
        return None
    if not _SECRET_REF.match(value):
        problems.add(
            field,
            "must be a Kubernetes Secret reference secret://<namespace>/<name>/<key>, "
            "never the credential itself",
        )
        return None
    return value


def auth_param(problems: Problems, field: str, value: str, *, kind: str | None, auth_label: str) -> str | None:
    """The header ("header") or query parameter ("query") name that carries the key; None for other kinds.

    Required exactly for those two kinds, as the ChainEndpoint CRD requires authParam: without it a consumer
    holds a key it cannot send. The name is kept as written (query names are case-sensitive; header names
    are not, so the reserved-header check ignores case).
    """
    if kind is None:
        if value:
            problems.add(field, f"must be empty when auth_type is {auth_label} (only API_KEY_HEADER and "
                                "API_KEY_QUERY name a header or query parameter)")
        return None
    what = "header name, e.g. x-api-key" if kind == "header" else "query parameter name, e.g. apikey"
    if not value:
        problems.add(field, f"is required when auth_type is {auth_label} (the {what})")
        return None
    if not _AUTH_PARAM.match(value):
        problems.add(field, f"must be 1-64 letters, digits or !#$%&'*+.^_`|~- (the {what})")
        return None
    if _KEYLIKE_SEGMENT.match(value):
        problems.add(field, f"looks like an API key, not a {what.split(',')[0]}; the key belongs in the Secret")
        return None
    if kind == "header" and value.lower() in _RESERVED_HEADERS:
        problems.add(field, f"{value!r} is a header HTTP itself uses; the key needs a header of its own")
        return None
    return value


def query_param_absent(problems: Problems, field: str, url: str, name: str) -> None:
    """With API_KEY_QUERY the consumer appends ``name=<key>``: a URL already carrying it would send two."""
    if any(key == name for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)):
        problems.add(field, f"already has the query parameter {name!r}; consumers add it with the key from "
                            "auth_secret_ref, so leave it out of the url")


def decimal_amount(
    problems: Problems, field: str, value: str, *, positive: bool = False, max_fraction: int = 9
) -> Decimal | None:
    """A non-negative base-10 string such as "1.5" (gwei keep at most 9 decimals: 1 wei)."""
    match = _DECIMAL.match(value)
    if match is None:
        problems.add(field, f"{value[:40]!r} is not a non-negative decimal number such as \"1.5\"")
        return None
    if len(match["int"]) > 18:
        problems.add(field, f"{value[:40]!r} is implausibly large")
        return None
    if match["frac"] and len(match["frac"]) > max_fraction:
        problems.add(field, f"has more than {max_fraction} decimal places")
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:  # unreachable after the pattern, kept for safety
        problems.add(field, "is not a decimal number")
        return None
    if positive and amount <= 0:
        problems.add(field, "must be greater than 0")
        return None
    return amount


def page_size(problems: Problems, field: str, value: int, *, default: int = 20, maximum: int = 100) -> int:
    if value < 0:
        problems.add(field, "must not be negative")
        return default
    return min(value or default, maximum)


def redact_credentials(message: str) -> str:
    """Probe errors often quote the URL they called, API key included: strip anything credential-like."""

    def clean_url(match: re.Match[str]) -> str:
        url = match.group(0)
        try:
            parts = urlsplit(url)
        except ValueError:
            return REDACTED
        netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
        netloc = f"{REDACTED}@{netloc}" if "@" in parts.netloc else netloc
        path = "/".join(REDACTED if _KEYLIKE_SEGMENT.match(s) else s for s in parts.path.split("/"))
        query = "&".join(
            f"{k}={REDACTED}" if _SECRET_PARAM.search(k) else (f"{k}={v}" if v else k)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, path, query, ""))

    return _KEYLIKE_IN_TEXT.sub(REDACTED, _URL_IN_TEXT.sub(clean_url, message))


def probe_error(message: str) -> str | None:
    """A probe's failure text, credential-free and bounded (an observation is never refused for length)."""
    cleaned = redact_credentials(message.strip())
    if not cleaned:
        return None
    return cleaned if len(cleaned) <= MAX_ERROR_LENGTH else cleaned[: MAX_ERROR_LENGTH - 1] + "…"

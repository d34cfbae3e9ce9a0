"""Token URIs, from what a contract returns to what the fetcher may request.

A contract's ``tokenURI(id)`` / ``uri(id)`` comes in many forms; each becomes either an inline document
(``data:``) or one https URL to fetch:

- ERC-1155 ``{id}``: replaced by the token id as 64 lowercase hex digits, zero-padded (EIP-1155 "Metadata");
- ``data:[<type>][;base64],<payload>``: base64 or percent-encoded/plain text, decoded here, size-capped;
- ``ipfs://<cid>/<path>`` (also the legacy ``ipfs://ipfs/<cid>``, ``/ipfs/<cid>`` and a bare CID):
  ``<gateway>/ipfs/<cid>/<path>`` through the configured gateways, rotated per attempt so a retry tries
  the next one;
- ``ar://<tx>/<path>``: ``<gateway>/<tx>/<path>`` through the Arweave gateways;
- ``https://``: as is; ``http://`` only for hosts on the explicit allow-list (the dev stack's loopback
  file server), because plain http invites tampering in transit.

Anything else (``ftp:``, ``file:``, ``javascript:``, relative paths, URLs with credentials) is refused
with a reason. The address rules (no private or loopback targets) are the fetcher's: they need DNS.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urlsplit

from mintplane.catalog.metadata.failures import PermanentFailure, size_text

MAX_URI_LENGTH = 16 * 1024 * 1024  # a data: URI returned by a contract, before decoding (the RPC bounds it too)
_CID = re.compile(r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{50,}|[zkf][1-9A-Za-z]{40,})$")
_AR_TX = re.compile(r"^[A-Za-z0-9_-]{43}$")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
JSON_MEDIA_TYPES = frozenset({"application/json", "text/json", "text/plain", "application/octet-stream"})


@dataclass(frozen=True)
class UriRules:
    """What the deployment allows: gateways (https base URLs) and the allow-listed ``host[:port]`` entries."""

    ipfs_gateways: tuple[str, ...] = ("https://ipfs.io",)
    arweave_gateways: tuple[str, ...] = ("https://arweave.net",)
    allow_hosts: frozenset[str] = frozenset()
    max_bytes: int = 1024 * 1024

    @classmethod
    def of(cls, ipfs: Iterable[str], arweave: Iterable[str], allow_hosts: Iterable[str], max_bytes: int) -> UriRules:
        return cls(tuple(g.rstrip("/") for g in ipfs if g), tuple(g.rstrip("/") for g in arweave if g),
                   frozenset(h.strip().lower() for h in allow_hosts if h.strip()), max_bytes)

    def allowed(self, host: str, port: int | None) -> bool:
        """Is ``host`` (with the URL's explicit port, if any) on the allow-list? ``host`` alone matches any port."""
        host = host.lower().strip("[]")
        entries = {host, f"[{host}]"}
        if port is not None:
            entries |= {f"{host}:{port}", f"[{host}]:{port}"}
        return not self.allow_hosts.isdisjoint(entries)


@dataclass(frozen=True)
class InlineDocument:
    """A ``data:`` URI's decoded payload and its media type."""

    body: bytes
    media_type: str


@dataclass(frozen=True)
class RemoteDocument:
    """An http(s) URL the fetcher requests (after its own address checks)."""

    url: str


Target = InlineDocument | RemoteDocument


def is_json_media_type(media_type: str) -> bool:
    """JSON, or a type gateways commonly serve JSON under (text/plain, application/octet-stream), or +json."""
    media_type = media_type.split(";", 1)[0].strip().lower()
    return media_type in JSON_MEDIA_TYPES or media_type.endswith("+json")


def substitute_id(uri: str, token_number: str) -> str:
    """EIP-1155: every ``{id}`` becomes the id as 64 lowercase hex digits, zero-padded."""
    if "{id}" not in uri:
        return uri
    return uri.replace("{id}", format(int(token_number), "064x"))


def document_target(uri: str, token_number: str, standard: str, rules: UriRules, attempt: int = 0) -> Target:
    """Where a token's metadata document is, given the URI its contract returned.

    ``attempt`` picks the gateway (attempt n uses gateway n modulo their number). PermanentFailure when
    the URI cannot be fetched at all.
    """
    uri = uri.strip()
    if not uri:
        raise PermanentFailure("the contract returned an empty token URI")
    if standard == "ERC1155":
        uri = substitute_id(uri, token_number)
    lowered = uri[:8].lower()
    if lowered.startswith("data:"):
        return decode_data_uri(uri, rules.max_bytes)
    url = gateway_url(uri, rules, attempt)
    if url is None:
        scheme = urlsplit(uri).scheme
        if scheme:
            raise PermanentFailure(f"unsupported URI scheme {scheme[:20]!r}")
        raise PermanentFailure("token URI is not an absolute URL")
    return RemoteDocument(check_http_url(url, rules))


def gateway_url(uri: str, rules: UriRules, attempt: int = 0) -> str | None:
    """The http(s) URL for an ipfs/ar/http(s) URI (gateway chosen by ``attempt``); None for other forms."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return uri
    if scheme == "ipfs":
        rest = uri[len("ipfs://"):] if uri[:7].lower() == "ipfs://" else uri[len("ipfs:"):]
        rest = rest.lstrip("/")
        if rest[:5].lower() == "ipfs/":
            rest = rest[5:]
        return _ipfs(rest, _pick(rules.ipfs_gateways, attempt, "IPFS"))
    if scheme == "ar":
        rest = uri[len("ar://"):] if uri[:5].lower() == "ar://" else uri[len("ar:"):]
        tx, sep, path = rest.lstrip("/").partition("/")
        if not _AR_TX.match(tx):
            raise PermanentFailure("ar:// URI does not name an Arweave transaction")
        return f"{_pick(rules.arweave_gateways, attempt, 'Arweave')}/{tx}{_path(sep + path)}"
    if not scheme:
        if uri.startswith("/ipfs/"):
            return _ipfs(uri[len("/ipfs/"):], _pick(rules.ipfs_gateways, attempt, "IPFS"))
        cid = uri.split("/", 1)[0].split("?", 1)[0]
        if _CID.match(cid):
            return _ipfs(uri, _pick(rules.ipfs_gateways, attempt, "IPFS"))
    return None


def display_url(uri: object, rules: UriRules, max_length: int = 2048) -> str | None:
    """An image/animation/external URL as clients should load it: ipfs/ar through the first gateway,
    http(s) as is, ``data:image/...`` kept when short; anything else (``javascript:``...) dropped."""
    if not isinstance(uri, str):
        return None
    uri = uri.strip()
    if not uri:
        return None
    if uri[:11].lower().startswith("data:image/"):
        return uri if len(uri) <= 64 * 1024 else None
    try:
        url = gateway_url(uri, rules)
    except PermanentFailure:
        return None
    if url is None or len(url) > max_length:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def check_http_url(url: str, rules: UriRules) -> str:
    """``url`` if the fetcher may request it: http(s), a host, no credentials, http only when allow-listed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise PermanentFailure("URL is malformed (bad port or host)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise PermanentFailure(f"unsupported URI scheme {scheme[:20]!r}")
    if not parts.hostname:
        raise PermanentFailure("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise PermanentFailure("URL carries credentials")
    if scheme == "http" and not rules.allowed(parts.hostname, port):
        raise PermanentFailure(f"plain http to {parts.hostname} is not allowed (https only)")
    if len(url) > 8192:
        raise PermanentFailure("URL longer than 8192 characters")
    return url


def decode_data_uri(uri: str, max_bytes: int) -> InlineDocument:
    """RFC 2397: ``data:[<media type>][;base64],<data>``; the payload percent-decoded or base64-decoded."""
    if len(uri) > MAX_URI_LENGTH:
        raise PermanentFailure(f"data: URI larger than {size_text(MAX_URI_LENGTH)}")
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        raise PermanentFailure("malformed data: URI (no comma)")
    params = [p.strip() for p in header.split(";")]
    is_base64 = params[-1].lower() == "base64"
    media_type = params[0].lower() or "text/plain"
    if not is_json_media_type(media_type):
        raise PermanentFailure(f"data: URI holds {media_type[:60]}, not a JSON document")
    if is_base64:
        if len(payload) > (max_bytes * 4) // 3 + 4 * 1024 * 3:
            raise PermanentFailure(f"body larger than {size_text(max_bytes)}")
        body = _b64(payload)
    else:
        body = unquote_to_bytes(payload)
    if len(body) > max_bytes:
        raise PermanentFailure(f"body larger than {size_text(max_bytes)}")
    return InlineDocument(body, media_type)


def _b64(payload: str) -> bytes:
    text = unquote_to_bytes(payload).translate(None, b" \t\r\n")
    text += b"=" * (-len(text) % 4)
    try:
        if b"-" in text or b"_" in text:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PermanentFailure("data: URI is not valid base64") from None


def _ipfs(rest: str, gateway: str) -> str:
    cid, sep, path = rest.partition("/")
    cid, qmark, query = cid.partition("?")
    if not cid or not cid.isalnum():
        raise PermanentFailure("ipfs:// URI does not name a CID")
    suffix = _path(sep + path) if sep else ""
    if qmark:
        suffix += "?" + quote(query, safe=_QUERY_SAFE)
    return f"{gateway}/ipfs/{cid}{suffix}"


def _path(path: str) -> str:
    return quote(path, safe=_QUERY_SAFE)


def _pick(gateways: Sequence[str], attempt: int, kind: str) -> str:
    if not gateways:
        raise PermanentFailure(f"no {kind} gateway is configured")
    return gateways[attempt % len(gateways)]

"""How an RPC endpoint's credential is attached to a request: the one implementation the operator's prober
and the indexer share, so a key that works in a probe is sent the same way when indexing.

The names are the chain registry's (``EndpointAuthType`` without its prefix, lower case), because the
registry is what services read; the operator maps its ChainEndpoint ``authType`` names onto them.

The key only ever lives in the request this module builds. Everything that may reach a status, an event
or a log keeps to the URL the registry stores (which never carries the key) and passes its error texts
through :func:`redact`, which knows every form the key takes on the wire.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"

# An HTTP field name (RFC 9110 token), 1-64 characters, as the registry and the CRD accept for authParam.
_PARAM = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AuthType(StrEnum):
    """chain_endpoints.auth_type: how the key travels (mirrors the registry's EndpointAuthType)."""

    NONE = "none"
    API_KEY_PATH = "api_key_path"  # last path segment, Alchemy/Infura style
    API_KEY_HEADER = "api_key_header"  # the header named by the endpoint's auth_param
    API_KEY_QUERY = "api_key_query"  # the query parameter named by the endpoint's auth_param
    BEARER = "bearer"  # Authorization: Bearer <key>
    BASIC = "basic"  # Authorization: Basic base64("user:password"); the key is "user:password"


_NAMES = frozenset(a.value for a in AuthType)
# Auth types whose key travels under a name the endpoint chooses (its auth_param).
NAMED = frozenset({AuthType.API_KEY_HEADER, AuthType.API_KEY_QUERY})
_PARAM_KIND = {AuthType.API_KEY_HEADER: "header", AuthType.API_KEY_QUERY: "query parameter"}


@dataclass(frozen=True, slots=True)
class Credential:
    """A key and how to send it; ``param`` names the header or query parameter for the named types."""

    auth_type: AuthType
    value: str = field(repr=False)
    param: str = ""


def request_target(url: str, credential: Credential | None) -> tuple[str, dict[str, str]]:
    """The URL and headers of a request to ``url`` carrying the credential.

    ValueError (whose text never contains the key) when the credential cannot be sent as described.
    """
    if credential is None or credential.auth_type == AuthType.NONE:
        return url, {}
    kind, value = credential.auth_type, credential.value
    check_shape(kind, credential.param)
    _check_value(kind, value)
    if kind == AuthType.BEARER:
        return url, {"Authorization": f"Bearer {value}"}
    if kind == AuthType.BASIC:
        return url, {"Authorization": f"Basic {_basic_token(value)}"}
    if kind == AuthType.API_KEY_HEADER:
        return url, {credential.param: value}
    parts = urlsplit(url)
    if kind == AuthType.API_KEY_QUERY:  # after the URL's own parameters, before any #fragment
        query = "&".join(q for q in (parts.query, urlencode({credential.param: value})) if q)
        return urlunsplit(parts._replace(query=query)), {}
    # API_KEY_PATH: one more path segment, quoted so a "/" or "?" in the key stays inside it
    path = f"{parts.path.rstrip('/')}/{quote(value, safe='')}"
    return urlunsplit(parts._replace(path=path)), {}


def check_shape(auth_type: str, param: str) -> None:
    """What can be checked without the key: a known auth type, and a valid name where one is needed.

    Lets a consumer report a misconfigured endpoint before it goes looking for the key.
    """
    if auth_type not in _NAMES:
        raise ValueError(f"unknown auth type {auth_type!r} (one of {', '.join(AuthType)})")
    if auth_type in NAMED:
        what = _PARAM_KIND[AuthType(auth_type)]
        if not param:
            raise ValueError(f"auth type {auth_type} needs auth_param (authParam in a ChainEndpoint): "
                             f"the name of the {what} that carries the key")
        if not _PARAM.fullmatch(param):
            raise ValueError(f"auth_param {param!r} is not a valid {what} name "
                             "(1-64 letters, digits or !#$%&'*+.^_`|~-)")


def _check_value(auth_type: str, value: str) -> None:
    if not value:
        raise ValueError(f"auth type {auth_type} needs a key, and the key is empty")
    if _CONTROL.search(value):
        raise ValueError("the key contains a line break or another control character "
                         "(often a trailing newline in the file the Secret was made from)")


def _basic_token(value: str) -> str:
    user, _, password = value.partition(":")
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def secret_forms(credential: Credential | None) -> tuple[str, ...]:
    """Every form in which the key can show up in a URL, a header or an error message, longest first."""
    if credential is None or credential.auth_type == AuthType.NONE or not credential.value:
        return ()
    value = credential.value
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    if credential.auth_type == AuthType.BASIC:
        password = value.partition(":")[2]
        forms |= {_basic_token(value), password, quote(password, safe=""), quote_plus(password)}
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


def redact(text: str, forms: Iterable[str]) -> str:
    """``text`` with every form of the key (see :func:`secret_forms`) replaced by ``***``."""
    for form in forms:
        if form:
            text = text.replace(form, MASK)
    return text

"""JSON-RPC over HTTP to one endpoint, with the failure classes its callers act on (the indexer's log
reads, the catalog's batched ``eth_call`` metadata reads).

Three kinds of failure, because each calls for a different reaction:

- :class:`RangeTooLarge`: the provider refused an ``eth_getLogs`` because of its range or result size
  ("query returned more than 10000 results", "Log response size exceeded", "block range is too wide",
  HTTP 413...). The caller splits the range; the endpoint is fine. A hint range ("this block range
  should work: [0x1, 0x2]") is parsed when the provider gives one;
- :class:`EndpointFailure`: transport errors, timeouts, HTTP 5xx/429, malformed responses. The endpoint
  pool cools the endpoint down and fails over to the next;
- :class:`RpcError`: any other JSON-RPC error object; surfaced as is.

The URL and headers may carry the endpoint's key, and every error text here ends up in status and logs:
texts built from a transport exception or from the node's own error message have the key's forms
(``masks``) blanked out, and redirects are refused rather than followed (a redirect would take the key
to wherever the endpoint points, and the exception describing it would quote that URL).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any

import aiohttp

from mintplane.common.endpoint_auth import redact

_TOO_LARGE = re.compile(
    r"more than \d+ results|response size|too many (results|logs|blocks)|range (is )?too (large|wide|big)"
    r"|block range|exceed(s|ed)? (the )?max|limit exceeded|response is too big|query timeout|too large"
    r"|logs? (limit|size)",
    re.IGNORECASE,
)
_HINT = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")


class RpcError(Exception):
    """A JSON-RPC error object returned by the node."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"json-rpc error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class RangeTooLarge(RpcError):
    """The node refused the request for its size; `hint` is a (from, to) range it says would work."""

    def __init__(self, code: int, message: str, hint: tuple[int, int] | None = None) -> None:
        super().__init__(code, message)
        self.hint = hint


class EndpointFailure(Exception):
    """The endpoint could not answer (transport, timeout, HTTP status, malformed body)."""

    def __init__(self, message: str, *, rate_limited: bool = False, timed_out: bool = False) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited
        self.timed_out = timed_out


def classify_error(error: dict[str, Any]) -> RpcError:
    code = int(error.get("code", 0))
    message = str(error.get("message", ""))
    data = error.get("data")
    text = f"{message} {data}" if data is not None else message
    if code == -32005 or _TOO_LARGE.search(text):
        hint_match = _HINT.search(text)
        hint = (int(hint_match[1], 16), int(hint_match[2], 16)) if hint_match else None
        return RangeTooLarge(code, message, hint)
    return RpcError(code, message, data)


def _transport_error(exc: aiohttp.ClientError) -> str:
    """What went wrong, without the URL some aiohttp errors quote (re-encoded, so masks cannot find the key)."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.InvalidURL):  # its text is the URL itself
        return f"{name}: the endpoint URL cannot be requested"
    if isinstance(exc, aiohttp.ClientResponseError):  # its text ends with url=...
        return f"{name}: {exc.status} {exc.message}".rstrip()
    return f"{name}: {exc}"


class JsonRpcClient:
    """Posts JSON-RPC requests (single or batched) to one URL. Stateless apart from the request id."""

    def __init__(self, session: aiohttp.ClientSession, url: str, *, timeout: float,
                 headers: dict[str, str] | None = None, masks: Sequence[str] = ()) -> None:
        self._session = session
        self.url = url
        self._masks = tuple(masks)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._next_id = 0

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        payload = {"jsonrpc": "2.0", "id": self._id(), "method": method, "params": list(params)}
        body = await self._post(payload)
        if not isinstance(body, dict):
            raise EndpointFailure(f"{method}: response is not a JSON-RPC object")
        if body.get("error") is not None:
            raise classify_error(self._masked(body["error"]))
        if "result" not in body:
            raise EndpointFailure(f"{method}: response has neither result nor error")
        return body["result"]

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send calls as one JSON-RPC batch; results in call order. Any error object raises."""
        results = await self.batch_each(calls)
        for item in results:
            if isinstance(item, RpcError):
                raise item
        return results

    async def batch_each(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send calls as one JSON-RPC batch; per call, its result or its :class:`RpcError` (not raised).

        For batches whose calls fail independently (an ``eth_call`` that reverts for one token says
        nothing about the next); a transport failure still raises :class:`EndpointFailure`.
        """
        if not calls:
            return []
        first = self._id()
        self._next_id += len(calls) - 1
        payload = [
            {"jsonrpc": "2.0", "id": first + i, "method": method, "params": list(params)}
            for i, (method, params) in enumerate(calls)
        ]
        body = await self._post(payload)
        if not isinstance(body, list):
            if isinstance(body, dict) and body.get("error") is not None:
                raise classify_error(self._masked(body["error"]))
            raise EndpointFailure("batch response is not a list")
        by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
        results: list[Any] = []
        for i in range(len(calls)):
            item = by_id.get(first + i)
            if item is None:
                raise EndpointFailure(f"batch response lacks id {first + i}")
            if item.get("error") is not None:
                results.append(classify_error(self._masked(item["error"])))
            else:
                results.append(item.get("result"))
        return results

    def _masked(self, error: Any) -> dict[str, Any]:
        """The node's error object with the key blanked out (some providers echo the request URL)."""
        if not isinstance(error, dict):
            return {"code": 0, "message": redact(str(error), self._masks)}
        if not self._masks:
            return error
        return {key: redact(value, self._masks) if isinstance(value, str) else value for key, value in error.items()}

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _post(self, payload: Any) -> Any:
        try:
            async with self._session.post(
                self.url, data=json.dumps(payload), headers=self._headers, timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                if 300 <= response.status < 400:
                    raise EndpointFailure(f"HTTP {response.status}: the endpoint redirects; redirects are not "
                                          "followed because requests carry its key")
                if response.status == 413:
                    raise RangeTooLarge(413, "request or response too large (HTTP 413)")
                if response.status == 429:
                    raise EndpointFailure("rate limited (HTTP 429)", rate_limited=True)
                if response.status >= 400:
                    raise EndpointFailure(f"HTTP {response.status}")
                raw = await response.read()
        except TimeoutError:
            raise EndpointFailure(f"timed out after {self._timeout.total}s", timed_out=True) from None
        except aiohttp.ClientError as exc:
            raise EndpointFailure(redact(_transport_error(exc), self._masks)) from None
        except asyncio.CancelledError:
            raise
        try:
            return json.loads(raw)
        except ValueError:
            raise EndpointFailure("response is not JSON") from None

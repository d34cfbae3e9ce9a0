"""Client of an IPFS node's RPC API (kubo's `/api/v0`): add-and-pin, unpin, pin status, version.

Locally that is the dev stack's offline kubo; in a cluster any endpoint speaking the same RPC (a kubo
StatefulSet, a hosted RPC gateway) with an optional Authorization header taken from a Secret. Every add
states the importer parameters explicitly (CIDv1, raw leaves, 256 KiB chunks, 174 links), so the node
computes the CID `mintplane.media.cid` computed, whatever its own defaults; the caller compares the two.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from mintplane.common.errors import Unavailable
from mintplane.media import cid as cids

ADD_PARAMS = {
    "cid-version": "1", "raw-leaves": "true", "chunker": f"size-{cids.CHUNK_SIZE}",
    "max-file-links": str(cids.MAX_LINKS), "hash": "sha2-256", "progress": "false", "quieter": "true",
}


class IpfsError(Unavailable):
    """The IPFS node could not be reached or refused the call (retryable: processing jobs retry)."""


class IpfsClient:
    def __init__(self, api_url: str, *, authorization: str | None = None, timeout: float = 300.0) -> None:
        self._base = api_url.rstrip("/") + "/api/v0"
        self._headers = {"Authorization": authorization} if authorization else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, command: str, params: dict[str, str], data: Any = None) -> list[dict[str, Any]]:
        """POST one RPC command; kubo answers one JSON object, or newline-delimited objects for streams."""
        try:
            async with self._http().post(f"{self._base}/{command}", params=params, data=data) as response:
                body = await response.text()
                if response.status != 200:
                    try:
                        message = json.loads(body).get("Message", body)
                    except ValueError:
                        message = body
                    raise IpfsError(f"IPFS node refused {command}: {str(message)[:200]}")
        except aiohttp.ClientError as exc:
            # The URL is configuration, not a secret; the auth header never appears in the message.
            raise IpfsError(f"IPFS node unreachable at {self._base}: {type(exc).__name__}") from exc
        except TimeoutError as exc:
            raise IpfsError(f"IPFS node did not answer {command} in time") from exc
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    async def add(self, data: bytes, *, pin: bool = True, only_hash: bool = False) -> str:
        """Add the bytes as one UnixFS file and return its CID (pinned unless `pin` is false)."""
        form = aiohttp.FormData()
        form.add_field("file", data, filename="blob", content_type="application/octet-stream")
        params = {**ADD_PARAMS, "pin": str(pin and not only_hash).lower(), "only-hash": str(only_hash).lower()}
        results = await self._call("add", params, form)
        if not results or "Hash" not in results[-1]:
            raise IpfsError("IPFS node answered add without a CID")
        return cids.parse(str(results[-1]["Hash"]))

    async def unpin(self, cid: str) -> None:
        try:
            await self._call("pin/rm", {"arg": cid})
        except IpfsError as exc:
            if "not pinned" not in exc.message:
                raise

    async def is_pinned(self, cid: str) -> bool:
        try:
            results = await self._call("pin/ls", {"arg": cid, "type": "recursive"})
        except IpfsError as exc:
            if "not pinned" in exc.message:
                return False
            raise
        return any(cid in result.get("Keys", {}) for result in results)

    async def cat(self, cid: str) -> bytes:
        """The file's bytes as the node has them (offline: only what it holds)."""
        try:
            async with self._http().post(f"{self._base}/cat", params={"arg": cid, "offline": "true"}) as response:
                if response.status != 200:
                    raise IpfsError(f"IPFS node refused cat: {(await response.text())[:200]}")
                return await response.read()
        except aiohttp.ClientError as exc:
            raise IpfsError(f"IPFS node unreachable at {self._base}: {type(exc).__name__}") from exc

    async def version(self) -> str:
        results = await self._call("version", {})
        return str(results[0].get("Version", "?"))

"""The SSRF-safe document fetcher: a token URI is attacker-chosen, so every request is treated as hostile.

Why aiohttp (and not httpx): aiohttp lets the connector take a custom resolver, and it connects to exactly
the addresses that resolver returns. :class:`VettingResolver` resolves a host once, refuses it when any
address is private, loopback, link-local, multicast, reserved, unspecified, CGNAT (100.64/10), a cloud
metadata address or an IPv4-mapped/6to4/Teredo form of one, and hands the vetted addresses to the
connector, so there is no second DNS lookup an attacker could answer differently (DNS rebinding). TLS
still verifies the certificate against the host name. IP literals never reach a resolver, so they are
vetted before the request; every redirect hop (followed by hand, at most ``max_redirects``) goes through
the same URL rules and address checks again.

Bounded in every dimension: a per-host concurrency limit (waiting for a slot is not counted against the
document's timeout), connect / total / idle timeouts and a minimum transfer rate (a server dripping a byte
a second is cut off after the grace period), a body cap checked against Content-Length and while
streaming (compressed bodies are inflated here with the cap applied to the output, so a gzip bomb stops at
the cap too), and a content-type check: JSON, plus text/plain and application/octet-stream because IPFS
and Arweave gateways serve JSON documents under those; a missing type is tolerated (the parser decides).

Transient failures (timeouts, too slow, connection errors, 408/429/5xx) raise :class:`TransientFailure`
and the worker retries with backoff; everything else raises :class:`PermanentFailure`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from mintplane.catalog.metadata.failures import PermanentFailure, TransientFailure, size_text
from mintplane.catalog.metadata.uris import UriRules, check_http_url, is_json_media_type

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
                                ipaddress.ip_address("100.100.100.200")})  # AWS/GCP/Azure, AWS IPv6, Alibaba
CGNAT = ipaddress.ip_network("100.64.0.0/10")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "mintplane-metadata/1 (+https://github.com/mintplane)"


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` must not be contacted, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None):
            if embedded is not None and (reason := refusal(embedded)) is not None:
                return f"{reason} (it embeds {embedded})"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in CGNAT, "a shared (CGNAT) address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    return next((why for bad, why in checks if bad), None)


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None


class AddressRefused(OSError):
    """Raised inside the connector's resolve step; :meth:`Fetcher.fetch` turns it into a PermanentFailure."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VettingResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses hosts with any non-public address."""

    def __init__(self, allowed: Callable[[str, int | None], bool]) -> None:
        self._inner = ThreadedResolver()
        self._allowed = allowed

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        infos = await self._inner.resolve(host, port, family)
        if self._allowed(host, port) or self._allowed(host, None):
            return infos
        for info in infos:
            address = _ip(info["host"])
            if address is None:
                raise AddressRefused(f"refused: {host} resolved to something that is not an IP address")
            if (reason := refusal(address)) is not None:
                raise AddressRefused(f"refused: {host} resolves to {address}, {reason}")
        return infos

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    idle_timeout: float = 5.0
    min_bytes_per_second: int = 1024
    min_rate_grace: float = 2.0
    max_bytes: int = 1024 * 1024
    max_redirects: int = 3
    per_host: int = 8
    concurrency: int = 64


@dataclass(frozen=True)
class Fetched:
    body: bytes
    media_type: str
    url: str  # after redirects


class HostSlots:
    """At most ``limit`` requests in flight per host; idle hosts hold no state."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore, users = self._slots.get(host, (asyncio.Semaphore(self._limit), 0))
        self._slots[host] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._slots[host]
            if users <= 1:
                del self._slots[host]
            else:
                self._slots[host] = (semaphore, users - 1)


class Fetcher:
    """Fetches metadata documents; one per process, :meth:`close` it on shutdown."""

    def __init__(self, rules: UriRules, limits: FetchLimits) -> None:
        self.rules = rules
        self.limits = limits
        self._hosts = HostSlots(limits.per_host)
        self._all = asyncio.Semaphore(limits.concurrency)  # = the connector's limit, so it never queues inside
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=VettingResolver(self.rules.allowed),
                                             limit=self.limits.concurrency, ttl_dns_cache=10)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=False,  # no proxies from the environment
                headers={"User-Agent": USER_AGENT, "Accept": "application/json, text/plain;q=0.9, */*;q=0.1",
                         "Accept-Encoding": "gzip, deflate"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str) -> Fetched:
        """The document at ``url`` (http(s)), redirects followed by hand; raises a MetadataFailure.

        ``total_timeout`` covers all hops together, counted from the moment the first one had its slots.
        """
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        for _hop in range(self.limits.max_redirects + 1):
            try:
                parts = urlsplit(url)
                host, port = (parts.hostname or "").lower(), parts.port
            except ValueError:
                raise PermanentFailure("URL is malformed (bad port or host)") from None
            self._vet_literal(host, port)  # first, so a refused address is named as such whatever the scheme
            check_http_url(url, self.rules)
            async with self._hosts.slot(host), self._all:  # waiting for a slot is not the document's time
                if deadline is None:
                    deadline = loop.time() + self.limits.total_timeout
                try:
                    async with asyncio.timeout_at(deadline):
                        outcome = await self._request(url, host)
                except TimeoutError:
                    raise TransientFailure(f"{host} timed out after {self.limits.total_timeout:g} s") from None
            if isinstance(outcome, Fetched):
                return outcome
            url = outcome
        raise PermanentFailure(f"more than {self.limits.max_redirects} redirects")

    def _vet_literal(self, host: str, port: int | None) -> None:
        address = _ip(host)
        if address is None or self.rules.allowed(host, port):
            return
        if (reason := refusal(address)) is not None:
            raise PermanentFailure(f"refused: {address} is {reason}")

    async def _request(self, url: str, host: str) -> Fetched | str:
        """One hop: the document, or the absolute URL a redirect points to."""
        timeout = aiohttp.ClientTimeout(total=None, connect=self.limits.connect_timeout,
                                        sock_read=self.limits.idle_timeout)
        try:
            async with self._client().get(url, allow_redirects=False, timeout=timeout) as response:
                if response.status in REDIRECTS:
                    location = response.headers.get("Location", "")
                    if not location:
                        raise PermanentFailure(f"HTTP {response.status} from {host} without a Location")
                    return urljoin(url, location)
                if response.status in TRANSIENT_STATUSES or response.status >= 500:
                    raise TransientFailure(f"HTTP {response.status} from {host}")
                if response.status >= 300:
                    raise PermanentFailure(f"HTTP {response.status} from {host}")
                media_type = response.headers.get("Content-Type", "")
                if media_type and not is_json_media_type(media_type):
                    raise PermanentFailure(f"content type {media_type.split(';')[0].strip()[:60]} is not JSON")
                length = response.content_length
                if length is not None and length > self.limits.max_bytes:
                    raise PermanentFailure(f"body larger than {size_text(self.limits.max_bytes)} "
                                           f"(Content-Length {length})")
                body = await self._read(response, host)
                return Fetched(body, media_type, url)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                raise PermanentFailure(exc.os_error.reason) from None
            if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
                raise PermanentFailure(f"TLS certificate of {host} is not valid") from None
            if isinstance(exc, aiohttp.ClientConnectorDNSError):
                raise TransientFailure(f"cannot resolve {host}") from None
            raise TransientFailure(f"cannot connect to {host}: {exc.os_error.strerror or type(exc).__name__}") from None
        except aiohttp.ServerTimeoutError:
            raise TransientFailure(f"{host} sent nothing for {self.limits.idle_timeout:g} s") from None
        except ssl.SSLError:
            raise PermanentFailure(f"TLS handshake with {host} failed") from None
        except aiohttp.InvalidURL:
            raise PermanentFailure("URL is malformed") from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise TransientFailure(f"connection to {host} broke: {type(exc).__name__}") from None
        except aiohttp.ClientResponseError as exc:  # malformed status line or headers
            raise PermanentFailure(f"{host} sent a malformed HTTP response ({exc.status})") from None

    async def _read(self, response: aiohttp.ClientResponse, host: str) -> bytes:
        """The body, inflated if encoded, cut at the cap and when the transfer is too slow."""
        cap = self.limits.max_bytes
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        inflater: Any = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            inflater = zlib.decompressobj(wbits=47)  # 32 + 15: zlib or gzip header, detected
        elif encoding not in ("", "identity"):
            raise PermanentFailure(f"unsupported content encoding {encoding[:30]}")
        loop = asyncio.get_running_loop()
        started = loop.time()
        received = 0
        parts: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            received += len(chunk)
            if inflater is not None:
                try:
                    chunk = inflater.decompress(chunk, cap + 1 - size)
                except zlib.error:
                    raise PermanentFailure(f"{host} sent a corrupt {encoding} body") from None
                if inflater.unconsumed_tail:  # more output than the cap allows
                    raise PermanentFailure(f"body larger than {size_text(cap)}")
            size += len(chunk)
            if size > cap:
                raise PermanentFailure(f"body larger than {size_text(cap)}")
            parts.append(chunk)
            elapsed = loop.time() - started
            if (self.limits.min_bytes_per_second and elapsed > self.limits.min_rate_grace
                    and received < self.limits.min_bytes_per_second * elapsed):
                raise TransientFailure(f"{host} is too slow: {received} bytes in {elapsed:.0f} s "
                                       f"(minimum {size_text(self.limits.min_bytes_per_second)}/s)")
        return b"".join(parts)

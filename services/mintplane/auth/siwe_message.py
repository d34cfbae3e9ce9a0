"""EIP-4361 messages: build them for CreateNonce, parse and check them for SignIn (no I/O).

Parsing and field validation are the ``siwe`` library's (its regex parser by default, its ABNF grammar on
request); signatures are checked by mintplane.common.signatures. What siwe leaves to applications is here:
size and character limits (before any parser runs), a byte-for-byte round trip (the text that was signed
is exactly what the parsed fields describe, so the regex parser's leniency cannot smuggle anything), the
domain allow-list, the URI's origin, the chain, and Issued At / Not Before / Expiration Time with a
clock-skew allowance for clients whose clocks run ahead. Nonce checks need the database and live in the
sign-in flow.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from eth_utils.address import to_checksum_address
from pydantic import ValidationError

from mintplane.auth.errors import Outcome, SignInRejected
from mintplane.auth.settings import AuthSettings
from mintplane.common.signatures import eip191_digest, is_eoa_signer

with warnings.catch_warnings():
    # siwe 4.4's grammar redefines RFC 5234 core rules and abnf 2.8 warns about it once, at import.
    warnings.filterwarnings("ignore", message="rule '.*' redefines")
    import siwe

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
CAIP2_EIP155 = re.compile(r"^eip155:([1-9][0-9]{0,18})$")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
MAX_DOMAIN_CHARS = 255
MAX_URI_CHARS = 2048
MAX_STATEMENT_CHARS = 512
MAX_NONCE_CHARS = 64
MAX_CHAIN_ID = 2**63 - 1  # CAIP-2 text must fit varchar(32)


@dataclass(frozen=True, slots=True)
class MessagePolicy:
    """What a deployment accepts in a sign-in message (built once from settings)."""

    allowed_domains: frozenset[str]
    allowed_origins: frozenset[str]
    allowed_chains: frozenset[str]
    clock_skew: timedelta
    max_message_bytes: int
    abnf_parser: bool

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> MessagePolicy:
        return cls(
            allowed_domains=frozenset(settings.auth_allowed_domains),
            allowed_origins=frozenset(o.rstrip("/") for o in settings.auth_allowed_uri_origins),
            allowed_chains=frozenset(settings.auth_allowed_chains),
            clock_skew=timedelta(seconds=settings.auth_clock_skew_seconds),
            max_message_bytes=settings.auth_max_message_bytes,
            abnf_parser=settings.auth_siwe_abnf_parser,
        )


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """A parsed message plus the normalised values the service stores and compares."""

    parsed: siwe.SiweMessage
    text: str
    address: str  # lowercase
    domain: str  # lowercase
    caip2: str
    nonce: str


def normalize_address(value: str) -> str:
    """Lowercase 0x address, or InvalidArgument-worthy ValueError."""
    if not ADDRESS.fullmatch(value):
        raise ValueError("address must be 0x followed by 40 hex digits")
    return value.lower()


def chain_numeric(caip2: str) -> int:
    match = CAIP2_EIP155.fullmatch(caip2)
    if match is None or int(match.group(1)) > MAX_CHAIN_ID:
        raise ValueError(f"chain {caip2[:40]!r} is not a CAIP-2 eip155 chain id such as 'eip155:1'")
    return int(match.group(1))


def is_loopback(host: str) -> bool:
    host = host.lower()
    return host in _LOOPBACK_HOSTS or host.endswith(".localhost")


def default_uri(domain: str) -> str:
    """The origin a domain serves from: https, or http for a loopback host."""
    host = urlsplit(f"//{domain}").hostname or domain
    return f"{'http' if is_loopback(host) else 'https'}://{domain}"


# ------------------------------------------------------------------------------------------- checks


def check_domain(domain: str, policy: MessagePolicy) -> str:
    normalized = domain.lower()
    if normalized not in policy.allowed_domains:
        raise SignInRejected(Outcome.DOMAIN_MISMATCH, f"domain {domain[:80]!r} is not allowed to request sign-ins")
    return normalized


def check_uri(uri: str, domain: str, policy: MessagePolicy, *, scheme: str | None = None) -> None:
    """The URI must be served by the domain itself (same origin) or by an allow-listed origin."""
    parts = urlsplit(uri)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if origin in policy.allowed_origins:
        return
    host = parts.hostname or ""
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))
    if parts.netloc.lower() != domain.lower() or not secure:
        raise SignInRejected(
            Outcome.URI_MISMATCH, f"URI origin {origin[:120]!r} is not the origin of domain {domain[:80]!r}"
        )
    if scheme is not None and scheme.lower() != parts.scheme:
        raise SignInRejected(Outcome.URI_MISMATCH, f"message scheme {scheme[:20]!r} differs from the URI's")


def check_chain(caip2: str, policy: MessagePolicy) -> None:
    if policy.allowed_chains and caip2 not in policy.allowed_chains:
        raise SignInRejected(Outcome.CHAIN_MISMATCH, f"sign-in on chain {caip2} is not allowed")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def check_times(parsed: siwe.SiweMessage, now: datetime, skew: timedelta) -> None:
    """Issued At not ahead of now (plus skew), Not Before reached (minus skew), Expiration Time not passed."""
    if _utc(parsed.issued_at._datetime) > now + skew:
        raise SignInRejected(Outcome.ISSUED_IN_FUTURE, "message Issued At is in the future")
    if parsed.expiration_time is not None and _utc(parsed.expiration_time._datetime) <= now:
        raise SignInRejected(Outcome.EXPIRED_MESSAGE, "message Expiration Time has passed")
    if parsed.not_before is not None and _utc(parsed.not_before._datetime) > now + skew:
        raise SignInRejected(Outcome.NOT_YET_VALID, "message Not Before has not been reached")


def check_message(message: SignedMessage, policy: MessagePolicy, now: datetime) -> None:
    """Every check a message passes before the database or a signature is consulted."""
    check_domain(message.domain, policy)
    check_uri(str(message.parsed.uri), message.domain, policy, scheme=message.parsed.scheme)
    check_chain(message.caip2, policy)
    check_times(message.parsed, now, policy.clock_skew)


# ------------------------------------------------------------------------------------------- parsing


def parse_message(text: str, policy: MessagePolicy) -> SignedMessage:
    """Parse with siwe; reject oversized, odd-character and non-canonical messages as MALFORMED."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > policy.max_message_bytes:
        raise SignInRejected(Outcome.MALFORMED, f"message is {size} bytes; the limit is {policy.max_message_bytes}")
    if not text:
        raise SignInRejected(Outcome.MALFORMED, "message is empty")
    if _CONTROL.search(text):
        raise SignInRejected(Outcome.MALFORMED, "message contains control characters")
    try:
        parsed = siwe.SiweMessage.from_message(text, abnf=policy.abnf_parser)
    except ValidationError as exc:
        fields = ", ".join(sorted({str(err["loc"][0]) for err in exc.errors() if err.get("loc")}))
        raise SignInRejected(Outcome.MALFORMED, f"message has invalid fields: {fields}") from None
    except (ValueError, TypeError):
        raise SignInRejected(Outcome.MALFORMED, "message is not an EIP-4361 sign-in message") from None
    if len(parsed.nonce) > MAX_NONCE_CHARS or len(parsed.domain) > MAX_DOMAIN_CHARS:
        raise SignInRejected(Outcome.MALFORMED, "message nonce or domain is too long")
    if not 0 < parsed.chain_id <= MAX_CHAIN_ID:
        raise SignInRejected(Outcome.MALFORMED, "message Chain ID is out of range")
    if parsed.prepare_message() != text:
        raise SignInRejected(Outcome.MALFORMED, "message is not in canonical EIP-4361 form")
    return SignedMessage(
        parsed=parsed,
        text=text,
        address=parsed.address.lower(),
        domain=parsed.domain.lower(),
        caip2=f"eip155:{parsed.chain_id}",
        nonce=parsed.nonce,
    )


def sniff_address(text: str) -> str | None:
    """Best-effort signer address of an unparseable message, so its failed attempt is attributable."""
    lines = text[:400].split("\n", 2)
    if len(lines) >= 2 and ADDRESS.fullmatch(lines[1]):
        return lines[1].lower()
    return None


# ------------------------------------------------------------------------------------------- signatures


def verify_eoa_signature(message: SignedMessage, signature: bytes) -> bool:
    """Does an EIP-191 personal_sign signature over the exact text recover to the message's address?

    The sign-in flow asks :class:`~mintplane.common.signatures.SignatureVerifier` (which tries this first,
    then ERC-6492/1271); this pure form is the EOA step alone, for benchmarks and tests. The canonical round
    trip in :func:`parse_message` guarantees the text signed is the text siwe would re-serialise.
    """
    return is_eoa_signer(eip191_digest(message.text.encode("utf-8")), signature, message.address)


# ------------------------------------------------------------------------------------------- building


def build_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain: int,
    nonce: str,
    statement: str | None,
    issued_at: datetime,
    expires_at: datetime,
) -> str:
    """The EIP-4361 text CreateNonce hands out; it expires with its nonce."""
    text = siwe.SiweMessage(
        domain=domain,
        address=to_checksum_address(address),
        statement=statement or None,
        uri=uri,
        version=siwe.siwe.VersionEnum.one,
        chain_id=chain,
        nonce=nonce,
        issued_at=siwe.siwe.ISO8601Datetime.from_datetime(issued_at),
        expiration_time=siwe.siwe.ISO8601Datetime.from_datetime(expires_at),
    ).prepare_message()
    return str(text)

"""Proofs of control of an address: EIP-4361 (Sign-In with Ethereum) messages signed with EIP-191.

Pure functions, no I/O: parse a message, check it against the request and the clock, and build the
challenge message CreateLinkChallenge hands out. Each refusal carries a short `reason` code (stored with
the attempt in wallet_verifications) and the gRPC error the caller sees.

Parsing uses the `siwe` package's regex parser (`abnf=False`): the same grammar checks, ~10x faster than
its ABNF parser (DESIGN 7). The signature is checked (by mintplane.common.signatures: EOA, ERC-1271,
ERC-6492) over the exact text the wallet signed, not over a re-serialization, so what is verified is what
the user saw.

What binds a proof to *this* user: a `urn:mintplane:user:<user id>` entry in the message's Resources.
Without it, a signed message could be replayed by whoever obtained it to link the victim's address to
their own account. The one exception is a user's very first wallet: that is the sign-in message the auth
service passes on a first login, signed before the account existed, and accounts always keep at least one
wallet, so an unbound message can never be attached to an existing account (checked by the caller,
which knows how many wallets the user has).
"""

from __future__ import annotations

import secrets
import string
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from mintplane.common.errors import DomainError, InvalidArgument, PermissionDenied, Unauthenticated
from mintplane.wallet import addresses

with warnings.catch_warnings():
    # siwe loads its ABNF grammar at import; abnf < 2.9 warns about core-rule redefinitions (DESIGN 7).
    warnings.simplefilter("ignore")
    from siwe import ISO8601Datetime, SiweMessage

USER_URN_PREFIX = "urn:mintplane:user:"
MESSAGE_MAX = 4096
STATEMENT = "Link this wallet to your mintplane account. Signing is free: it sends no transaction."
_NONCE_ALPHABET = string.ascii_letters + string.digits


class ProofRejected(Exception):
    """A refused proof: `reason` is stored with the attempt, `error` is what the caller gets."""

    def __init__(self, reason: str, error: DomainError) -> None:
        super().__init__(error.message)
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class LinkPolicy:
    allowed_domains: frozenset[str]  # host names, compared without port, case-insensitively
    max_age: timedelta  # how long after `Issued At` a message is accepted
    clock_skew: timedelta  # tolerated client clock drift for `Issued At` / `Not Before`


@dataclass(frozen=True)
class LinkProof:
    text: str
    address: str  # canonical (lowercase)
    chain_numeric: int
    chain: str  # CAIP-2
    domain: str
    uri: str
    nonce: str
    issued_at: datetime
    expires_at: datetime  # the message's Expiration Time, capped at issued_at + max_age
    not_before: datetime | None
    bound_user: uuid.UUID | None

    def summary(self) -> dict[str, str]:
        """What is stored with the attempt (wallet_verifications.verification_data)."""
        return {
            "domain": self.domain, "uri": self.uri, "chain_id": self.chain,
            "issued_at": self.issued_at.isoformat(), "expires_at": self.expires_at.isoformat(),
        }


def host_of(domain: str) -> str:
    """The host part of an EIP-4361 domain (authority), lowercase, without port."""
    host = domain.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bound_user(resources: list[str] | None) -> uuid.UUID | None:
    bound = {r[len(USER_URN_PREFIX):] for r in resources or [] if r.lower().startswith(USER_URN_PREFIX)}
    if not bound:
        return None
    if len(bound) > 1:
        raise ProofRejected("ambiguous_user", InvalidArgument("the message names more than one mintplane user"))
    try:
        return uuid.UUID(bound.pop())
    except ValueError:
        raise ProofRejected(
            "malformed", InvalidArgument("the message's mintplane user resource is not a UUID")
        ) from None


def parse(text: str, policy: LinkPolicy) -> LinkProof:
    if not text.strip():
        raise ProofRejected("malformed", InvalidArgument("message is required"))
    if len(text) > MESSAGE_MAX:
        raise ProofRejected("malformed", InvalidArgument(f"message may be at most {MESSAGE_MAX} characters"))
    try:
        message = SiweMessage.from_message(text, abnf=False)
    except (ValidationError, ValueError) as exc:
        detail = str(exc).splitlines()[0][:200]
        raise ProofRejected(
            "malformed", InvalidArgument(f"message is not a valid EIP-4361 message: {detail}")
        ) from None
    if message.chain_id <= 0:
        raise ProofRejected("malformed", InvalidArgument("message Chain ID must be a positive EIP-155 chain id"))
    issued_at = message.issued_at._datetime
    expires_at = issued_at + policy.max_age
    if message.expiration_time is not None:
        expires_at = min(expires_at, message.expiration_time._datetime)
    return LinkProof(
        text=text,
        address=addresses.canonical(message.address),
        chain_numeric=message.chain_id,
        chain=addresses.caip2(message.chain_id),
        domain=message.domain,
        uri=str(message.uri),
        nonce=message.nonce,
        issued_at=issued_at,
        expires_at=expires_at,
        not_before=message.not_before._datetime if message.not_before is not None else None,
        bound_user=_bound_user(message.resources),
    )


def check(proof: LinkProof, user_id: uuid.UUID, now: datetime, policy: LinkPolicy) -> None:
    """Everything about the message that needs neither the database nor the signature."""
    if host_of(proof.domain) not in policy.allowed_domains:
        raise ProofRejected(
            "domain_not_allowed", Unauthenticated(f"domain {proof.domain!r} may not ask to link wallets")
        )
    if proof.issued_at > now + policy.clock_skew:
        raise ProofRejected("issued_in_future", Unauthenticated("the message's Issued At is in the future"))
    if now >= proof.expires_at:
        raise ProofRejected("expired", Unauthenticated("the signed message has expired: request a new one"))
    if proof.not_before is not None and now + policy.clock_skew < proof.not_before:
        raise ProofRejected("not_yet_valid", Unauthenticated("the signed message is not valid yet (Not Before)"))
    if proof.bound_user is not None and proof.bound_user != user_id:
        raise ProofRejected(
            "user_mismatch", PermissionDenied("the signed message links the wallet to another user")
        )


def new_nonce() -> str:
    """EIP-4361 nonces are alphanumeric; 20 characters carry ~119 bits."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(20))


def challenge(
    user_id: uuid.UUID, address: str, chain_numeric: int, domain: str, uri: str, now: datetime, ttl: timedelta
) -> tuple[str, str, datetime, datetime]:
    """A ready-to-sign message binding `address` to `user_id`: (text, nonce, issued_at, expires_at)."""
    nonce = new_nonce()
    issued = now.replace(microsecond=(now.microsecond // 1000) * 1000)  # the message has milliseconds
    expires = issued + ttl
    message = SiweMessage(
        domain=domain,
        address=addresses.checksum(address),
        uri=uri,
        version="1",
        chain_id=chain_numeric,
        issued_at=ISO8601Datetime.from_datetime(issued),
        expiration_time=ISO8601Datetime.from_datetime(expires),
        nonce=nonce,
        statement=STATEMENT,
        resources=[f"{USER_URN_PREFIX}{user_id}"],
    )
    return message.prepare_message(), nonce, issued, expires

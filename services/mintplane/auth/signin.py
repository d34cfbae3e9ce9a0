"""SignIn: from a signed EIP-4361 message to an open session, recording every attempt.

Order of checks, cheapest and least revealing first: request shape and sizes, the per-IP limit, parsing,
the per-address limit, the message's own fields (domain, URI, chain, times), the nonce as stored
(exists, same address/domain/chain, unused, unexpired), then the signature (EOA, else ERC-1271/6492 on
chain), and only then the nonce is consumed by one conditional UPDATE.

Why the nonce is consumed *after* the signature check: anyone can see a nonce in transit (it is in the
message the wallet shows), so if a failed signature burned it, a stranger could cancel the owner's sign-in
by posting garbage with it. A failure before consumption changes nothing but the new login_events row.
A failure after it (user/wallet service down) leaves the nonce used: the client asks for a new one, and no
session exists, so nothing is half-done.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter
from redis.exceptions import RedisError

from mintplane.auth.cache import SessionCache
from mintplane.auth.directory import Identity, RpcEndpoints, UserState
from mintplane.auth.errors import Outcome, SignInRejected
from mintplane.auth.ratelimit import AttemptLimiter
from mintplane.auth.repository import AuthRepository, LoginEventRecord, NewSession, SessionRecord
from mintplane.auth.settings import AuthSettings
from mintplane.auth.siwe_message import (
    MessagePolicy,
    SignedMessage,
    check_message,
    parse_message,
    sniff_address,
)
from mintplane.auth.tokens import IssuedTokens, TokenIssuer, new_refresh_token
from mintplane.common.errors import DomainError, Unavailable
from mintplane.common.log import get_logger
from mintplane.common.signatures import MalformedSignature, Reason, Rejected, SignatureVerifier, parse_signature_hex

log = get_logger(__name__)

SIGN_INS = Counter("mintplane_auth_sign_ins_total", "Sign-in attempts by outcome (login_events.result).", ["outcome"])

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who is calling, as the gateway saw them; validated because it is stored."""

    ip_address: str | None
    user_agent: str | None
    device_id: str | None


def client_info(ip_address: str, user_agent: str, device_id: str, *, max_user_agent: int) -> ClientInfo:
    ip: str | None = None
    if ip_address:
        try:
            ip = str(ipaddress.ip_address(ip_address.strip()))
        except ValueError:
            raise SignInRejected(Outcome.MALFORMED, "ip_address is not an IPv4 or IPv6 address") from None
    if len(user_agent) > max_user_agent:
        raise SignInRejected(Outcome.MALFORMED, f"user_agent is longer than {max_user_agent} characters")
    device: str | None = None
    if device_id:
        try:
            device = str(uuid.UUID(device_id))
        except ValueError:
            raise SignInRejected(Outcome.MALFORMED, "device_id must be a UUID") from None
    return ClientInfo(ip_address=ip, user_agent=user_agent or None, device_id=device)


@dataclass(slots=True)
class _Attempt:
    """What is known about an attempt so far: everything its login event can record."""

    client: ClientInfo | None = None
    account_id: str | None = None
    domain: str | None = None
    chain_id: str | None = None
    nonce: str | None = None  # only once the nonce row is known to exist (foreign key)
    user_id: str | None = None

    def event(self, outcome: Outcome, message: str | None = None) -> LoginEventRecord:
        client = self.client or ClientInfo(None, None, None)
        return LoginEventRecord(
            result=outcome.value, account_id=self.account_id, user_id=self.user_id, ip_address=client.ip_address,
            user_agent=client.user_agent, error_message=message, chain_id=self.chain_id, domain=self.domain,
            nonce=self.nonce,
        )


@dataclass(frozen=True, slots=True)
class SignInResult:
    session: SessionRecord
    tokens: IssuedTokens
    user_id: str
    is_new_user: bool


class SignInFlow:
    def __init__(
        self, *, settings: AuthSettings, repo: AuthRepository, limiter: AttemptLimiter, identity: Identity,
        signatures: SignatureVerifier, endpoints: RpcEndpoints, cache: SessionCache, issuer: TokenIssuer,
        clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self._policy = MessagePolicy.from_settings(settings)
        self._repo = repo
        self._limiter = limiter
        self._identity = identity
        self._signatures = signatures
        self._endpoints = endpoints
        self._cache = cache
        self._issuer = issuer
        self._clock = clock

    async def sign_in(
        self, *, message: str, signature: str, ip_address: str, user_agent: str, device_id: str
    ) -> SignInResult:
        attempt = _Attempt()
        try:
            return await self._sign_in(attempt, message, signature, ip_address, user_agent, device_id)
        except SignInRejected as rejected:
            await self._record_failure(attempt, rejected.outcome, rejected.message)
            raise rejected.to_domain_error() from None
        except Unavailable as exc:
            await self._record_failure(attempt, Outcome.UNAVAILABLE, exc.message)
            raise
        except DomainError as exc:
            await self._record_failure(attempt, Outcome.INTERNAL_ERROR, exc.message)
            raise
        except RedisError:
            await self._record_failure(attempt, Outcome.UNAVAILABLE, "rate-limit store unavailable")
            raise Unavailable("sign-in is temporarily unavailable; try again") from None
        except Exception:
            await self._record_failure(attempt, Outcome.INTERNAL_ERROR, "internal error")
            raise

    async def _sign_in(
        self, attempt: _Attempt, message: str, signature: str, ip_address: str, user_agent: str, device_id: str
    ) -> SignInResult:
        attempt.account_id = sniff_address(message)
        attempt.client = client = client_info(
            ip_address, user_agent, device_id, max_user_agent=self._settings.auth_max_user_agent_chars
        )
        if client.ip_address is not None:
            await self._limit("signin-ip", client.ip_address)
        signed = parse_message(message, self._policy)
        attempt.account_id, attempt.domain, attempt.chain_id = signed.address, signed.domain, signed.caip2
        try:
            raw_signature = parse_signature_hex(signature, max_bytes=self._settings.auth_max_signature_bytes)
        except MalformedSignature as exc:
            raise SignInRejected(Outcome.MALFORMED, str(exc)) from None
        await self._limit("signin-address", signed.address)

        now = self._clock()
        check_message(signed, self._policy, now)
        await self._check_nonce(attempt, signed)
        await self._check_signature(signed, raw_signature)
        if not await self._repo.consume_nonce(signed.nonce, signed.address, signed.domain, signed.caip2):
            raise SignInRejected(Outcome.NONCE_REPLAYED, "nonce has already been used")

        user_id, is_new = await self._resolve_user(signed, signature, client)
        attempt.user_id = user_id
        if not is_new:
            state = await self._identity.user_state(user_id)
            if state is not UserState.ACTIVE:
                reason = "no longer exists" if state is UserState.MISSING else f"is {state.value}"
                raise SignInRejected(Outcome.USER_BLOCKED, f"the account of this address {reason}")
        return await self._open_session(attempt, signed, client, user_id, is_new)

    async def _limit(self, scope: str, identifier: str) -> None:
        denied = await self._limiter.hit(scope, identifier)
        if denied is not None:
            who = "address" if scope.endswith("address") else "IP address"
            raise SignInRejected(
                Outcome.RATE_LIMITED,
                f"too many sign-in attempts for this {who} (limit {denied.limit}); retry in "
                f"{denied.retry_after_seconds}s",
            )

    async def _check_nonce(self, attempt: _Attempt, signed: SignedMessage) -> None:
        stored = await self._repo.get_nonce(signed.nonce)
        if stored is None:
            raise SignInRejected(Outcome.NONCE_UNKNOWN, "nonce was not issued by this service")
        attempt.nonce = stored.nonce
        if stored.account_id != signed.address:
            raise SignInRejected(Outcome.NONCE_WRONG_ACCOUNT, "nonce was issued for another address")
        if stored.domain != signed.domain:
            raise SignInRejected(Outcome.DOMAIN_MISMATCH, "message domain is not the one the nonce was issued for")
        if stored.chain_id != signed.caip2:
            raise SignInRejected(Outcome.CHAIN_MISMATCH, "message chain is not the one the nonce was issued for")
        if stored.used:
            raise SignInRejected(Outcome.NONCE_REPLAYED, "nonce has already been used")
        if stored.expired:
            raise SignInRejected(Outcome.NONCE_EXPIRED, "nonce has expired; request a new one")

    async def _check_signature(self, signed: SignedMessage, raw: bytes) -> None:
        """EOA recovery first (no I/O); the chain registry is asked for an endpoint only for contract wallets."""

        async def rpc_url() -> str | None:
            return await self._endpoints.rpc_url(signed.caip2)

        result = await self._signatures.verify(signed.text.encode("utf-8"), raw, signed.address, rpc_url)
        if isinstance(result, Rejected):
            raise _rejection(result, signed.caip2)
        if result.is_contract:
            log.info("contract-wallet signature", scheme=result.scheme.value, chain=signed.caip2,
                     address=signed.address, factory=result.factory)

    async def _resolve_user(self, signed: SignedMessage, signature: str, client: ClientInfo) -> tuple[str, bool]:
        """The address's user; on a first login create one and link the address (once, across replicas)."""
        user_id = await self._identity.user_for_address(signed.address)
        if user_id is not None:
            return user_id, False
        async with self._cache.first_login_lock(signed.address):
            user_id = await self._identity.user_for_address(signed.address)
            if user_id is not None:
                return user_id, False
            new_user_id = str(uuid.uuid4())
            await self._identity.create_user(new_user_id)
            linked = await self._identity.link_wallet(
                user_id=new_user_id, message=signed.text, signature=signature,
                ip_address=client.ip_address or "", user_agent=client.user_agent or "",
            )
            if linked:
                return new_user_id, True
            owner = await self._identity.user_for_address(signed.address)
            log.warning("address was linked concurrently; new user left without a wallet", user_id=new_user_id)
            if owner is None:
                raise Unavailable("the wallet service refused the link but knows no owner; try again")
            return owner, False

    async def _open_session(
        self, attempt: _Attempt, signed: SignedMessage, client: ClientInfo, user_id: str, is_new: bool
    ) -> SignInResult:
        refresh_token, refresh_hash = new_refresh_token()
        session = await self._repo.open_session(
            NewSession(
                session_id=str(uuid.uuid4()), user_id=user_id, device_id=client.device_id, refresh_hash=refresh_hash,
                ip_address=client.ip_address, user_agent=client.user_agent, address=signed.address,
                chain_id=signed.caip2, ttl_seconds=self._settings.auth_session_ttl_seconds,
            ),
            attempt.event(Outcome.SUCCESS),
        )
        now = self._clock()
        tokens = self._issuer.issue(session, refresh_token, now)
        try:
            await self._cache.remember_active(session.session_id, user_id, session.expires_at, now)
        except RedisError:
            log.warning("could not warm the session cache", session_id=session.session_id)
        SIGN_INS.labels(Outcome.SUCCESS.value).inc()
        log.info("signed in", user_id=user_id, session_id=session.session_id, new_user=is_new, chain=signed.caip2)
        return SignInResult(session=session, tokens=tokens, user_id=user_id, is_new_user=is_new)

    async def _record_failure(self, attempt: _Attempt, outcome: Outcome, message: str) -> None:
        SIGN_INS.labels(outcome.value).inc()
        try:
            await self._repo.record_login_event(attempt.event(outcome, message[:500]))
        except Exception:
            log.exception("could not record a failed sign-in", outcome=outcome.value)
        log.info("sign-in refused", outcome=outcome.value, address=attempt.account_id, reason=message[:200])


def _rejection(rejected: Rejected, caip2: str) -> SignInRejected:
    """The shared verifier's refusal as this service's outcome and client message."""
    if rejected.reason is Reason.MALFORMED:
        return SignInRejected(Outcome.MALFORMED, rejected.detail)
    if rejected.reason is Reason.UNAVAILABLE:
        return SignInRejected(Outcome.UNAVAILABLE, f"the RPC endpoint of {caip2} did not answer; try again")
    if rejected.reason is Reason.NO_RPC:
        return SignInRejected(
            Outcome.BAD_SIGNATURE,
            f"the signature is not the address's own key, and contract-wallet signatures cannot be checked on "
            f"{caip2}: no RPC endpoint is registered for it",
        )
    return SignInRejected(Outcome.BAD_SIGNATURE, "signature was not made by the message's address")

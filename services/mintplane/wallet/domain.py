"""What the wallet service does, in plain functions over parsed values: proofs, authorization, the
repository. The gRPC handlers only translate messages to these calls and back.

In every mutation `user_id` is the acting (signed-in) user; a wallet can only be changed by its owner.
"""

from __future__ import annotations

import contextlib
import ipaddress
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from mintplane.api.wallet.v1 import wallet_pb2
from mintplane.common import ids, pagination
from mintplane.common.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unavailable
from mintplane.common.log import get_logger
from mintplane.common.signatures import (
    MalformedSignature,
    Reason,
    Rejected,
    SignatureVerifier,
    Verified,
    parse_signature_hex,
)
from mintplane.wallet import addresses, convert, proof
from mintplane.wallet.repository import Attempt, Audit, LinkRefused, NewLink, WalletRepository

log = get_logger(__name__)

LABEL_MAX = 100
CONNECTOR_MAX = 50
USER_AGENT_MAX = 512


def _clean(value: str) -> str:
    """NFC text without control or invisible format characters (labels are shown next to addresses)."""
    return "".join(
        c for c in unicodedata.normalize("NFC", value) if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co")
    ).strip()


def audit(ip_address: str, user_agent: str) -> Audit:
    ip = None
    if ip_address.strip():
        try:
            ip = ipaddress.ip_address(ip_address.strip())
        except ValueError:
            raise InvalidArgument("ip_address must be an IPv4 or IPv6 address") from None
    agent = _clean(user_agent)[:USER_AGENT_MAX] or None  # informational: truncated, not refused
    return Audit(ip, agent)


def label(value: str) -> str | None:
    text = _clean(value)
    if len(text) > LABEL_MAX:
        raise InvalidArgument(f"label may be at most {LABEL_MAX} characters, got {len(text)}")
    return text or None


def connector(value: str) -> str | None:
    text = _clean(value).lower()
    if len(text) > CONNECTOR_MAX:
        raise InvalidArgument(f"connector may be at most {CONNECTOR_MAX} characters")
    return text or None


@dataclass(frozen=True)
class Challenge:
    message: str
    nonce: str
    issued_at: datetime
    expires_at: datetime


class Wallets:
    def __init__(
        self, repository: WalletRepository, signatures: SignatureVerifier, rpc_urls: dict[str, str],
        policy: proof.LinkPolicy, *, challenge_ttl: timedelta, max_signature_bytes: int,
    ) -> None:
        self._repo = repository
        self._signatures = signatures
        self._rpc_urls = dict(rpc_urls)
        self._policy = policy
        self._challenge_ttl = challenge_ttl
        self._max_signature_bytes = max_signature_bytes

    # ---------------------------------------------------------------------------------------- proofs

    def create_challenge(self, user_id: uuid.UUID, raw_address: str, chain: str, domain: str, uri: str) -> Challenge:
        address = addresses.canonical(raw_address)
        numeric = addresses.chain_numeric(chain)
        host = domain.strip()
        if not host or proof.host_of(host) not in self._policy.allowed_domains:
            raise InvalidArgument(f"domain {domain!r} is not allowed to ask for wallet links")
        try:
            text, nonce, issued, expires = proof.challenge(
                user_id, address, numeric, host, uri.strip() or f"https://{host}",
                datetime.now(UTC), self._challenge_ttl,
            )
        except ValidationError as exc:
            raise InvalidArgument(f"cannot build the message: {str(exc).splitlines()[-1][:200]}") from None
        return Challenge(text, nonce, issued, expires)

    async def _verify(self, user_id: uuid.UUID, message: str, signature: str) -> tuple[proof.LinkProof, Verified]:
        """The checked proof and the signature scheme that proves it (EOA, ERC-1271 or ERC-6492)."""
        parsed = proof.parse(message, self._policy)
        proof.check(parsed, user_id, datetime.now(UTC), self._policy)
        try:
            raw = parse_signature_hex(signature, max_bytes=self._max_signature_bytes, require_prefix=False)
        except MalformedSignature as exc:
            raise proof.ProofRejected("malformed", InvalidArgument(str(exc))) from None
        result = await self._signatures.verify(
            parsed.text.encode("utf-8"), raw, parsed.address, self._rpc_urls.get(parsed.chain)
        )
        if isinstance(result, Rejected):
            raise _refusal(result, parsed)
        return parsed, result

    async def link(
        self, user_id: uuid.UUID, message: str, signature: str, connector_name: str, label_text: str,
        make_primary: bool, who: Audit,
    ) -> tuple[wallet_pb2.Wallet, bool]:
        try:
            parsed, verified = await self._verify(user_id, message, signature)
        except proof.ProofRejected as refused:
            partial = _best_effort_fields(message)
            await self._repo.record_failure(
                Attempt(user_id, partial.get("address"), partial.get("nonce"), None,
                        {"reason": refused.reason, "detail": refused.error.message})
            )
            log.info("wallet link refused", user_id=str(user_id), reason=refused.reason)
            raise refused.error from None
        wallet_type = "contract" if verified.is_contract else "eoa"
        new = NewLink(
            user_id=user_id, address=parsed.address, chain=parsed.chain,
            account_id=addresses.account_id(parsed.chain, parsed.address), wallet_type=wallet_type,
            connector=connector(connector_name), label=label(label_text), make_primary=make_primary,
            bound=parsed.bound_user is not None,
        )
        attempt = Attempt(
            user_id, parsed.address, parsed.nonce, parsed.expires_at,
            {**parsed.summary(), "connector": new.connector, "wallet_type": wallet_type,
             "signature_scheme": verified.scheme.value, "factory": verified.factory, "message": parsed.text,
             "signature": signature.strip()},
        )
        try:
            row, created = await self._repo.link(new, attempt, who)
        except LinkRefused as refused:
            log.info("wallet link refused", user_id=str(user_id), reason=str(refused))
            raise refused.error from None
        if created:
            log.info("wallet linked", user_id=str(user_id), wallet_id=str(row["wallet_id"]), chain_id=parsed.chain)
        return convert.wallet(row), created

    # ----------------------------------------------------------------------------------- management

    async def unlink(self, user_id: uuid.UUID, wallet_id: uuid.UUID, who: Audit) -> wallet_pb2.Wallet | None:
        promoted = await self._repo.unlink(user_id, wallet_id, who)
        return convert.wallet(promoted) if promoted is not None else None

    async def set_primary(self, user_id: uuid.UUID, wallet_id: uuid.UUID, who: Audit) -> wallet_pb2.Wallet:
        return convert.wallet(await self._repo.set_primary(user_id, wallet_id, who))

    async def update_label(
        self, user_id: uuid.UUID, wallet_id: uuid.UUID, text: str, who: Audit
    ) -> wallet_pb2.Wallet:
        return convert.wallet(await self._repo.update_label(user_id, wallet_id, label(text), who))

    # ---------------------------------------------------------------------------------------- reads

    async def get(self, wallet_id: uuid.UUID) -> wallet_pb2.Wallet:
        return convert.wallet(await self._repo.get(wallet_id))

    async def by_address(self, raw: str) -> wallet_pb2.Wallet:
        address = addresses.canonical(raw)
        row = await self._repo.by_address(address)
        if row is None:
            raise NotFound(f"no wallet is linked for address {address}")
        return convert.wallet(row)

    async def by_addresses(self, raw: Sequence[str]) -> list[wallet_pb2.Wallet]:
        """Wallets of the linked addresses among `raw` (validated and canonicalised first)."""
        wanted = dict.fromkeys(addresses.canonical(value, "addresses") for value in raw)
        if len(wanted) > ids.MAX_BATCH:
            raise InvalidArgument(f"addresses may hold at most {ids.MAX_BATCH} addresses")
        return [convert.wallet(row) for row in await self._repo.by_addresses(list(wanted))]

    async def of_users(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[wallet_pb2.Wallet]]:
        grouped: dict[uuid.UUID, list[wallet_pb2.Wallet]] = {}
        for row in await self._repo.by_users(user_ids):
            grouped.setdefault(row["user_id"], []).append(convert.wallet(row))
        return grouped

    async def activity(
        self, actor: uuid.UUID, user_id: uuid.UUID, wallet_id: uuid.UUID | None, size: int, token: str
    ) -> tuple[list[wallet_pb2.WalletActivity], str]:
        if actor != user_id:
            raise PermissionDenied("wallet activity is private to its user")
        limit = pagination.page_size(size)
        scope = f"{user_id}/{wallet_id or ''}"
        after = pagination.decode(token, "wallet_activity", scope)
        rows = await self._repo.activity(user_id, wallet_id, after, limit + 1)
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_token = pagination.encode("wallet_activity", scope, pagination.Cursor(last["created_at"], last["id"]))
        return [convert.activity(row) for row in rows], next_token


def _refusal(rejected: Rejected, parsed: proof.LinkProof) -> proof.ProofRejected:
    """The shared verifier's refusal as a recorded reason and the caller's gRPC error."""
    if rejected.reason is Reason.MALFORMED:
        return proof.ProofRejected("malformed", InvalidArgument(rejected.detail))
    if rejected.reason is Reason.UNAVAILABLE:
        return proof.ProofRejected(
            "rpc_unavailable", Unavailable(f"the RPC endpoint of {parsed.chain} did not answer; try again")
        )
    detail = f"the message was not signed by {addresses.checksum(parsed.address)}"
    if rejected.reason is Reason.NO_RPC:
        detail += f" (contract-wallet signatures cannot be checked on {parsed.chain}: no RPC endpoint is configured)"
    return proof.ProofRejected("signer_mismatch", Unauthenticated(detail))


def _best_effort_fields(message: str) -> dict[str, str]:
    """Address and nonce of a refused message when they can be read, for the attempt log."""
    fields: dict[str, str] = {}
    lines = message.splitlines()
    if len(lines) > 1:
        with contextlib.suppress(InvalidArgument):
            fields["address"] = addresses.canonical(lines[1])
    for line in lines:
        if line.startswith("Nonce: "):
            fields["nonce"] = line[len("Nonce: "):].strip()[:128]
    return fields

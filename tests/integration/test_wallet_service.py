"""The wallet service over gRPC, in-process on an ephemeral port, against the dev stack's PostgreSQL, with
real secp256k1 keys (eth-account): proofs, replay, expiry, canonical addresses, primary wallets, unlink
rules, who may do what, and the activity and verification logs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from mintplane.api.common.v1 import common_pb2
from mintplane.api.wallet.v1 import wallet_pb2 as pb
from mintplane.api.wallet.v1 import wallet_pb2_grpc
from mintplane.common.service import Resources
from mintplane.wallet import proof
from mintplane.wallet.server import NEEDS, build_server
from mintplane.wallet.settings import WalletSettings

pytestmark = pytest.mark.integration

CHAIN = common_pb2.ChainRef(caip2="eip155:31337")
DOMAIN = "localhost:8081"


def _sign(text: str, account: LocalAccount) -> str:
    return "0x" + bytes(Account.sign_message(encode_defunct(text=text), account.key).signature).hex()


def _siwe(account: LocalAccount, user: str | None, *, issued: datetime | None = None,
          expires: datetime | None = None, nonce: str | None = None, domain: str = DOMAIN) -> str:
    """A hand-made EIP-4361 message (what a wallet app or the auth service would produce)."""
    issued = issued or datetime.now(UTC)
    lines = [
        f"{domain} wants you to sign in with your Ethereum account:", account.address, "",
        "Sign in to mintplane.", "",
        f"URI: https://{domain}", "Version: 1", "Chain ID: 31337", f"Nonce: {nonce or proof.new_nonce()}",
        f"Issued At: {issued:%Y-%m-%dT%H:%M:%S.000Z}",
    ]
    if expires is not None:
        lines.append(f"Expiration Time: {expires:%Y-%m-%dT%H:%M:%S.000Z}")
    if user:
        lines += ["Resources:", f"- urn:mintplane:user:{user}"]
    return "\n".join(lines)


class Harness:
    def __init__(self, stub: wallet_pb2_grpc.WalletServiceStub, pg: asyncpg.Pool[Any]) -> None:
        self.stub = stub
        self.pg = pg
        self.users: list[str] = []

    def user(self) -> str:
        user_id = str(uuid.uuid4())  # wallet.user_id is a logical id: no user row needed
        self.users.append(user_id)
        return user_id

    async def challenge(self, user: str, account: LocalAccount) -> str:
        response = await self.stub.CreateLinkChallenge(pb.CreateLinkChallengeRequest(
            user_id=user, address=account.address.lower(), chain=CHAIN, domain=DOMAIN))
        return response.message

    async def link(self, user: str, account: LocalAccount, **fields: Any) -> pb.LinkWalletResponse:
        message = await self.challenge(user, account)
        return await self.stub.LinkWallet(pb.LinkWalletRequest(
            user_id=user, message=message, signature=_sign(message, account), connector="metamask",
            ip_address="203.0.113.7", user_agent="pytest/1.0", **fields))

    async def attempts(self, user: str) -> list[asyncpg.Record]:
        return list(await self.pg.fetch(
            "SELECT status, verification_data->>'reason' AS reason, wallet_id, address, nonce "
            "FROM wallet.wallet_verifications WHERE user_id = $1 ORDER BY created_at", uuid.UUID(user)))

    async def primaries(self, user: str) -> int:
        count: int = await self.pg.fetchval(
            "SELECT count(*) FROM wallet.wallet_links WHERE user_id = $1 AND is_primary", uuid.UUID(user))
        return count


@pytest.fixture(scope="module")
async def svc() -> AsyncIterator[Harness]:
    settings = WalletSettings(grpc_port=0, pg_pool_max=20)
    resources = await Resources.open(settings, NEEDS, name="wallet-test")
    built = await build_server(settings, resources)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    harness = Harness(wallet_pb2_grpc.WalletServiceStub(channel), resources.pg)
    try:
        yield harness
    finally:
        users = [uuid.UUID(u) for u in harness.users]
        async with resources.pg.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM wallet.wallet_activity WHERE user_id = ANY($1::uuid[])", users)
            await conn.execute("DELETE FROM wallet.wallet_verifications WHERE user_id = ANY($1::uuid[])", users)
            await conn.execute("DELETE FROM wallet.wallet_links WHERE user_id = ANY($1::uuid[])", users)
        await channel.close()
        await built.server.stop(None)
        await resources.close()


async def _code(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    details = caught.value.details() or ""
    assert details and "Traceback" not in details
    return caught.value.code(), details


# ---------------------------------------------------------------------------------------------- linking


async def test_link_with_a_real_key_records_the_proof_and_the_activity(svc: Harness) -> None:
    user, account = svc.user(), Account.create()
    linked = await svc.link(user, account, label="  Main \u202e ")
    wallet = linked.wallet
    assert linked.created
    assert wallet.address == account.address.lower()
    assert wallet.checksum_address == account.address
    assert wallet.account_id == f"eip155:31337:{account.address.lower()}"
    assert (wallet.chain.caip2, wallet.is_primary, wallet.wallet_type) == ("eip155:31337", True, pb.WALLET_TYPE_EOA)
    assert (wallet.connector, wallet.label, wallet.user_id) == ("metamask", "Main", user)
    assert wallet.HasField("verified_at")
    (attempt,) = await svc.attempts(user)
    assert (attempt["status"], str(attempt["wallet_id"]), attempt["address"]) == (
        "verified", wallet.wallet_id, account.address.lower())
    assert len(attempt["nonce"]) == 20
    activity = await svc.stub.ListWalletActivity(pb.ListWalletActivityRequest(user_id=user, actor_user_id=user))
    assert [a.action for a in activity.activities] == [pb.WALLET_ACTION_SET_PRIMARY, pb.WALLET_ACTION_LINKED]
    assert {(a.ip_address, a.user_agent, a.wallet_id) for a in activity.activities} == {
        ("203.0.113.7", "pytest/1.0", wallet.wallet_id)}
    # any case of the address finds it; the owner is who auth will sign in
    for variant in (account.address, account.address.lower(), "0x" + account.address[2:].upper()):
        found = await svc.stub.GetWalletByAddress(pb.GetWalletByAddressRequest(address=variant))
        assert found.wallet.wallet_id == wallet.wallet_id and found.wallet.user_id == user


async def test_relinking_the_same_address_returns_the_existing_wallet(svc: Harness) -> None:
    user, account = svc.user(), Account.create()
    first = await svc.link(user, account)
    second = await svc.link(user, account)
    assert (first.created, second.created) == (True, False)
    assert second.wallet.wallet_id == first.wallet.wallet_id
    assert second.wallet.verified_at.ToDatetime() >= first.wallet.verified_at.ToDatetime()
    assert [a["status"] for a in await svc.attempts(user)] == ["verified", "verified"]


async def test_a_replayed_proof_is_refused_even_after_an_unlink(svc: Harness) -> None:
    user, account, spare = svc.user(), Account.create(), Account.create()
    message = await svc.challenge(user, account)
    signature = _sign(message, account)
    request = pb.LinkWalletRequest(user_id=user, message=message, signature=signature)
    linked = await svc.stub.LinkWallet(request)
    assert await _code(svc.stub.LinkWallet(request)) == (
        grpc.StatusCode.UNAUTHENTICATED, "this signed message was already used: request a new one")
    await svc.link(user, spare)
    await svc.stub.UnlinkWallet(pb.UnlinkWalletRequest(user_id=user, wallet_id=linked.wallet.wallet_id))
    code, _ = await _code(svc.stub.LinkWallet(request))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # concurrent replays of one fresh proof: exactly one wins
    fresh = await svc.challenge(user, account)
    racing = pb.LinkWalletRequest(user_id=user, message=fresh, signature=_sign(fresh, account))
    results = await asyncio.gather(*(svc.stub.LinkWallet(racing) for _ in range(8)), return_exceptions=True)
    assert sum(isinstance(r, pb.LinkWalletResponse) for r in results) == 1
    assert all(r.code() == grpc.StatusCode.UNAUTHENTICATED for r in results if isinstance(r, grpc.aio.AioRpcError))
    reasons = [a["reason"] for a in await svc.attempts(user) if a["status"] == "failed"]
    assert reasons == ["nonce_reused"] * 9


async def test_wrong_signer_expired_and_foreign_domain_proofs_are_refused(svc: Harness) -> None:
    user, account, mallory = svc.user(), Account.create(), Account.create()
    message = await svc.challenge(user, account)
    cases = {
        "signer_mismatch": pb.LinkWalletRequest(user_id=user, message=message, signature=_sign(message, mallory)),
        "expired": (lambda m: pb.LinkWalletRequest(user_id=user, message=m, signature=_sign(m, account)))(
            _siwe(account, user, issued=datetime.now(UTC) - timedelta(minutes=5),
                  expires=datetime.now(UTC) - timedelta(seconds=5))),
        "domain_not_allowed": (lambda m: pb.LinkWalletRequest(user_id=user, message=m, signature=_sign(m, account)))(
            _siwe(account, user, domain="phish.example")),
        "malformed": pb.LinkWalletRequest(user_id=user, message="Link wallet please", signature=_sign("x", account)),
    }
    codes = {}
    for reason, request in cases.items():
        codes[reason], details = await _code(svc.stub.LinkWallet(request))
        assert user not in details
    assert codes == {
        "signer_mismatch": grpc.StatusCode.UNAUTHENTICATED, "expired": grpc.StatusCode.UNAUTHENTICATED,
        "domain_not_allowed": grpc.StatusCode.UNAUTHENTICATED, "malformed": grpc.StatusCode.INVALID_ARGUMENT,
    }
    attempts = await svc.attempts(user)
    assert [(a["status"], a["reason"]) for a in attempts] == [("failed", reason) for reason in cases]
    assert all(a["wallet_id"] is None for a in attempts)
    assert (await svc.stub.ListWallets(pb.ListWalletsRequest(user_id=user))).wallets == []


async def test_an_address_belongs_to_one_user_and_case_variants_collide(svc: Harness) -> None:
    alice, bob, account = svc.user(), svc.user(), Account.create()
    await svc.link(alice, account)
    code, details = await _code(svc.link(bob, account))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert alice not in details, "never reveal who holds the address"
    assert [a["reason"] for a in await svc.attempts(bob)] == ["address_taken"]
    # the database itself refuses another spelling of the same address on the same chain
    insert = "INSERT INTO wallet.wallet_links (user_id, address, chain_id) VALUES ($1, $2, 'eip155:31337')"
    with pytest.raises(asyncpg.CheckViolationError):
        await svc.pg.execute(insert, uuid.UUID(bob), account.address)
    with pytest.raises(asyncpg.UniqueViolationError):
        await svc.pg.execute(insert, uuid.UUID(bob), account.address.lower())


async def test_only_the_first_wallet_may_be_proven_without_naming_the_user(svc: Harness) -> None:
    """Auth links the address of a first sign-in with its (unbound) sign-in message; later links must
    name the user, or a captured sign-in message could attach someone else's address to an account."""
    user, first, second = svc.user(), Account.create(), Account.create()
    signin = _siwe(first, None, expires=datetime.now(UTC) + timedelta(minutes=5))
    linked = await svc.stub.LinkWallet(
        pb.LinkWalletRequest(user_id=user, message=signin, signature=_sign(signin, first)))
    assert linked.created and linked.wallet.is_primary
    later = _siwe(second, None)
    code, details = await _code(svc.stub.LinkWallet(pb.LinkWalletRequest(
        user_id=user, message=later, signature=_sign(later, second))))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "urn:mintplane:user" in details
    assert [a["reason"] for a in await svc.attempts(user)] == [None, "binding_required"]


# ----------------------------------------------------------------------------------- primary & unlink


async def test_exactly_one_primary_under_concurrent_links_and_swaps(svc: Harness) -> None:
    user = svc.user()
    accounts = [Account.create() for _ in range(5)]
    messages = await asyncio.gather(*(svc.challenge(user, a) for a in accounts))
    linked = await asyncio.gather(*(
        svc.stub.LinkWallet(pb.LinkWalletRequest(user_id=user, message=m, signature=_sign(m, a), make_primary=True))
        for m, a in zip(messages, accounts, strict=True)))
    assert len({r.wallet.wallet_id for r in linked}) == 5
    assert await svc.primaries(user) == 1
    ids = [r.wallet.wallet_id for r in linked]
    swaps = [svc.stub.SetPrimaryWallet(pb.SetPrimaryWalletRequest(user_id=user, wallet_id=ids[i % 5]))
             for i in range(40)]
    results = await asyncio.gather(*swaps)
    assert all(r.wallet.is_primary for r in results)
    assert await svc.primaries(user) == 1
    listed = (await svc.stub.ListWallets(pb.ListWalletsRequest(user_id=user))).wallets
    assert listed[0].is_primary and not any(w.is_primary for w in listed[1:])


async def test_unlink_rules(svc: Harness) -> None:
    user = svc.user()
    first = (await svc.link(user, Account.create())).wallet
    code, _ = await _code(svc.stub.UnlinkWallet(pb.UnlinkWalletRequest(user_id=user, wallet_id=first.wallet_id)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    second = (await svc.link(user, Account.create())).wallet
    third = (await svc.link(user, Account.create())).wallet
    assert first.is_primary and not second.is_primary
    response = await svc.stub.UnlinkWallet(pb.UnlinkWalletRequest(
        user_id=user, wallet_id=first.wallet_id, ip_address="2001:db8::1", user_agent="ua"))
    assert response.new_primary.wallet_id == second.wallet_id, "the oldest remaining wallet is promoted"
    plain = await svc.stub.UnlinkWallet(pb.UnlinkWalletRequest(user_id=user, wallet_id=third.wallet_id))
    assert not plain.HasField("new_primary")
    code, _ = await _code(svc.stub.GetWallet(pb.GetWalletRequest(wallet_id=first.wallet_id)))
    assert code == grpc.StatusCode.NOT_FOUND
    # the log survives the unlink, still naming the wallet
    activity = (await svc.stub.ListWalletActivity(pb.ListWalletActivityRequest(
        user_id=user, actor_user_id=user, wallet_id=first.wallet_id))).activities
    assert [a.action for a in activity][:1] == [pb.WALLET_ACTION_UNLINKED]
    assert activity[0].ip_address == "2001:db8::1" and activity[0].wallet_id == first.wallet_id
    assert activity[0].metadata["address"] == first.address
    assert await svc.primaries(user) == 1


# -------------------------------------------------------------------------------------- access control


async def test_no_user_can_touch_another_users_wallets(svc: Harness) -> None:
    alice, bob = svc.user(), svc.user()
    account = Account.create()
    wallet = (await svc.link(alice, account)).wallet
    await svc.link(alice, Account.create())
    attempts = {
        "unlink": svc.stub.UnlinkWallet(pb.UnlinkWalletRequest(user_id=bob, wallet_id=wallet.wallet_id)),
        "set_primary": svc.stub.SetPrimaryWallet(pb.SetPrimaryWalletRequest(user_id=bob, wallet_id=wallet.wallet_id)),
        "label": svc.stub.UpdateWalletLabel(pb.UpdateWalletLabelRequest(
            user_id=bob, wallet_id=wallet.wallet_id, label="mine")),
        "activity": svc.stub.ListWalletActivity(pb.ListWalletActivityRequest(user_id=alice, actor_user_id=bob)),
    }
    for name, call in attempts.items():
        code, _ = await _code(call)
        assert code == grpc.StatusCode.PERMISSION_DENIED, name
    # a challenge issued to alice cannot link the wallet to bob, even when signed by the key
    other = Account.create()
    message = await svc.challenge(alice, other)
    code, _ = await _code(svc.stub.LinkWallet(pb.LinkWalletRequest(
        user_id=bob, message=message, signature=_sign(message, other))))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # no actor at all
    code, _ = await _code(svc.stub.UnlinkWallet(pb.UnlinkWalletRequest(wallet_id=wallet.wallet_id)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = await _code(svc.stub.ListWalletActivity(pb.ListWalletActivityRequest(user_id=alice)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    after = (await svc.stub.GetWallet(pb.GetWalletRequest(wallet_id=wallet.wallet_id))).wallet
    assert (after.user_id, after.label, after.is_primary) == (alice, "", True)
    # the owner can
    labelled = await svc.stub.UpdateWalletLabel(pb.UpdateWalletLabelRequest(
        user_id=alice, wallet_id=wallet.wallet_id, label="Cold storage", ip_address="198.51.100.2"))
    assert labelled.wallet.label == "Cold storage"
    code, _ = await _code(svc.stub.UpdateWalletLabel(pb.UpdateWalletLabelRequest(
        user_id=alice, wallet_id=wallet.wallet_id, label="x" * 101)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


# ----------------------------------------------------------------------------------------------- reads


async def test_batch_listing_and_activity_pagination(svc: Harness) -> None:
    users = [svc.user() for _ in range(3)]
    for i, user in enumerate(users[:2]):
        for _ in range(i + 1):
            await svc.link(user, Account.create())
    batch = await svc.stub.BatchListWallets(pb.BatchListWalletsRequest(user_ids=users))
    counts = {entry.user_id: len(entry.wallets) for entry in batch.users}
    assert counts == {users[0]: 1, users[1]: 2}
    owner = users[1]
    ids = [w.wallet_id for w in (await svc.stub.ListWallets(pb.ListWalletsRequest(user_id=owner))).wallets]
    for i in range(6):
        await svc.stub.UpdateWalletLabel(pb.UpdateWalletLabelRequest(user_id=owner, wallet_id=ids[0], label=f"l{i}"))
    seen, token = [], ""
    while True:
        page = await svc.stub.ListWalletActivity(pb.ListWalletActivityRequest(
            user_id=owner, actor_user_id=owner, page=common_pb2.PageRequest(page_size=3, page_token=token)))
        seen += [a.id for a in page.activities]
        token = page.page.next_page_token
        if not token:
            break
    total = await svc.pg.fetchval("SELECT count(*) FROM wallet.wallet_activity WHERE user_id = $1", uuid.UUID(owner))
    assert len(seen) == len(set(seen)) == total == 2 + 1 + 6  # 2 links, 1 primary, 6 labels
    code, _ = await _code(svc.stub.GetWalletByAddress(pb.GetWalletByAddressRequest(address="0x1234")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await _code(svc.stub.GetWalletByAddress(pb.GetWalletByAddressRequest(
        address=Account.create().address)))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_batch_get_by_address_finds_linked_addresses_in_any_case_and_omits_the_rest(svc: Harness) -> None:
    alice, bob = svc.user(), svc.user()
    a1, a2, b1, stranger = Account.create(), Account.create(), Account.create(), Account.create()
    for user, account in ((alice, a1), (alice, a2), (bob, b1)):
        await svc.link(user, account)
    asked = [a1.address, a2.address.lower(), "0x" + b1.address[2:].upper(), stranger.address, a1.address.lower()]
    reply = await svc.stub.BatchGetWalletsByAddress(pb.BatchGetWalletsByAddressRequest(addresses=asked))
    assert sorted((w.address, w.user_id) for w in reply.wallets) == sorted(
        [(a1.address.lower(), alice), (a2.address.lower(), alice), (b1.address.lower(), bob)])
    empty = await svc.stub.BatchGetWalletsByAddress(pb.BatchGetWalletsByAddressRequest())
    assert list(empty.wallets) == []
    code, details = await _code(svc.stub.BatchGetWalletsByAddress(
        pb.BatchGetWalletsByAddressRequest(addresses=[a1.address, "0x1234"])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "addresses" in details
    too_many = [Account.create().address for _ in range(101)]
    code, _ = await _code(svc.stub.BatchGetWalletsByAddress(pb.BatchGetWalletsByAddressRequest(addresses=too_many)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT

"""The gateway's schema over in-memory fakes of its client interfaces: the operations a front end uses, what
they send upstream, and who may do what."""

from __future__ import annotations

from typing import Any

import pytest

from mintplane.api.user.v1 import user_pb2
from mintplane.gateway.schema import build_schema
from mintplane.gateway.settings import GatewaySettings
from mintplane.gateway.siwe_text import parse_message_fields
from mintplane.gateway.testing import FakeBackend, execute

pytestmark = pytest.mark.unit

SCHEMA = build_schema(GatewaySettings())
ALICE_ADDR = "0x" + "a1" * 20
BOB_ADDR = "0x" + "b2" * 20


def codes(result: Any) -> list[str]:
    return [error.extensions.get("code") for error in result.errors or []]


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


def test_sdl_has_every_operation_of_the_identity_api() -> None:
    sdl = SCHEMA.as_str()
    for operation in (
        "nonce(", "signIn(", "refresh(", "signOut(", "revokeSession(", "updateProfile(", "updatePreferences(",
        "follow(", "unfollow(", "linkWalletChallenge(", "linkWallet(", "unlinkWallet(", "setPrimaryWallet(",
        "sessions(", "me: Viewer", "user(username", "userById(id", "wallets: [Wallet!]!",
        "followers(first: Int! = 20, after: String = null): UserConnection!",
    ):
        assert operation in sdl, operation
    assert "type PageInfo" in sdl and "endCursor: String" in sdl


async def test_sign_in_flow_me_refresh_sign_out(backend: FakeBackend) -> None:
    nonce = await execute(SCHEMA, backend, """
        mutation($a: String!) { nonce(address: $a, chainId: 31337) {
          nonce message domain uri chainId version statement } }
    """, variables={"a": ALICE_ADDR}, origin="https://app.example:3000")
    assert nonce.errors is None
    payload = nonce.data["nonce"]
    assert payload["domain"] == "app.example:3000" and payload["uri"] == "https://app.example:3000"
    assert payload["chainId"] == 31337 and payload["version"] == "1"
    assert payload["statement"] == "Sign in to mintplane."
    assert payload["nonce"] in payload["message"]

    signed = await execute(SCHEMA, backend, """
        mutation($m: String!) { signIn(message: $m, signature: "0x1234") {
          accessToken refreshToken tokenType isNewUser session { id current state } viewer { id address } } }
    """, variables={"m": payload["message"]})
    assert signed.errors is None
    auth = signed.data["signIn"]
    assert auth["isNewUser"] is True and auth["tokenType"] == "Bearer"
    assert auth["session"]["current"] is True and auth["session"]["state"] == "ACTIVE"
    assert auth["viewer"]["address"] == ALICE_ADDR

    me = await execute(SCHEMA, backend, "{ me { id sessionId wallets { address isPrimary label } } }",
                       token=auth["accessToken"])
    assert me.errors is None
    assert me.data["me"]["id"] == auth["viewer"]["id"]
    assert me.data["me"]["sessionId"] == auth["session"]["id"]
    assert me.data["me"]["wallets"][0]["isPrimary"] is True

    refreshed = await execute(SCHEMA, backend, """
        mutation($r: String!) { refresh(refreshToken: $r) { accessToken refreshToken viewer { id } } }
    """, variables={"r": auth["refreshToken"]})
    assert refreshed.errors is None
    assert refreshed.data["refresh"]["refreshToken"] != auth["refreshToken"]
    reused = await execute(SCHEMA, backend, 'mutation($r: String!) { refresh(refreshToken: $r) { accessToken } }',
                           variables={"r": auth["refreshToken"]})
    assert codes(reused) == ["UNAUTHENTICATED"]

    new_token = refreshed.data["refresh"]["accessToken"]
    out = await execute(SCHEMA, backend, "mutation { signOut { revokedCount } }", token=new_token)
    assert out.data == {"signOut": {"revokedCount": 1}}
    after = await execute(SCHEMA, backend, "{ me { id } }", token=new_token)
    assert after.data == {"me": None} and codes(after) == ["UNAUTHENTICATED"]


async def test_me_is_null_without_credentials_and_protected_fields_need_them(backend: FakeBackend) -> None:
    anonymous = await execute(SCHEMA, backend, "{ me { id } }")
    assert anonymous.errors is None and anonymous.data == {"me": None}
    assert backend.calls["ValidateSession"] == 0  # no token: the auth service is not asked
    for query in ("{ sessions { totalCount } }", "{ wallets { id } }",
                  'mutation { follow(userId: "6f1c1f5e-7a43-4a8e-9b55-2f1de1a1a111") { changed } }'):
        result = await execute(SCHEMA, backend, query)
        assert codes(result) == ["UNAUTHENTICATED"], query


async def test_viewer_is_validated_once_per_request(backend: FakeBackend) -> None:
    alice = backend.add_user("alice", ALICE_ADDR)
    token = backend.sign_in_as(alice)
    result = await execute(SCHEMA, backend, "{ a: me { id } b: me { id } sessions { totalCount } wallets { id } }",
                           token=token)
    assert result.errors is None
    assert backend.calls["ValidateSession"] == 1


async def test_update_profile_sends_only_the_named_fields(backend: FakeBackend) -> None:
    alice = backend.add_user("alice", ALICE_ADDR)
    backend.users[alice].profile.bio = "old bio"
    token = backend.sign_in_as(alice)
    result = await execute(SCHEMA, backend, """
        mutation { updateProfile(input: {displayName: "Alice", bio: null,
                                         socials: [{network: "x", handle: "@alice"}]}) {
          displayName bio username socials { network handle } } }
    """, token=token)
    assert result.errors is None
    assert result.data["updateProfile"] == {
        "displayName": "Alice", "bio": None, "username": "alice", "socials": [{"network": "x", "handle": "@alice"}],
    }
    nothing = await execute(SCHEMA, backend, "mutation { updateProfile(input: {}) { id } }", token=token)
    assert codes(nothing) == ["BAD_USER_INPUT"]
    assert backend.calls["UpdateProfile"] == 1


async def test_preferences_round_trip(backend: FakeBackend) -> None:
    alice = backend.add_user("alice", ALICE_ADDR)
    token = backend.sign_in_as(alice)
    result = await execute(SCHEMA, backend, """
        mutation { updatePreferences(input: {theme: DARK, emailNotifications: true, privacyLevel: FOLLOWERS}) {
          theme emailNotifications privacyLevel language } }
    """, token=token)
    assert result.errors is None
    assert result.data["updatePreferences"] == {
        "theme": "DARK", "emailNotifications": True, "privacyLevel": "FOLLOWERS", "language": "en",
    }
    assert backend.preferences[alice].theme == user_pb2.THEME_DARK
    me = await execute(SCHEMA, backend, "{ me { preferences { theme } } }", token=token)
    assert me.data == {"me": {"preferences": {"theme": "DARK"}}}


async def test_follow_unfollow_and_viewer_is_following(backend: FakeBackend) -> None:
    alice, bob = backend.add_user("alice", ALICE_ADDR), backend.add_user("bob", BOB_ADDR)
    token = backend.sign_in_as(alice)
    followed = await execute(SCHEMA, backend, """
        mutation($id: ID!) { follow(userId: $id) { changed user { username viewerIsFollowing
                                                                  stats { followersCount } } } }
    """, variables={"id": bob}, token=token)
    assert followed.errors is None
    assert followed.data["follow"] == {
        "changed": True, "user": {"username": "bob", "viewerIsFollowing": True, "stats": {"followersCount": 1}},
    }
    again = await execute(SCHEMA, backend, 'mutation($id: ID!) { follow(userId: $id) { changed } }',
                          variables={"id": bob}, token=token)
    assert again.data == {"follow": {"changed": False}}
    profile = await execute(SCHEMA, backend, """
        { user(username: "bob") { followers { edges { node { username } } } } }""")
    assert profile.data["user"]["followers"]["edges"] == [{"node": {"username": "alice"}}]
    unfollowed = await execute(SCHEMA, backend, """
        mutation($id: ID!) { unfollow(userId: $id) { changed user { viewerIsFollowing } } }""",
        variables={"id": bob}, token=token)
    assert unfollowed.data == {"unfollow": {"changed": True, "user": {"viewerIsFollowing": False}}}
    myself = await execute(SCHEMA, backend, 'mutation($id: ID!) { follow(userId: $id) { changed } }',
                           variables={"id": alice}, token=token)
    assert codes(myself) == ["BAD_USER_INPUT"]


async def test_lookups_answer_not_found_and_bad_ids(backend: FakeBackend) -> None:
    missing = await execute(SCHEMA, backend, '{ user(username: "nobody") { id } }')
    assert missing.data == {"user": None} and codes(missing) == ["NOT_FOUND"]
    unknown = await execute(SCHEMA, backend, '{ userById(id: "6f1c1f5e-7a43-4a8e-9b55-2f1de1a1a111") { id } }')
    assert codes(unknown) == ["NOT_FOUND"]
    malformed = await execute(SCHEMA, backend, '{ userById(id: "1 OR 1=1") { id } }')
    assert codes(malformed) == ["BAD_USER_INPUT"]
    assert backend.calls["BatchGetUsers"] == 1  # the malformed id never went upstream


async def test_nobody_reaches_another_users_sessions_or_wallets(backend: FakeBackend) -> None:
    alice, bob = backend.add_user("alice", ALICE_ADDR), backend.add_user("bob", BOB_ADDR)
    alice_token, bob_token = backend.sign_in_as(alice), backend.sign_in_as(bob)
    bob_session = backend.tokens[bob_token]
    bob_wallet = backend.wallets[bob][0].wallet_id

    sessions = await execute(SCHEMA, backend, "{ sessions { edges { node { id current } } } }", token=alice_token)
    listed = [edge["node"]["id"] for edge in sessions.data["sessions"]["edges"]]
    assert bob_session not in listed and len(listed) == 1

    for mutation, variables in (
        ("mutation($id: ID!) { revokeSession(id: $id) { id } }", {"id": bob_session}),
        ("mutation($id: ID!) { unlinkWallet(walletId: $id) { unlinkedWalletId } }", {"id": bob_wallet}),
        ("mutation($id: ID!) { setPrimaryWallet(walletId: $id) { id } }", {"id": bob_wallet}),
        ('mutation($id: ID!) { updateWalletLabel(walletId: $id, label: "mine") { id } }', {"id": bob_wallet}),
    ):
        result = await execute(SCHEMA, backend, mutation, variables=variables, token=alice_token)
        assert codes(result) == ["FORBIDDEN"], mutation
    assert backend.sessions[bob_session].state == 1  # still ACTIVE
    assert backend.wallets[bob][0].label == ""

    bob_public = await execute(SCHEMA, backend, '{ user(username: "bob") { wallets { address connector label } } }',
                               token=alice_token)
    assert bob_public.data["user"]["wallets"] == [{"address": BOB_ADDR, "connector": None, "label": None}]
    own = await execute(SCHEMA, backend, '{ user(username: "bob") { wallets { connector } } }', token=bob_token)
    assert own.data["user"]["wallets"] == [{"connector": "metamask"}]


async def test_link_wallet_challenge_then_link(backend: FakeBackend) -> None:
    alice = backend.add_user("alice", ALICE_ADDR)
    token = backend.sign_in_as(alice)
    challenge = await execute(SCHEMA, backend, """
        mutation($a: String!) { linkWalletChallenge(address: $a, chainId: 1) { message nonce } }""",
        variables={"a": BOB_ADDR}, token=token)
    assert challenge.errors is None
    message = challenge.data["linkWalletChallenge"]["message"]
    assert f"urn:mintplane:user:{alice}" in message
    linked = await execute(SCHEMA, backend, """
        mutation($m: String!) { linkWallet(message: $m, signature: "0xabcd", label: "cold") {
          created wallet { address label isPrimary } } }""", variables={"m": message}, token=token)
    assert linked.errors is None
    assert linked.data["linkWallet"] == {
        "created": True, "wallet": {"address": BOB_ADDR, "label": "cold", "isPrimary": False},
    }
    wallets = await execute(SCHEMA, backend, "{ me { wallets { address } } }", token=token)
    assert [w["address"] for w in wallets.data["me"]["wallets"]] == [ALICE_ADDR, BOB_ADDR]


async def test_unlinking_the_last_wallet_is_refused_with_a_reason(backend: FakeBackend) -> None:
    alice = backend.add_user("alice", ALICE_ADDR)
    token = backend.sign_in_as(alice)
    result = await execute(SCHEMA, backend, 'mutation($id: ID!) { unlinkWallet(walletId: $id) { unlinkedWalletId } }',
                           variables={"id": backend.wallets[alice][0].wallet_id}, token=token)
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result.errors[0].extensions["reason"] == "FAILED_PRECONDITION"
    assert result.errors[0].message == "cannot unlink the last wallet"


async def test_sign_in_input_is_checked_before_going_upstream(backend: FakeBackend) -> None:
    bad_address = await execute(SCHEMA, backend, 'mutation { nonce(address: "0x12", chainId: 1) { nonce } }')
    bad_chain = await execute(SCHEMA, backend, 'mutation($a: String!) { nonce(address: $a, chainId: 0) { nonce } }',
                              variables={"a": ALICE_ADDR})
    bad_signature = await execute(SCHEMA, backend, 'mutation { signIn(message: "x", signature: "zz") { accessToken } }')
    assert codes(bad_address) == codes(bad_chain) == codes(bad_signature) == ["BAD_USER_INPUT"]
    assert backend.calls["CreateNonce"] == backend.calls["SignIn"] == 0


def test_message_fields_follow_eip_4361() -> None:
    message = (
        "app.example wants you to sign in with your Ethereum account:\n"
        f"{ALICE_ADDR}\n\nSign in to mintplane.\n\nURI: https://app.example\nVersion: 1\nChain ID: 137\n"
        "Nonce: abcdef123456\nIssued At: 2026-01-01T00:00:00Z\nExpiration Time: 2026-01-01T00:05:00Z"
    )
    fields = parse_message_fields(message)
    assert (fields.domain, fields.address, fields.statement) == ("app.example", ALICE_ADDR, "Sign in to mintplane.")
    assert (fields.uri, fields.version, fields.chain_id, fields.nonce) == ("https://app.example", "1", 137,
                                                                          "abcdef123456")
    assert fields.expiration_time == "2026-01-01T00:05:00Z"
    without_statement = parse_message_fields(message.replace("Sign in to mintplane.\n\n", ""))
    assert without_statement.statement is None and without_statement.chain_id == 137
    assert parse_message_fields("not a sign-in message") == type(fields)()

"""The identity API end to end: real HTTP to a real gateway process, with real auth, user and wallet
processes over the dev stack's PostgreSQL and Redis, and real secp256k1 signatures from eth-account keys."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from mintplane.gateway.localstack import LocalStack, delete_identities, local_stack

pytestmark = pytest.mark.e2e

CHAIN_ID = 31337
NONCE_LIMIT = 3
SIGN_IN = """mutation($m: String!, $s: String!) { signIn(message: $m, signature: $s) {
  accessToken refreshToken tokenType expiresAt isNewUser session { id state current }
  viewer { id address wallets { address isPrimary } } } }"""


# Users and addresses this module created, deleted when it ends.
CREATED_USERS: list[str] = []
CREATED_ADDRESSES: list[str] = []


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[LocalStack]:
    limits = {"MINTPLANE_AUTH_RATE_LIMIT_NONCE_ADDRESS": f"{NONCE_LIMIT}/minute",
              "MINTPLANE_AUTH_RATE_LIMIT_SIGNIN_IP": "10000/minute"}
    try:
        async with local_stack(extra_env={"auth": limits}) as running:
            yield running
    finally:
        await delete_identities(CREATED_USERS, CREATED_ADDRESSES)


def new_account() -> LocalAccount:
    account: LocalAccount = Account.create()
    CREATED_ADDRESSES.append(account.address)
    return account


@pytest.fixture
async def http(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as client:
        yield client


@dataclass
class Signed:
    """A user signed in through the gateway."""

    account: LocalAccount
    access_token: str
    refresh_token: str
    user_id: str
    session_id: str


def sign(account: LocalAccount, message: str) -> str:
    return "0x" + bytes(account.sign_message(encode_defunct(text=message)).signature).hex()


async def gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
              token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "Traceback" not in response.text
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def sign_in(http: httpx.AsyncClient, account: LocalAccount | None = None) -> tuple[Signed, dict[str, Any]]:
    account = account or new_account()
    nonce = await gql(http, "mutation($a: String!, $c: Int!) { nonce(address: $a, chainId: $c) { message nonce } }",
                      {"a": account.address, "c": CHAIN_ID})
    assert "errors" not in nonce, nonce
    message = nonce["data"]["nonce"]["message"]
    body = await gql(http, SIGN_IN, {"m": message, "s": sign(account, message)})
    assert "errors" not in body, body
    payload = body["data"]["signIn"]
    CREATED_USERS.append(payload["viewer"]["id"])
    return Signed(account, payload["accessToken"], payload["refreshToken"], payload["viewer"]["id"],
                  payload["session"]["id"]), payload


async def test_sign_in_profile_follow_link_refresh_sign_out(http: httpx.AsyncClient) -> None:
    alice, payload = await sign_in(http)
    assert payload["isNewUser"] is True and payload["tokenType"] == "Bearer"
    assert payload["session"] == {"id": alice.session_id, "state": "ACTIVE", "current": True}
    assert payload["viewer"]["address"] == alice.account.address.lower()
    assert payload["viewer"]["wallets"] == [{"address": alice.account.address.lower(), "isPrimary": True}]

    again, second = await sign_in(http, alice.account)
    assert second["isNewUser"] is False and again.user_id == alice.user_id

    me = await gql(http, """{ me { id address sessionId preferences { theme privacyLevel }
                               stats { followersCount followingCount } wallets { address isPrimary } } }""",
                   token=alice.access_token)
    assert "errors" not in me, me
    assert me["data"]["me"]["id"] == alice.user_id and me["data"]["me"]["sessionId"] == alice.session_id

    username = f"al_{uuid.uuid4().hex[:12]}"
    updated = await gql(http, """mutation($u: String!) { updateProfile(input: {username: $u, displayName: "Alice",
                                   bio: "collects things"}) { username displayName bio } }""",
                        {"u": username}, token=alice.access_token)
    assert updated["data"]["updateProfile"] == {"username": username, "displayName": "Alice",
                                                "bio": "collects things"}
    public = await gql(http, "query($u: String!) { user(username: $u) { id displayName } }", {"u": username.upper()})
    assert public["data"]["user"] == {"id": alice.user_id, "displayName": "Alice"}

    bob, _ = await sign_in(http)
    followed = await gql(http, "mutation($id: ID!) { follow(userId: $id) { changed user { id viewerIsFollowing } } }",
                         {"id": bob.user_id}, token=alice.access_token)
    assert followed["data"]["follow"] == {"changed": True, "user": {"id": bob.user_id, "viewerIsFollowing": True}}
    bobs_followers = await gql(http, """query($id: ID!) { userById(id: $id) { stats { followersCount }
        followers(first: 10) { totalCount edges { cursor node { id } } pageInfo { hasNextPage } } } }""",
        {"id": bob.user_id})
    bob_view = bobs_followers["data"]["userById"]
    assert [edge["node"]["id"] for edge in bob_view["followers"]["edges"]] == [alice.user_id]
    assert bob_view["stats"]["followersCount"] == 1 and bob_view["followers"]["pageInfo"]["hasNextPage"] is False

    second_key = new_account()
    challenge = await gql(http, """mutation($a: String!, $c: Int!) {
        linkWalletChallenge(address: $a, chainId: $c) { message expiresAt } }""",
        {"a": second_key.address, "c": CHAIN_ID}, token=alice.access_token)
    assert "errors" not in challenge, challenge
    message = challenge["data"]["linkWalletChallenge"]["message"]
    linked = await gql(http, """mutation($m: String!, $s: String!) {
        linkWallet(message: $m, signature: $s, label: "cold storage", connector: "metamask") {
          created wallet { address isPrimary label connector } } }""",
        {"m": message, "s": sign(second_key, message)}, token=alice.access_token)
    assert "errors" not in linked, linked
    assert linked["data"]["linkWallet"] == {"created": True, "wallet": {
        "address": second_key.address.lower(), "isPrimary": False, "label": "cold storage", "connector": "metamask"}}
    wallets = await gql(http, "{ wallets { address isPrimary } }", token=alice.access_token)
    assert sorted(w["address"] for w in wallets["data"]["wallets"]) == sorted(
        [alice.account.address.lower(), second_key.address.lower()])

    refreshed = await gql(http, "mutation($r: String!) { refresh(refreshToken: $r) { accessToken refreshToken "
                                "viewer { id } session { id } } }", {"r": alice.refresh_token})
    assert "errors" not in refreshed, refreshed
    fresh = refreshed["data"]["refresh"]
    assert fresh["viewer"]["id"] == alice.user_id and fresh["session"]["id"] == alice.session_id
    assert fresh["refreshToken"] != alice.refresh_token

    out = await gql(http, "mutation { signOut { revokedCount } }", token=fresh["accessToken"])
    assert out["data"]["signOut"]["revokedCount"] == 1
    for token in (fresh["accessToken"], alice.access_token):
        refused = await gql(http, "{ me { id } }", token=token)
        assert refused["data"] == {"me": None} and codes(refused) == ["UNAUTHENTICATED"]
    other_session = await gql(http, "{ me { id } }", token=again.access_token)
    assert other_session["data"]["me"]["id"] == alice.user_id  # signing out one session leaves the others


async def test_reusing_a_rotated_refresh_token_revokes_the_session(http: httpx.AsyncClient) -> None:
    user, _ = await sign_in(http)
    first = await gql(http, "mutation($r: String!) { refresh(refreshToken: $r) { accessToken } }",
                      {"r": user.refresh_token})
    assert "errors" not in first
    replay = await gql(http, "mutation($r: String!) { refresh(refreshToken: $r) { accessToken } }",
                       {"r": user.refresh_token})
    assert codes(replay) == ["UNAUTHENTICATED"]
    after = await gql(http, "{ me { id } }", token=first["data"]["refresh"]["accessToken"])
    assert codes(after) == ["UNAUTHENTICATED"]


VICTIM_VIEW = "{ me { displayName preferences { theme } wallets { id address isPrimary label } } }"


async def test_one_user_cannot_touch_another_users_data(http: httpx.AsyncClient) -> None:
    attacker, _ = await sign_in(http)
    victim, _ = await sign_in(http)
    username = f"vi_{uuid.uuid4().hex[:12]}"
    await gql(http, 'mutation($u: String!) { updateProfile(input: {username: $u, displayName: "Victim"}) { id } }',
              {"u": username}, token=victim.access_token)
    await gql(http, "mutation { updatePreferences(input: {theme: DARK}) { theme } }", token=victim.access_token)
    victim_before = await gql(http, VICTIM_VIEW, token=victim.access_token)
    victim_wallet = victim_before["data"]["me"]["wallets"][0]["id"]

    sessions = await gql(http, "{ sessions(includeInactive: true) { edges { node { id } } } }",
                         token=attacker.access_token)
    assert victim.session_id not in [edge["node"]["id"] for edge in sessions["data"]["sessions"]["edges"]]

    attempts = [
        ("mutation($id: ID!) { revokeSession(id: $id) { id } }", {"id": victim.session_id}),
        ("mutation($id: ID!) { unlinkWallet(walletId: $id) { unlinkedWalletId } }", {"id": victim_wallet}),
        ("mutation($id: ID!) { setPrimaryWallet(walletId: $id) { id } }", {"id": victim_wallet}),
        ('mutation($id: ID!) { updateWalletLabel(walletId: $id, label: "pwned") { id } }', {"id": victim_wallet}),
    ]
    for query, variables in attempts:
        body = await gql(http, query, variables, token=attacker.access_token)
        assert codes(body) and set(codes(body)) <= {"FORBIDDEN", "NOT_FOUND"}, (query, body)

    # Profile and preference mutations take no user argument: they can only ever name the caller.
    for query in ('mutation($id: ID!) { updateProfile(userId: $id, input: {displayName: "x"}) { id } }',
                  'mutation($id: ID!) { updatePreferences(userId: $id, input: {theme: LIGHT}) { theme } }'):
        body = await gql(http, query, {"id": victim.user_id}, token=attacker.access_token)
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    private = await gql(http, "query($u: String!) { user(username: $u) { preferences { theme } } }", {"u": username},
                        token=attacker.access_token)
    assert codes(private) == ["GRAPHQL_VALIDATION_FAILED"]

    # Linking the victim's address needs the victim's key: a proof signed by the attacker is refused.
    challenge = await gql(http, "mutation($a: String!) { linkWalletChallenge(address: $a, chainId: 31337) "
                                "{ message } }", {"a": victim.account.address}, token=attacker.access_token)
    message = challenge["data"]["linkWalletChallenge"]["message"]
    stolen = await gql(http, "mutation($m: String!, $s: String!) { linkWallet(message: $m, signature: $s) "
                             "{ created } }", {"m": message, "s": sign(attacker.account, message)},
                       token=attacker.access_token)
    assert codes(stolen) and set(codes(stolen)) <= {"UNAUTHENTICATED", "FORBIDDEN", "BAD_USER_INPUT"}

    victim_after = await gql(http, VICTIM_VIEW, token=victim.access_token)
    assert victim_after == victim_before
    attacker_wallets = await gql(http, "{ wallets { address } }", token=attacker.access_token)
    assert victim.account.address.lower() not in [w["address"] for w in attacker_wallets["data"]["wallets"]]


async def test_bad_input_is_bad_user_input_without_internals(http: httpx.AsyncClient) -> None:
    user, _ = await sign_in(http)
    cases = [
        ('mutation { nonce(address: "0xnot-an-address", chainId: 1) { nonce } }', None),
        ('mutation { updateProfile(input: {username: "Bad Name!"}) { username } }', user.access_token),
        ('{ userById(id: "42; DROP TABLE users") { id } }', None),
        ('{ me { followers(first: 1000) { totalCount } } }', user.access_token),
        ('mutation { signIn(message: "hello", signature: "0x1234") { accessToken } }', None),
    ]
    for query, token in cases:
        response = await http.post("/graphql", json={"query": query},
                                   headers={"authorization": f"Bearer {token}"} if token else {})
        body = response.json()
        assert codes(body) == ["BAD_USER_INPUT"], (query, body)
        for leak in ("Traceback", "File \"", "asyncpg", "grpc", "StatusCode", "127.0.0.1:"):
            assert leak not in response.text, (query, response.text)


async def test_nonce_flood_is_rate_limited(http: httpx.AsyncClient) -> None:
    address = new_account().address
    seen = []
    for _ in range(NONCE_LIMIT + 2):
        body = await gql(http, "mutation($a: String!) { nonce(address: $a, chainId: 31337) { nonce } }", {"a": address})
        seen.append(codes(body))
    assert seen[:NONCE_LIMIT] == [[]] * NONCE_LIMIT
    assert seen[-1] == ["RATE_LIMITED"]


async def test_oversized_and_too_deep_requests_are_refused(http: httpx.AsyncClient) -> None:
    huge = await http.post("/graphql", json={"query": "{ me { id } }", "variables": {"pad": "x" * 200_000}})
    assert huge.status_code == 413
    assert huge.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    query = "id"
    for _ in range(6):
        query = f"followers(first: 1) {{ edges {{ node {{ {query} }} }} }}"
    deep = await http.post("/graphql", json={"query": f'{{ user(username: "nobody") {{ {query} }} }}'})
    body = deep.json()
    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    assert codes(body)[0] == "GRAPHQL_VALIDATION_FAILED"


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_access_tokens_verify_offline_with_the_published_jwks(http: httpx.AsyncClient) -> None:
    user, _ = await sign_in(http)
    jwks = await http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and "max-age" in jwks.headers["cache-control"]
    keys = {key["kid"]: key for key in jwks.json()["keys"]}
    header_b64, claims_b64, signature_b64 = user.access_token.split(".")
    header = json.loads(_b64(header_b64))
    key = keys[header["kid"]]
    signing_input = f"{header_b64}.{claims_b64}".encode()
    signature = _b64(signature_b64)
    if key["kty"] == "OKP":
        ed25519.Ed25519PublicKey.from_public_bytes(_b64(key["x"])).verify(signature, signing_input)
    else:
        numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(_b64(key["x"])), int.from_bytes(_b64(key["y"])),
                                                ec.SECP256R1())
        der = encode_dss_signature(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
        numbers.public_key().verify(der, signing_input, ec.ECDSA(SHA256()))
    claims = json.loads(_b64(claims_b64))
    assert claims["sub"] == user.user_id


async def test_probes(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["upstreams"] == {
        "auth": "SERVING", "user": "SERVING", "wallet": "SERVING", "catalog": "SERVING", "chain_registry": "SERVING",
        "media": "SERVING"}

"""Wallet proofs and addresses without I/O: EIP-4361 parsing and checks, EIP-191 recovery (the shared
verifier's EOA step) with real keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from mintplane.common.errors import InvalidArgument, PermissionDenied, Unauthenticated
from mintplane.common.signatures import eip191_digest, is_eoa_signer
from mintplane.wallet import addresses, proof

pytestmark = pytest.mark.unit

POLICY = proof.LinkPolicy(
    allowed_domains=frozenset({"localhost", "app.mintplane.io"}),
    max_age=timedelta(minutes=10),
    clock_skew=timedelta(seconds=60),
)
NOW = datetime.now(UTC)


def _sign(text: str, key: bytes) -> bytes:
    return bytes(Account.sign_message(encode_defunct(text=text), key).signature)


def _message(address: str, user: uuid.UUID | None, **overrides: object) -> str:
    fields: dict[str, object] = {
        "domain": "app.mintplane.io", "uri": "https://app.mintplane.io/settings", "chain": 1,
        "issued": NOW, "expires": NOW + timedelta(minutes=5), "nonce": "n0nceN0nce1234",
        "resources": [f"urn:mintplane:user:{user}"] if user else [],
    }
    fields.update(overrides)
    lines = [
        f"{fields['domain']} wants you to sign in with your Ethereum account:", address, "",
        "Link this wallet.", "",
        f"URI: {fields['uri']}", "Version: 1", f"Chain ID: {fields['chain']}", f"Nonce: {fields['nonce']}",
        f"Issued At: {fields['issued']:%Y-%m-%dT%H:%M:%S.000Z}",
    ]
    if fields["expires"] is not None:
        lines.append(f"Expiration Time: {fields['expires']:%Y-%m-%dT%H:%M:%S.000Z}")
    resources = fields["resources"]
    assert isinstance(resources, list)
    if resources:
        lines += ["Resources:", *(f"- {r}" for r in resources)]
    return "\n".join(lines)


def test_challenge_parses_checks_and_recovers_to_its_signer() -> None:
    account = Account.create()
    user = uuid.uuid4()
    text, nonce, issued, expires = proof.challenge(
        user, account.address.lower(), 31337, "localhost:8081", "http://localhost:8081", NOW, timedelta(minutes=5)
    )
    parsed = proof.parse(text, POLICY)
    assert parsed.address == account.address.lower()
    assert (parsed.chain, parsed.nonce, parsed.bound_user) == ("eip155:31337", nonce, user)
    assert parsed.expires_at == expires and expires - issued == timedelta(minutes=5)
    assert len(nonce) == 20 and nonce.isalnum()
    proof.check(parsed, user, NOW, POLICY)
    digest = eip191_digest(text.encode())
    assert is_eoa_signer(digest, _sign(text, account.key), parsed.address)
    assert not is_eoa_signer(digest, _sign(text, Account.create().key), parsed.address)
    assert not is_eoa_signer(digest, b"\x00" * 65, parsed.address)
    assert not is_eoa_signer(digest, b"\x01" * 10, parsed.address)


@pytest.mark.parametrize(
    ("overrides", "reason", "error"),
    [
        ({"expires": NOW - timedelta(seconds=1)}, "expired", Unauthenticated),
        ({"issued": NOW - timedelta(minutes=11), "expires": None}, "expired", Unauthenticated),  # max age
        ({"issued": NOW + timedelta(minutes=5)}, "issued_in_future", Unauthenticated),
        ({"domain": "evil.example"}, "domain_not_allowed", Unauthenticated),
        ({"resources": [f"urn:mintplane:user:{uuid.uuid4()}"]}, "user_mismatch", PermissionDenied),
    ],
)
def test_refused_messages_carry_a_reason_and_status(
    overrides: dict[str, object], reason: str, error: type[Exception]
) -> None:
    account = Account.create()
    user = uuid.uuid4()
    text = _message(account.address, user, **overrides)
    with pytest.raises(proof.ProofRejected) as caught:
        proof.check(proof.parse(text, POLICY), user, NOW, POLICY)
    assert caught.value.reason == reason
    assert isinstance(caught.value.error, error)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "malformed"),
        ("hello, please link", "malformed"),
        ("x" * 5000, "malformed"),
    ],
)
def test_malformed_messages_are_invalid_argument(text: str, reason: str) -> None:
    with pytest.raises(proof.ProofRejected) as caught:
        proof.parse(text, POLICY)
    assert caught.value.reason == reason and isinstance(caught.value.error, InvalidArgument)


def test_lowercase_address_in_message_is_not_eip4361_and_two_users_are_ambiguous() -> None:
    account = Account.create()
    with pytest.raises(proof.ProofRejected, match="EIP-4361"):
        proof.parse(_message(account.address.lower(), None), POLICY)
    two = [f"urn:mintplane:user:{uuid.uuid4()}", f"urn:mintplane:user:{uuid.uuid4()}"]
    with pytest.raises(proof.ProofRejected) as caught:
        proof.parse(_message(account.address, None, resources=two), POLICY)
    assert caught.value.reason == "ambiguous_user"


def test_unbound_message_parses_without_a_user() -> None:
    account = Account.create()
    parsed = proof.parse(_message(account.address, None), POLICY)
    assert parsed.bound_user is None
    proof.check(parsed, uuid.uuid4(), NOW, POLICY)  # binding is enforced by the caller (first wallet only)


def test_addresses_have_one_canonical_form_and_checksums_are_enforced() -> None:
    account = Account.create()
    lower = account.address.lower()
    upper = "0x" + account.address[2:].upper()
    assert addresses.canonical(account.address) == lower
    assert addresses.canonical(lower) == lower
    assert addresses.canonical(upper) == lower
    assert addresses.checksum(lower) == account.address
    # EIP-55's own example, with the case of one letter flipped: a typo the checksum catches
    eip55 = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert addresses.canonical(eip55) == eip55.lower()
    with pytest.raises(InvalidArgument, match="checksum"):
        addresses.canonical("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
    for bad in ("0x123", "abc", "0x" + "g" * 40, lower[2:]):
        with pytest.raises(InvalidArgument):
            addresses.canonical(bad)
    assert addresses.chain_numeric("eip155:137") == 137
    for bad_chain in ("eip155:0", "solana:mainnet", "137", "eip155:-1"):
        with pytest.raises(InvalidArgument):
            addresses.chain_numeric(bad_chain)

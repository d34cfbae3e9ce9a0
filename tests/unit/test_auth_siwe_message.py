"""EIP-4361 message rules of the auth service, without I/O: parsing limits, canonical form, the checks siwe
leaves to applications (domain, URI origin, chain, times with clock skew) and siwe's own EOA check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from mintplane.auth.errors import Outcome, SignInRejected
from mintplane.auth.settings import AuthSettings
from mintplane.auth.siwe_message import (
    MessagePolicy,
    build_message,
    chain_numeric,
    check_message,
    default_uri,
    normalize_address,
    parse_message,
    siwe,
    sniff_address,
    verify_eoa_signature,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
ACCOUNT = Account.from_key("0x" + "11" * 32)


def _policy(**overrides: object) -> MessagePolicy:
    return MessagePolicy.from_settings(AuthSettings(**overrides))  # type: ignore[arg-type]


def _message(**fields: object) -> str:
    values: dict[str, object] = {
        "domain": "localhost:3000", "address": ACCOUNT.address, "uri": "http://localhost:3000", "chain": 31337,
        "nonce": "abcdefgh12345678", "statement": "Sign in to mintplane.", "issued_at": NOW,
        "expires_at": NOW + timedelta(minutes=5),
    } | fields
    return build_message(**values)  # type: ignore[arg-type]


def _raw(**fields: object) -> str:
    """A message with fields build_message does not offer (not-before, odd values)."""
    values: dict[str, object] = {
        "domain": "localhost:3000", "address": ACCOUNT.address, "uri": "http://localhost:3000", "version": "1",
        "chain_id": 31337, "nonce": "abcdefgh12345678", "issued_at": siwe.siwe.ISO8601Datetime.from_datetime(NOW),
    } | fields
    return str(siwe.SiweMessage(**values).prepare_message())


def _outcome(call: object, *args: object) -> str:
    with pytest.raises(SignInRejected) as rejected:
        call(*args)  # type: ignore[operator]
    return rejected.value.outcome.value


@pytest.mark.parametrize("abnf", [False, True])
def test_built_message_parses_back_to_the_same_fields(abnf: bool) -> None:
    text = _message()
    signed = parse_message(text, _policy(auth_siwe_abnf_parser=abnf))
    assert signed.address == ACCOUNT.address.lower() and signed.domain == "localhost:3000"
    assert signed.caip2 == "eip155:31337" and signed.nonce == "abcdefgh12345678" and signed.text == text
    assert f"\n{ACCOUNT.address}\n" in text  # EIP-55 checksummed, as EIP-4361 requires
    assert "Expiration Time: 2026-11-25T12:05:00.000Z" in text
    check_message(signed, _policy(), NOW)


def test_oversized_and_odd_messages_are_malformed_before_any_parser_runs() -> None:
    policy = _policy(auth_max_message_bytes=1024)
    assert _outcome(parse_message, _message(statement="x" * 2000), policy) == "malformed"
    assert _outcome(parse_message, "", policy) == "malformed"
    assert _outcome(parse_message, _message().replace("\n", "\r\n"), policy) == "malformed"
    assert _outcome(parse_message, _message() + "\x00", policy) == "malformed"


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        _message() + "\n",  # trailing newline: not the canonical text of its fields
        _message().replace(ACCOUNT.address, ACCOUNT.address.lower()),  # not EIP-55
        _message().replace("Version: 1", "Version: 2"),
        _message().replace("Chain ID: 31337", "Chain ID: 0"),
        _message().replace("Chain ID: 31337", "Chain ID: 99999999999999999999999"),
        _message().replace("Nonce: abcdefgh12345678", "Nonce: short"),
        _message().replace("Nonce: abcdefgh12345678", "Nonce: " + "a" * 65),
        _message().replace("Issued At: 2026-11-25T12:00:00.000Z", "Issued At: yesterday"),
    ],
)
def test_malformed_messages_are_refused(text: str) -> None:
    assert _outcome(parse_message, text, _policy()) == "malformed"


def test_domain_must_be_allowed() -> None:
    signed = parse_message(_message(domain="evil.example", uri="https://evil.example"), _policy())
    assert _outcome(check_message, signed, _policy(), NOW) == "domain_mismatch"
    allowed = _policy(auth_allowed_domains=["evil.example"])
    check_message(signed, allowed, NOW)
    upper = parse_message(_message(domain="LOCALHOST:3000", uri="http://localhost:3000"), _policy())
    check_message(upper, _policy(), NOW)  # authorities compare case-insensitively


@pytest.mark.parametrize(
    ("domain", "uri", "ok"),
    [
        ("localhost:3000", "http://localhost:3000/login?next=/", True),
        ("app.example", "https://app.example/path", True),
        ("app.example", "http://app.example/", False),  # plain http only for loopback hosts
        ("app.example", "https://evil.example/", False),
        ("app.example", "https://app.example:8443/", False),  # another port is another origin
        ("localhost:3000", "http://localhost:3001/", False),
        ("app.example", "https://cdn.example/", True),  # allow-listed extra origin
    ],
)
def test_uri_must_share_the_domains_origin(domain: str, uri: str, ok: bool) -> None:
    policy = _policy(auth_allowed_domains=["localhost:3000", "app.example"],
                     auth_allowed_uri_origins=["https://cdn.example"])
    signed = parse_message(_message(domain=domain, uri=uri), policy)
    if ok:
        check_message(signed, policy, NOW)
    else:
        assert _outcome(check_message, signed, policy, NOW) == "uri_mismatch"


def test_chain_allow_list() -> None:
    signed = parse_message(_message(chain=1), _policy())
    check_message(signed, _policy(), NOW)  # empty list: any eip155 chain
    assert _outcome(check_message, signed, _policy(auth_allowed_chains=["eip155:31337"]), NOW) == "chain_mismatch"


def test_times_are_checked_with_clock_skew_for_clients_running_ahead() -> None:
    policy = _policy(auth_clock_skew_seconds=60)
    ahead = parse_message(_message(issued_at=NOW + timedelta(seconds=30)), policy)
    check_message(ahead, policy, NOW)
    future = parse_message(_message(issued_at=NOW + timedelta(minutes=5), expires_at=NOW + timedelta(minutes=9)),
                           policy)
    assert _outcome(check_message, future, policy, NOW) == "issued_in_future"
    expired = parse_message(_message(issued_at=NOW - timedelta(minutes=10), expires_at=NOW), policy)
    assert _outcome(check_message, expired, policy, NOW) == "expired_message"
    not_before = siwe.siwe.ISO8601Datetime.from_datetime
    soon = parse_message(_raw(not_before=not_before(NOW + timedelta(seconds=30))), policy)
    check_message(soon, policy, NOW)
    later = parse_message(_raw(not_before=not_before(NOW + timedelta(minutes=5))), policy)
    assert _outcome(check_message, later, policy, NOW) == "not_yet_valid"


def test_eoa_signature_is_recovered_over_the_exact_text() -> None:
    text = _message()
    signed = parse_message(text, _policy())
    signature = bytes(ACCOUNT.sign_message(encode_defunct(text=text)).signature)
    assert verify_eoa_signature(signed, signature)
    assert not verify_eoa_signature(signed, bytes(Account.create().sign_message(encode_defunct(text=text)).signature))
    assert not verify_eoa_signature(signed, b"\x00" * 65)  # not a curve point: no signer at all
    assert not verify_eoa_signature(signed, signature[:64] + b"\x05")  # impossible v
    assert not verify_eoa_signature(signed, b"\x11" * 64)
    other_text = _message(statement="Sign in to something else.")
    assert not verify_eoa_signature(parse_message(other_text, _policy()), signature)


def test_small_helpers() -> None:
    assert normalize_address(ACCOUNT.address) == ACCOUNT.address.lower()
    with pytest.raises(ValueError):
        normalize_address("0x123")
    assert chain_numeric("eip155:137") == 137
    for bad in ("eip155:0", "eip155:01", "cosmos:hub", "eip155:" + "9" * 20):
        with pytest.raises(ValueError):
            chain_numeric(bad)
    assert default_uri("localhost:3000") == "http://localhost:3000"
    assert default_uri("app.mintplane.io") == "https://app.mintplane.io"
    assert sniff_address(f"x wants you\n{ACCOUNT.address}\n") == ACCOUNT.address.lower()
    assert sniff_address("garbage") is None
    assert Outcome.SUCCESS.value == "success"

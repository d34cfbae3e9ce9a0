"""Input rules of the chain registry (mintplane.chain_registry.validation): pure functions, nothing running."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mintplane.chain_registry import validation
from mintplane.chain_registry.errors import Invalid
from mintplane.chain_registry.validation import Problems

pytestmark = pytest.mark.unit


def _check(fn: object, *args: object, **kwargs: object) -> tuple[object, list[str]]:
    problems = Problems()
    result = fn(problems, "f", *args, **kwargs)  # type: ignore[operator]
    return result, problems.items


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eip155:1", ("eip155:1", 1)),
        ("eip155:31337", ("eip155:31337", 31337)),
        ("eip155:2147483647", ("eip155:2147483647", 2**31 - 1)),
    ],
)
def test_caip2_accepts_eip155_chain_ids(value: str, expected: tuple[str, int]) -> None:
    assert _check(validation.caip2, value) == (expected, [])


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "is required"),
        ("eip155", "not a CAIP-2 chain id"),
        ("EIP155:1", "not a CAIP-2 chain id"),
        ("eip155:1:2", "not a CAIP-2 chain id"),
        ("cosmos:cosmoshub-4", "only eip155 chains are supported"),
        ("eip155:0", "without leading zeros"),
        ("eip155:007", "without leading zeros"),
        ("eip155:abc", "positive decimal"),
        ("eip155:2147483648", "above 2147483647"),
    ],
)
def test_caip2_refusals_say_why(value: str, fragment: str) -> None:
    result, problems = _check(validation.caip2, value)
    assert result is None
    assert len(problems) == 1 and problems[0].startswith("f: ") and fragment in problems[0]


def test_chain_numeric_must_agree_with_caip2() -> None:
    problems = Problems()
    validation.chain_numeric(problems, "n", 0, 5)  # unset: derived
    validation.chain_numeric(problems, "n", 5, 5)
    assert problems.items == []
    validation.chain_numeric(problems, "n", 6, 5)
    assert problems.items == ["n: 6 contradicts the caip2, whose chain id is 5"]


def test_problems_are_reported_together() -> None:
    problems = Problems()
    problems.add("a", "first")
    problems.add("b", "second")
    with pytest.raises(Invalid) as info:
        problems.raise_if_any()
    assert info.value.message == "a: first; b: second"
    Problems().raise_if_any()  # nothing to report: no error


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0x5FbDB2315678afecb367f032d93F642f64180aa3", "0x5fbdb2315678afecb367f032d93f642f64180aa3"),  # EIP-55
        ("0x5fbdb2315678afecb367f032d93f642f64180aa3", "0x5fbdb2315678afecb367f032d93f642f64180aa3"),
        ("0x5FBDB2315678AFECB367F032D93F642F64180AA3", "0x5fbdb2315678afecb367f032d93f642f64180aa3"),
    ],
)
def test_address_is_lowercased(value: str, expected: str) -> None:
    assert _check(validation.address, value) == (expected, [])


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0x5FbDB2315678afecb367f032d93F642f64180aA3", "invalid EIP-55 checksum"),
        ("5fbdb2315678afecb367f032d93f642f64180aa3", "0x-prefixed"),
        ("0x5fbdb2315678afecb367f032d93f642f64180aa", "0x-prefixed"),
        ("0xZZbdb2315678afecb367f032d93f642f64180aa3", "0x-prefixed"),
        ("0x0000000000000000000000000000000000000000", "zero address"),
        ("", "is required"),
    ],
)
def test_address_refusals(value: str, fragment: str) -> None:
    result, problems = _check(validation.address, value)
    assert result is None and fragment in problems[0]


def test_optional_address_may_be_empty() -> None:
    assert _check(validation.address, "", required=False) == (None, [])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("HTTP://Example.COM:8545/rpc", "http://example.com:8545/rpc"),
        ("https://rpc.example.org", "https://rpc.example.org"),
        ("wss://Node.Example.org/ws?network=mainnet", "wss://node.example.org/ws?network=mainnet"),
        ("http://[::1]:8545", "http://[::1]:8545"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("https://api.avax.network/ext/bc/C/rpc", "https://api.avax.network/ext/bc/C/rpc"),
    ],
)
def test_rpc_url_normalises_scheme_and_host(value: str, expected: str) -> None:
    assert _check(validation.rpc_url, value) == (expected, [])


@pytest.mark.parametrize(
    ("value", "fragment", "secret"),
    [
        ("https://user:pa55word@rpc.example.org", "must not carry credentials", "pa55word"),
        ("https://token@rpc.example.org", "must not carry credentials", "token@"),
        ("https://eth-mainnet.g.alchemy.com/v2/AbCdEf0123456789GhIjKlMn", "looks like an API key", "AbCdEf0123"),
        ("https://x.quiknode.pro/0a1b2c3d4e5f60718293a4b5c6d7e8f9/", "looks like an API key", "0a1b2c3d"),
        ("https://rpc.example.org/?api_key=abc", "looks like a credential", "abc"),
        ("https://rpc.example.org/?TOKEN=abc", "looks like a credential", None),
        ("ftp://rpc.example.org", "scheme 'ftp' is not allowed", None),
        ("rpc.example.org:8545", "is not allowed", None),
        ("https://", "has no host", None),
        ("https://rpc.example.org:99999", "not a valid URL", None),
        ("https://rpc.example.org/#x", "#fragment", None),
        ("https://rpc.example.org/\n", "whitespace", None),
        ("", "is required", None),
        ("https://e.org/" + "a/" * 1100, "longer than 2048", None),
    ],
)
def test_rpc_url_refusals_never_echo_credentials(value: str, fragment: str, secret: str | None) -> None:
    result, problems = _check(validation.rpc_url, value)
    assert result is None and len(problems) == 1 and fragment in problems[0], problems
    if secret:
        assert secret not in problems[0]


@pytest.mark.parametrize("value", ["secret://mintplane/rpc-keys/infura", "secret://default/a.b-c/API_KEY.v1"])
def test_secret_ref_accepts_kubernetes_secret_keys(value: str) -> None:
    assert _check(validation.secret_ref, value, needed=True, auth_label="BEARER") == (value, [])


@pytest.mark.parametrize(
    ("value", "needed", "fragment"),
    [
        ("", True, "is required when auth_type is BEARER"),
        ("secret://a/b/c", False, "must be empty when auth_type is BEARER"),
        ("sk_live_123", True, "never the credential itself"),
        ("secret://Upper/b/c", True, "never the credential itself"),
        ("secret://a/b", True, "never the credential itself"),
        ("vault://a/b/c", True, "never the credential itself"),
    ],
)
def test_secret_ref_refusals(value: str, needed: bool, fragment: str) -> None:
    result, problems = _check(validation.secret_ref, value, needed=needed, auth_label="BEARER")
    assert result is None and fragment in problems[0]
    assert "sk_live_123" not in problems[0]


@pytest.mark.parametrize(
    ("value", "kind"),
    [("x-api-key", "header"), ("X-Api-Key", "header"), ("Authorization", "header"), ("apikey", "query"),
     ("api_key", "query"), ("a" * 64, "query"), ("x!#$%&'*+.^_`|~-1", "header")],
)
def test_auth_param_accepts_header_and_query_names(value: str, kind: str) -> None:
    label = f"API_KEY_{kind.upper()}"
    assert _check(validation.auth_param, value, kind=kind, auth_label=label) == (value, [])


@pytest.mark.parametrize(
    ("value", "kind", "fragment"),
    [
        ("", "header", "is required when auth_type is API_KEY_HEADER (the header name"),
        ("", "query", "is required when auth_type is API_KEY_QUERY (the query parameter name"),
        ("x-api-key", None, "must be empty when auth_type is API_KEY_HEADER"),
        ("x api key", "header", "must be 1-64 letters"),
        ("x-api-key:", "header", "must be 1-64 letters"),
        ("api\nkey", "header", "must be 1-64 letters"),
        ("key=v", "query", "must be 1-64 letters"),
        ("ключ", "query", "must be 1-64 letters"),
        ("a" * 65, "query", "must be 1-64 letters"),
        ("Content-Type", "header", "a header HTTP itself uses"),
        ("host", "header", "a header HTTP itself uses"),
        ("sk_live_0123456789abcdefXYZ", "header", "looks like an API key, not a header name"),
        ("0123456789abcdef0123456789abcdef", "query", "looks like an API key, not a query parameter name"),
    ],
)
def test_auth_param_refusals(value: str, kind: str | None, fragment: str) -> None:
    label = "API_KEY_HEADER" if kind in ("header", None) else "API_KEY_QUERY"
    result, problems = _check(validation.auth_param, value, kind=kind, auth_label=label)
    assert result is None and len(problems) == 1 and fragment in problems[0], problems
    if "looks like an API key" in fragment:
        assert value not in problems[0], "the refusal must not echo what may be a credential"


def test_query_auth_param_must_not_already_be_in_the_url() -> None:
    assert _check(validation.query_param_absent, "https://rpc.example.org/?network=main", "apikey") == (None, [])
    _, problems = _check(validation.query_param_absent, "https://rpc.example.org/?network=main&apikey=", "apikey")
    assert len(problems) == 1 and "already has the query parameter 'apikey'" in problems[0]
    # Query names are case-sensitive: another spelling is another parameter.
    assert _check(validation.query_param_absent, "https://rpc.example.org/?ApiKey=x", "apikey") == (None, [])


def test_decimal_amounts() -> None:
    assert _check(validation.decimal_amount, "1.5") == (Decimal("1.5"), [])
    assert _check(validation.decimal_amount, "0") == (Decimal("0"), [])
    assert _check(validation.decimal_amount, "0.000000001") == (Decimal("0.000000001"), [])
    for bad, fragment in [
        ("-1", "non-negative decimal"),
        ("1e3", "non-negative decimal"),
        ("NaN", "non-negative decimal"),
        (" 1", "non-negative decimal"),
        ("1.0000000001", "9 decimal places"),
        ("1" * 19, "implausibly large"),
    ]:
        result, problems = _check(validation.decimal_amount, bad)
        assert result is None and fragment in problems[0], (bad, problems)
    result, problems = _check(validation.decimal_amount, "0", positive=True)
    assert result is None and "greater than 0" in problems[0]


def test_features_are_deduplicated_and_sorted() -> None:
    assert _check(validation.features, ["eip1559", "eip1271", "eip1559"]) == (["eip1271", "eip1559"], [])
    result, problems = _check(validation.features, ["ok", "Not OK"])
    assert result == ["ok"] and problems == ["f[1]: 'Not OK' is not a feature flag (lowercase a-z 0-9 _ . -)"]


def test_text_and_symbol_and_page_size() -> None:
    assert _check(validation.text, "  Ethereum ", max_length=10) == ("Ethereum", [])
    assert _check(validation.text, "", max_length=10) == (None, [])
    assert _check(validation.text, "", max_length=10, required=True)[1] == ["f: is required"]
    assert "longer than 3" in _check(validation.text, "abcd", max_length=3)[1][0]
    assert "control characters" in _check(validation.text, "a\x00b", max_length=9)[1][0]
    assert _check(validation.symbol, "ETH") == ("ETH", [])
    assert _check(validation.symbol, "E TH")[1]
    assert _check(validation.page_size, 0) == (20, [])
    assert _check(validation.page_size, 1000) == (100, [])
    assert _check(validation.page_size, 7) == (7, [])
    assert _check(validation.page_size, -1)[1] == ["f: must not be negative"]


def test_probe_errors_lose_credentials_and_length() -> None:
    raw = (
        "HTTPSConnectionPool(host='mainnet.infura.io'): Max retries exceeded with url: "
        "https://bob:pw@mainnet.infura.io/v3/0123456789abcdef0123456789abcdef?apikey=hunter2&chain=1 "
        "and bare key QmFzZTY0S2V5VGhhdExvb2tzUmVhbDEyMzQ1"
    )
    cleaned = validation.probe_error(raw)
    assert cleaned is not None
    for secret in ("pw@", "0123456789abcdef", "hunter2", "QmFzZTY0S2V5VGhhdExvb2tzUmVhbDEyMzQ1"):
        assert secret not in cleaned, cleaned
    assert "mainnet.infura.io" in cleaned and "chain=1" in cleaned
    # block hashes and ordinary words survive
    hashy = "reorg at 0x" + "ab" * 32 + ": chain id mismatch: got 5, want 1"
    assert validation.probe_error(hashy) == hashy
    assert validation.probe_error("   ") is None
    long = validation.probe_error("x " * 2000)
    assert long is not None and len(long) == validation.MAX_ERROR_LENGTH and long.endswith("…")

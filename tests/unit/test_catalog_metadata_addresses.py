"""Which addresses the metadata fetcher refuses, and how tokenURI answers are decoded."""

from __future__ import annotations

import ipaddress

import pytest
from eth_abi.abi import encode

from mintplane.catalog.metadata.chain import UriRead, call_data, decode_uri, revert_reason
from mintplane.catalog.metadata.failures import PermanentFailure
from mintplane.catalog.metadata.fetch import refusal
from mintplane.common.jsonrpc import RpcError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("fd12::1", "private"),
    ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"), ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("100.64.0.1", "CGNAT"), ("100.127.255.254", "CGNAT"),
    ("240.0.0.1", "reserved"), ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.1.2.3", "private"),
    ("::ffff:169.254.169.254", "cloud metadata"), ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
    ("192.0.2.1", "private"),  # TEST-NET: not routable
])
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_call_data_uses_the_standard_s_selector() -> None:
    assert call_data(UriRead("0xabc", "1", "ERC721")) == "0xc87b56dd" + "0" * 63 + "1"
    assert call_data(UriRead("0xabc", "255", "ERC1155")) == "0x0e89341c" + "0" * 62 + "ff"


def test_decode_uri() -> None:
    assert decode_uri("0x" + encode(["string"], ["ipfs://x/1"]).hex(), "ERC721") == "ipfs://x/1"
    with pytest.raises(PermanentFailure, match="returned no data"):
        decode_uri("0x", "ERC721")
    with pytest.raises(PermanentFailure, match="did not return an ABI string"):
        decode_uri("0x" + "00" * 31 + "01", "ERC1155")
    with pytest.raises(PermanentFailure, match="malformed"):
        decode_uri(None, "ERC721")


def test_revert_reasons_are_short() -> None:
    assert revert_reason(RpcError(3, "execution reverted: ERC721NonexistentToken(7)"), "ERC721") == (
        "tokenURI reverted: ERC721NonexistentToken(7)")
    assert revert_reason(RpcError(3, "execution reverted"), "ERC1155") == "uri reverted"

"""Token URI forms -> fetch targets: ERC-1155 {id}, data: URIs, ipfs/ar gateways, http allow-list, refusals."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from mintplane.catalog.metadata.failures import PermanentFailure, size_text
from mintplane.catalog.metadata.uris import (
    InlineDocument,
    RemoteDocument,
    UriRules,
    decode_data_uri,
    display_url,
    document_target,
    substitute_id,
)

pytestmark = pytest.mark.unit
RULES = UriRules.of(["https://gw.example/", "https://gw2.example"], ["https://ar.example"],
                    ["127.0.0.1:8099", "files.local"], 1024)
CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"


def test_erc1155_id_is_64_lowercase_hex_digits() -> None:
    assert substitute_id("https://x.example/{id}.json", "255") == "https://x.example/" + "0" * 62 + "ff.json"
    big = str(2**256 - 1)
    assert substitute_id("{id}", big) == "f" * 64
    target = document_target("https://x.example/{id}.json", "10", "ERC1155", RULES)
    assert isinstance(target, RemoteDocument) and target.url.endswith("/" + "0" * 63 + "a.json")
    # ERC-721 URIs are taken literally
    literal = document_target("https://x.example/{id}.json", "10", "ERC721", RULES)
    assert isinstance(literal, RemoteDocument) and literal.url == "https://x.example/{id}.json"


def test_data_uris_base64_plain_and_percent_encoded() -> None:
    doc = {"name": "Token #1", "image": "ipfs://" + CID}
    raw = json.dumps(doc).encode()
    b64 = document_target("data:application/json;base64," + base64.b64encode(raw).decode(), "1", "ERC721", RULES)
    assert b64 == InlineDocument(raw, "application/json")
    plain = document_target("data:application/json," + json.dumps(doc), "1", "ERC721", RULES)
    assert isinstance(plain, InlineDocument) and json.loads(plain.body) == doc
    encoded = document_target("data:application/json;utf8," + quote(json.dumps(doc)), "1", "ERC721", RULES)
    assert isinstance(encoded, InlineDocument) and json.loads(encoded.body) == doc
    unpadded = base64.b64encode(b'{"a":1}').decode().rstrip("=")
    assert decode_data_uri("data:application/json;base64," + unpadded, 1024).body == b'{"a":1}'
    assert decode_data_uri("data:,{}", 1024).media_type == "text/plain"


@pytest.mark.parametrize(("uri", "reason"), [
    ("data:application/json;base64,@@@!", "not valid base64"),
    ("data:image/svg+xml;base64,PHN2Zz4=", "image/svg+xml, not a JSON document"),
    ("data:application/json", "no comma"),
    ("data:application/json," + "x" * 2000, "body larger than 1 KiB"),
    ("ftp://x.example/1.json", "unsupported URI scheme 'ftp'"),
    ("javascript:alert(1)", "unsupported URI scheme 'javascript'"),
    ("relative/path.json", "not an absolute URL"),
    ("", "empty token URI"),
    ("http://x.example/1.json", "plain http to x.example is not allowed"),
    ("https://user:pw@x.example/1.json", "carries credentials"),
    ("ipfs://not-a-cid!/1.json", "does not name a CID"),
    ("ar://short", "does not name an Arweave transaction"),
])
def test_refused_uris_say_why(uri: str, reason: str) -> None:
    with pytest.raises(PermanentFailure) as failure:
        document_target(uri, "1", "ERC721", RULES)
    assert reason in failure.value.reason


def test_ipfs_forms_go_through_the_gateways_rotated_per_attempt() -> None:
    for uri in (f"ipfs://{CID}/7.json", f"ipfs://ipfs/{CID}/7.json", f"/ipfs/{CID}/7.json", f"{CID}/7.json"):
        first = document_target(uri, "7", "ERC721", RULES, attempt=0)
        second = document_target(uri, "7", "ERC721", RULES, attempt=1)
        assert first == RemoteDocument(f"https://gw.example/ipfs/{CID}/7.json"), uri
        assert second == RemoteDocument(f"https://gw2.example/ipfs/{CID}/7.json"), uri
    spaced = document_target(f"ipfs://{CID}/a b.json", "1", "ERC721", RULES)
    assert isinstance(spaced, RemoteDocument) and spaced.url.endswith("/a%20b.json")


def test_arweave_goes_through_its_gateway() -> None:
    tx = "A" * 43
    assert document_target(f"ar://{tx}/meta/1", "1", "ERC721", RULES) == RemoteDocument(f"https://ar.example/{tx}/meta/1")


def test_plain_http_only_for_allow_listed_hosts() -> None:
    assert document_target("http://127.0.0.1:8099/1.json", "1", "ERC721", RULES) == RemoteDocument(
        "http://127.0.0.1:8099/1.json")
    assert isinstance(document_target("http://files.local:1234/1.json", "1", "ERC721", RULES), RemoteDocument)
    with pytest.raises(PermanentFailure):
        document_target("http://127.0.0.1:8100/1.json", "1", "ERC721", RULES)  # another port
    assert RULES.allowed("127.0.0.1", 8099) and not RULES.allowed("127.0.0.1", None)


def test_display_urls_rewrite_ipfs_and_drop_scripts() -> None:
    assert display_url(f"ipfs://{CID}/img.png", RULES) == f"https://gw.example/ipfs/{CID}/img.png"
    assert display_url("https://cdn.example/a.png", RULES) == "https://cdn.example/a.png"
    assert display_url("javascript:alert(1)", RULES) is None
    assert display_url("data:image/png;base64,AAAA", RULES) == "data:image/png;base64,AAAA"
    assert display_url(42, RULES) is None
    assert display_url("https://cdn.example/" + "a" * 3000, RULES) is None


def test_size_text() -> None:
    assert (size_text(1 << 20), size_text(64 << 10), size_text(1500)) == ("1 MiB", "64 KiB", "1500 bytes")

"""Local CIDs equal kubo's `ipfs add --cid-version 1` (vectors recorded from kubo 0.43.1 with its default
importer settings; tests/integration/test_media_cids.py checks the same against the running node)."""

from __future__ import annotations

import functools
import hashlib

import pytest
from multiformats import CID, varint

from mintplane.media import cid

pytestmark = pytest.mark.unit

# The same bytes for every size: SHA-256 in counter mode, so a vector is reproducible from its length.
KUBO_VECTORS = {
    1000: "bafkreicstujskuoa2637cn6dt7hgd5qi3ytqg3ysdwmwppfkjakt45vsnu",  # one raw leaf
    262144: "bafkreigy5tcgloscldzhi2iadhemu2v7dj2u5wme7vgim2jlmnxindpsfi",  # exactly one chunk: still a leaf
    262145: "bafybeiavfl3mrv5rig3iqfle6aheyo3crcdzseal3jfwykhuwtmc4vtyjy",  # two leaves under one dag-pb node
    1048576: "bafybeifsyv5ykyj2c3sb4lnaravxx6tzmpc6wuv3g3p5xqoh5rhlhshcc4",  # four leaves
    174 * 262144: "bafybeie5xnk32fia7bu7dn2cvjojbnxskp6irq3xikyi6bdrh3v5yfddqy",  # a full root: 174 links
    174 * 262144 + 1: "bafybeibwfjx4gjco2cvbbqlhbtazzttn73bsxnan2t4zmxrjmolwknbe7y",  # 175 leaves: second level
    175 * 262144 + 100: "bafybeicmxqyxmuidqxaqcn3zsqr5e627aq2ewnf3tcq463j4tqt2apvfwy",
}


@functools.cache
def _stream(blocks: int) -> bytes:
    return b"".join(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(blocks))


def pattern(size: int) -> bytes:
    """A prefix of one cached stream (counter mode is prefix-stable), made once per test run."""
    return _stream(max(KUBO_VECTORS) // 32 + 1)[:size] if size <= max(KUBO_VECTORS) else _stream(size // 32 + 1)[:size]


def test_well_known_vectors() -> None:
    # kubo's docs and every IPFS implementation agree on these two.
    assert cid.compute(b"hello world") == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    assert cid.compute(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@pytest.mark.parametrize("size", sorted(KUBO_VECTORS))
def test_every_size_class_matches_kubo(size: int) -> None:
    assert cid.compute(pattern(size)) == KUBO_VECTORS[size]


def test_streamed_pieces_of_any_size_give_the_same_cid() -> None:
    data = pattern(3 * cid.CHUNK_SIZE + 12345)
    builder = cid.CidBuilder()
    for start, step in zip(range(0, len(data), 70001), [1, 70000, 300000] * 100, strict=False):
        builder.update(data[start:start + 70001][:step] + data[start + step:start + 70001])
    assert builder.size == len(data)
    assert builder.cid() == cid.compute(data)


def _links(node: bytes) -> list[tuple[bytes, int]]:
    """(child CID, Tsize) of each PBLink of an encoded dag-pb node (enough of a decoder for the test)."""
    links, pos = [], 0
    while node[pos] == 0x12:  # field 2 (Links), length-delimited
        length, read, _ = varint.decode_raw(node[pos + 1:])
        body = node[pos + 1 + read:pos + 1 + read + length]
        hash_len, hread, _ = varint.decode_raw(body[1:])
        child = body[1 + hread:1 + hread + hash_len]
        rest = body[1 + hread + hash_len:]
        assert rest[:2] == b"\x12\x00"  # Name: present and empty, as kubo writes it
        tsize, _, _ = varint.decode_raw(rest[3:])
        links.append((child, tsize))
        pos += 1 + read + length
    assert node[pos] == 0x0A  # then Data (field 1): links first is dag-pb's canonical order
    return links


def test_the_dag_is_balanced_with_174_links_per_node() -> None:
    size = 174 * cid.CHUNK_SIZE + 1
    builder = cid.CidBuilder()
    builder.update(pattern(size))
    root = builder.root()
    assert CID.decode(root.cid).codec.name == "dag-pb"
    assert root.file_size == size
    # The root of a 175-leaf file has two children: a full node of 174 leaves and a node with the last one.
    full = [cid.Block(cid=leaf.cid, tsize=leaf.tsize, file_size=leaf.file_size) for leaf in builder._leaves[:174]]
    last = [builder._leaves[174]]
    children = [cid._node(full), cid._node(last)]
    assert [child for child, _ in _links(cid.dag_pb_node(children))] == [c.cid for c in children]
    assert cid._node(children) == root
    assert [tsize for _, tsize in _links(cid.dag_pb_node(full))] == [cid.CHUNK_SIZE] * 174
    assert root.tsize == size + sum(len(cid.dag_pb_node(group)) for group in (full, last, children))


def test_parse_accepts_our_cids_and_converts_v0() -> None:
    text = cid.compute(b"hello world")
    assert cid.parse(f"  {text} ") == text
    v0 = "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u"  # a dag-pb CIDv0
    assert cid.parse(v0).startswith("bafybei")
    for bad in ("", "not-a-cid", "bafyreib" + "a" * 51):
        with pytest.raises(ValueError, match=r"CID"):
            cid.parse(bad)

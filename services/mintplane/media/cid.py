"""IPFS CIDs computed locally, byte for byte as `ipfs add --cid-version 1` (kubo/boxo) computes them.

Why locally: the service names, dedupes and serves content by CID before (and independently of) the IPFS
node answering, and checks the node's answer against its own, so a misconfigured node (other chunker, CIDv0,
no raw leaves) is caught instead of silently minting URIs nobody else can reproduce.

What kubo does for `--cid-version 1` (which implies `--raw-leaves`), with its default importer settings
(chunker `size-262144`, balanced layout, `Import.UnixFSFileMaxLinks` 174):

- the bytes are cut into 256 KiB chunks; each chunk is a *raw* block (multicodec `raw`, 0x55);
- one chunk (or an empty file) is the whole DAG: the CID is the raw leaf's;
- more chunks form a balanced DAG: the depth is the smallest d with 174**d >= chunks, and every internal node
  takes up to 174 children left to right, each child a full subtree one level down (the last one partial,
  even if that leaves a chain of one-child nodes);
- an internal node is dag-pb (0x70): `PBNode { Links (2) repeated PBLink, Data (1) bytes }`, links first as
  dag-pb's canonical form requires, each `PBLink { Hash (1) CID bytes, Name (2) "" , Tsize (3) }` where Tsize
  is the child's cumulative size (a raw leaf's length; a node's encoded length plus its children's Tsize);
- Data is UnixFS `Data { Type (1) File=2, filesize (3), blocksizes (4) repeated }`, blocksizes being each
  child's file-content length;
- every block is hashed with sha2-256; the CID is printed in base32 lower case (multibase prefix `b`).

The protobuf pieces are hand-encoded on purpose: the python protobuf runtime writes fields in field-number
order, which puts Data before Links and is not dag-pb's canonical encoding; the wire format here is three
field kinds, varints and length prefixes. CIDs, multihashes and varints come from `multiformats`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from multiformats import CID, multihash, varint

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174
RAW = "raw"
DAG_PB = "dag-pb"
_UNIXFS_FILE = 2


@dataclass(frozen=True)
class Block:
    """A block of the DAG as its parent links to it."""

    cid: bytes  # binary CIDv1
    tsize: int  # cumulative size: the block's encoded length plus everything below it
    file_size: int  # file content bytes below (and in) the block


def _cid(codec: str, payload: bytes | bytearray | memoryview) -> bytes:
    return bytes(CID("base32", 1, codec, multihash.wrap(hashlib.sha256(payload).digest(), "sha2-256")))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return varint.encode(number << 3 | 2) + varint.encode(len(payload)) + payload


def _uint(number: int, value: int) -> bytes:
    """A varint protobuf field (wire type 0)."""
    return varint.encode(number << 3) + varint.encode(value)


def _unixfs_file(file_size: int, block_sizes: Iterable[int]) -> bytes:
    return _uint(1, _UNIXFS_FILE) + _uint(3, file_size) + b"".join(_uint(4, size) for size in block_sizes)


def dag_pb_node(children: list[Block]) -> bytes:
    """The encoded dag-pb node of a UnixFS file over `children` (links first: dag-pb's canonical order)."""
    file_size = sum(child.file_size for child in children)
    links = b"".join(
        _field(2, _field(1, child.cid) + _field(2, b"") + _uint(3, child.tsize)) for child in children
    )
    return links + _field(1, _unixfs_file(file_size, (child.file_size for child in children)))


def _node(children: list[Block]) -> Block:
    encoded = dag_pb_node(children)
    return Block(
        cid=_cid(DAG_PB, encoded),
        tsize=len(encoded) + sum(child.tsize for child in children),
        file_size=sum(child.file_size for child in children),
    )


def _balanced(leaves: list[Block], depth: int) -> Block:
    """The subtree of height `depth` over `leaves`, filled greedily as boxo's balanced layout does."""
    if depth == 0:
        return leaves[0]
    per_child = MAX_LINKS ** (depth - 1)
    return _node([_balanced(leaves[i:i + per_child], depth - 1) for i in range(0, len(leaves), per_child)])


class CidBuilder:
    """Feeds bytes in any pieces and returns the file's CID; keeps only the leaves' CIDs in memory (about 40
    bytes per 256 KiB), so a stream is hashed as it arrives."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._leaves: list[Block] = []
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        self.size += len(view)
        if self._pending:  # top up the chunk a previous piece left open
            take = min(CHUNK_SIZE - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < CHUNK_SIZE:
                return
            self._leaf(self._pending)
            self._pending.clear()
        whole = len(view) - len(view) % CHUNK_SIZE
        for start in range(0, whole, CHUNK_SIZE):
            self._leaf(view[start:start + CHUNK_SIZE])
        self._pending += view[whole:]

    def _leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        self._leaves.append(Block(cid=_cid(RAW, chunk), tsize=len(chunk), file_size=len(chunk)))

    def root(self) -> Block:
        """The root block once every byte is in (the builder is spent afterwards)."""
        if self._pending or not self._leaves:
            self._leaf(self._pending)
            self._pending = bytearray()
        leaves = self._leaves
        depth = 0
        while MAX_LINKS**depth < len(leaves):
            depth += 1
        return _balanced(leaves, depth)

    def cid(self) -> str:
        return encode(self.root().cid)


def encode(cid: bytes) -> str:
    """Binary CID to its base32 text form (what kubo prints for CIDv1)."""
    return str(CID.decode(cid).set(base="base32"))


def compute(data: bytes | bytearray | memoryview) -> str:
    """The CID `ipfs add --cid-version 1` gives these bytes."""
    builder = CidBuilder()
    builder.update(data)
    return builder.cid()


def parse(text: str) -> str:
    """A client-supplied CID in canonical form (CIDv1 base32), or ValueError if it is not a CID we serve:
    v0 `Qm...` strings are converted, anything else must be sha2-256 over raw or dag-pb."""
    try:
        cid = CID.decode(text.strip())
    except Exception as exc:  # multiformats raises several types for malformed input
        raise ValueError(f"not a CID: {text[:80]!r}") from exc
    if cid.codec.name not in (RAW, DAG_PB) or cid.hashfun.name != "sha2-256":
        raise ValueError(f"unsupported CID (codec {cid.codec.name}, hash {cid.hashfun.name})")
    return str(cid.set(version=1, base="base32"))

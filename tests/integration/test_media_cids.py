"""CIDs computed by mintplane.media.cid equal the real kubo's for every size class: against the dev stack's
running node (RPC `add` with only-hash and nothing but `cid-version=1`, so its config decides the rest) and
against `ipfs add --cid-version 1 --only-hash` of a scratch repo with kubo's pure defaults."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio

from mintplane.devstack import pieces
from mintplane.devstack.layout import Layout
from mintplane.media import cid
from mintplane.media.ipfs import IpfsClient, IpfsError
from mintplane.media.settings import MediaSettings

pytestmark = pytest.mark.integration

SIZES = {
    "small": 1234,
    "exactly 256 KiB": cid.CHUNK_SIZE,
    "multi-chunk": 5 * cid.CHUNK_SIZE + 777,
    "174 chunks": cid.MAX_LINKS * cid.CHUNK_SIZE,
    "over 174 chunks (second DAG level)": cid.MAX_LINKS * cid.CHUNK_SIZE + 4096,
}


@pytest.fixture(scope="module")
def contents() -> dict[str, bytes]:
    return {name: os.urandom(size) for name, size in SIZES.items()}


@pytest_asyncio.fixture
async def node() -> AsyncIterator[IpfsClient]:
    client = IpfsClient(MediaSettings().ipfs_api_url)
    try:
        yield client
    finally:
        await client.close()


async def test_the_dev_stack_runs_kubo_and_the_piece_probes_it() -> None:
    kubo = next(piece for piece in pieces.INFRA if piece.name == "kubo")
    assert (await kubo.probe(Layout.default())).startswith("kubo 0.43")
    assert MediaSettings().ipfs_api_url == pieces.KUBO_API_URL
    async with aiohttp.ClientSession() as http, http.get(f"{pieces.KUBO_API_URL}/api/v0/version") as response:
        assert response.status == 405  # the RPC answers POST only: the probe must POST


async def _node_default_add(data: bytes) -> str:
    """`ipfs add --cid-version 1 --only-hash` over the RPC: no importer parameter but the CID version."""
    form = aiohttp.FormData()
    form.add_field("file", data, filename="f")
    params = {"cid-version": "1", "only-hash": "true", "quieter": "true"}
    async with aiohttp.ClientSession() as http, http.post(
        f"{pieces.KUBO_API_URL}/api/v0/add", params=params, data=form
    ) as response:
        assert response.status == 200
        return str((await response.json(content_type=None))["Hash"])


@pytest.mark.parametrize("name", list(SIZES))
async def test_local_cids_equal_the_running_kubo(name: str, contents: dict[str, bytes], node: IpfsClient) -> None:
    data = contents[name]
    local = cid.compute(data)
    assert local == await _node_default_add(data)
    assert local == await node.add(data, only_hash=True)  # the client's explicit parameters agree too
    assert local.startswith("bafkrei" if len(data) <= cid.CHUNK_SIZE else "bafybei")


def test_local_cids_equal_kubo_cli_with_its_own_defaults(tmp_path: Path, contents: dict[str, bytes]) -> None:
    ipfs = Layout.default().bin / "ipfs"
    env = {**os.environ, "IPFS_PATH": str(tmp_path / "repo")}
    subprocess.run([str(ipfs), "init", "--empty-repo", "--profile", "test"], env=env, check=True,
                   capture_output=True)
    for name, data in contents.items():
        path = tmp_path / "file.bin"
        path.write_bytes(data)
        result = subprocess.run([str(ipfs), "add", "--cid-version", "1", "--only-hash", "-Q", str(path)],
                                env=env, check=True, capture_output=True, text=True)
        assert result.stdout.strip() == cid.compute(data), name


@pytest.mark.parametrize("name", list(SIZES))
async def test_every_size_class_is_pinned_under_the_local_cid(name: str, contents: dict[str, bytes],
                                                              node: IpfsClient) -> None:
    data = contents[name]
    pinned = await node.add(data, pin=True)
    try:
        assert pinned == cid.compute(data) and await node.is_pinned(pinned)
    finally:
        await node.unpin(pinned)


async def test_pinned_content_reads_back_and_unpins(node: IpfsClient) -> None:
    data = os.urandom(3 * cid.CHUNK_SIZE + 5)
    pinned = await node.add(data, pin=True)
    try:
        assert pinned == cid.compute(data)
        assert await node.is_pinned(pinned)
        assert await node.cat(pinned) == data
    finally:
        await node.unpin(pinned)
    assert not await node.is_pinned(pinned)
    await node.unpin(pinned)  # unpinning twice is not an error


async def test_an_unreachable_node_is_unavailable_not_a_crash() -> None:
    client = IpfsClient("http://127.0.0.1:9", timeout=3)
    try:
        with pytest.raises(IpfsError, match="unreachable") as error:
            await client.add(b"x")
        assert error.value.code == grpc.StatusCode.UNAVAILABLE  # processing jobs retry on it
    finally:
        await client.close()

"""The dev stack's kubo piece: what `make up` runs and the repo settings the media service's CIDs rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mintplane.devstack import pieces
from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.unit


def _kubo() -> pieces.Piece:
    return next(piece for piece in pieces.INFRA if piece.name == "kubo")


def _layout_with_bin(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path)
    layout.bin.mkdir(parents=True)
    (layout.bin / "ipfs").write_text("#!/bin/sh\n")
    return layout


def test_make_up_starts_kubo_offline_as_an_infra_piece(tmp_path: Path) -> None:
    layout = _layout_with_bin(tmp_path)
    piece = _kubo()
    assert piece.kind == "infra"  # started with the data layer, before any service
    assert piece.command(layout) == [str(layout.bin / "ipfs"), "daemon", "--offline"]
    assert piece.env(layout) == {"IPFS_PATH": str(layout.data("kubo"))}
    assert "127.0.0.1:5001" in piece.address and "127.0.0.1:8080" in piece.address


def test_missing_binary_names_the_build_script(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"build-go-tools\.sh"):
        _kubo().command(Layout(tmp_path))


def test_prepare_pins_loopback_ports_no_peers_and_the_importer_settings(tmp_path: Path) -> None:
    layout = _layout_with_bin(tmp_path)
    repo = layout.data("kubo")
    repo.mkdir(parents=True)
    # What `ipfs init --profile test` leaves: random ports, a swarm listener, unset importer settings.
    (repo / "config").write_text(json.dumps({
        "Addresses": {"API": "/ip4/127.0.0.1/tcp/0", "Gateway": "/ip4/127.0.0.1/tcp/0",
                      "Swarm": ["/ip4/127.0.0.1/tcp/0"], "Announce": []},
        "Bootstrap": ["/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"],
        "Import": {"CidVersion": None, "UnixFSChunker": None},
        "Identity": {"PeerID": "12D3KooWexample"},
    }))
    _kubo().prepare(layout)
    config = json.loads((repo / "config").read_text())
    assert config["Addresses"]["API"] == "/ip4/127.0.0.1/tcp/5001"
    assert config["Addresses"]["Gateway"] == "/ip4/127.0.0.1/tcp/8080"
    assert config["Addresses"]["Swarm"] == [] and config["Bootstrap"] == []
    assert config["Discovery"]["MDNS"]["Enabled"] is False
    assert config["Import"] == {"CidVersion": 1, "UnixFSRawLeaves": True, "UnixFSChunker": "size-262144",
                                "UnixFSFileMaxLinks": 174}
    assert config["Identity"] == {"PeerID": "12D3KooWexample"}  # the rest of the repo is left alone

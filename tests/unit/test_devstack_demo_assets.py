"""The demo collection's generated metadata, and how the dev stack runs the local chain's indexer.

The documents must look like a real collection's to the catalog (OpenSea attributes, skewed string traits,
missing traits, number and date traits) and be reproducible; the on-chain ``data:`` forms must decode to the
same document. The local indexer must run with the settings the operator's Deployment would give it.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

from mintplane.devstack import demo, demo_assets, pieces
from mintplane.devstack.layout import Layout
from mintplane.operator import builders
from mintplane.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit

BASE = "http://127.0.0.1:8090/anvil-demo"


def _decode(uri: str) -> dict[str, object]:
    header, _, payload = uri.partition(",")
    if header.endswith(";base64"):
        decoded: dict[str, object] = json.loads(base64.b64decode(payload))
        return decoded
    plain: dict[str, object] = json.loads(urllib.parse.unquote(payload))
    return plain


def test_the_documents_are_reproducible_and_shaped_like_a_collection() -> None:
    first, again = list(demo_assets.tokens(BASE)), list(demo_assets.tokens(BASE))
    assert [t.document for t in first] == [t.document for t in again]
    assert len(first) == demo_assets.SUPPLY
    assert first[0].document["name"] == "Mintplane Demo #1"
    assert first[0].document["image"] == f"{BASE}/images/1.svg"

    traits: dict[str, Counter[object]] = {}
    for token in first:
        for attribute in token.document["attributes"]:  # type: ignore[attr-defined]
            traits.setdefault(attribute["trait_type"], Counter())[attribute["value"]] += 1
    # Always present, skewed: the most common background is several times the rarest.
    assert sum(traits["Background"].values()) == demo_assets.SUPPLY
    common, rare = traits["Background"].most_common()[0][1], traits["Background"].most_common()[-1][1]
    assert common >= 4 * rare
    # Missing traits: some tokens have no Hat, more have no Accessory.
    assert 0 < sum(traits["Hat"].values()) < demo_assets.SUPPLY
    assert sum(traits["Accessory"].values()) < sum(traits["Hat"].values())
    levels = [token.document["attributes"] for token in first]
    numeric = [a for attrs in levels for a in attrs if a["trait_type"] in ("Level", "Born")]  # type: ignore[attr-defined]
    assert {a["display_type"] for a in numeric} == {"number", "date"}
    assert all(isinstance(a["value"], int) for a in numeric)


def test_on_chain_tokens_carry_data_uris_of_both_kinds_that_decode_to_their_document() -> None:
    on_chain = [t for t in demo_assets.tokens(BASE) if t.on_chain]
    assert [t.token_id for t in on_chain] == list(range(25, demo_assets.SUPPLY + 1, 25))
    kinds = {t.data_uri().split(",", 1)[0] for t in on_chain}
    assert kinds == {"data:application/json;base64", "data:application/json"}
    for token in on_chain:
        assert _decode(token.data_uri()) == token.document
        image = str(token.document["image"])
        assert image.startswith("data:image/svg+xml;base64,")
        assert base64.b64decode(image.split(",", 1)[1]).decode() == token.image_svg


def test_write_assets_writes_each_document_and_image_once(tmp_path: Path) -> None:
    folder = demo_assets.write_assets(tmp_path, BASE, supply=30)
    assert json.loads((folder / "7").read_text())["name"] == "Mintplane Demo #7"
    assert (folder / "images" / "7.svg").read_text().startswith("<svg")
    stamp = (folder / ".generated").stat().st_mtime_ns
    (folder / "7").write_text("changed by hand")
    demo_assets.write_assets(tmp_path, BASE, supply=30)  # current stamp: nothing rewritten
    assert (folder / ".generated").stat().st_mtime_ns == stamp
    assert (folder / "7").read_text() == "changed by hand"


def test_the_example_collection_is_where_the_demo_deployer_deploys() -> None:
    collection = demo.collection(Layout.default())
    assert collection.address == demo.predicted_address()
    assert collection.slug in demo.first_query(collection.slug)


def test_the_local_indexer_runs_what_the_operators_deployment_would() -> None:
    layout = Layout.default()
    name, spec = pieces.local_chain_spec(layout)
    container = builders.indexer_deployment(name, "default", spec, OperatorSettings())["spec"]["template"]["spec"][
        "containers"][0]
    in_cluster = {item["name"]: item["value"] for item in container["env"]}
    local = pieces.INDEXER.env(layout)
    assert local["MINTPLANE_INDEXER_CHAIN"] == pieces.LOCAL_CHAIN == in_cluster["MINTPLANE_INDEXER_CHAIN"]
    differing = {key for key in in_cluster if local[key] != in_cluster[key]}
    assert differing == {"MINTPLANE_GRPC_HOST"}  # loopback instead of the pod's 0.0.0.0
    assert local["MINTPLANE_GRPC_HOST"] == "127.0.0.1"
    assert pieces.INDEXER.command(layout)[1:] == container["command"][1:]
    assert pieces.INDEXER in pieces.FOLLOWERS and pieces.INDEXER in pieces.SERVICES


def test_the_catalog_and_operator_are_configured_for_the_local_pieces() -> None:
    layout = Layout.default()
    catalog = next(piece for piece in pieces.SERVICES if piece.name == "catalog")
    assert json.loads(catalog.env(layout)["MINTPLANE_METADATA_ALLOW_HOSTS"]) == [pieces.FILESERVER_HOST]
    operator = pieces.OPERATOR.env(layout)
    assert operator["MINTPLANE_OPERATOR_INDEXER_EXTERNAL"] == "true"

"""The chart ships exactly the CRDs of record: `crds/` (applied by the dev stack) and `charts/mintplane/crds/`
(installed by helm) must hold the same files, byte for byte. Fix a failure with scripts/sync-chart-crds.sh."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.unit

ROOT = Layout.default().root
SOURCE = ROOT / "crds"
CHART_CRDS = ROOT / "charts" / "mintplane" / "crds"
KINDS = {"Chain", "ChainEndpoint", "IndexerJob", "Collection"}
HINT = "run scripts/sync-chart-crds.sh"


def test_chart_crds_are_byte_identical_to_the_crds_of_record() -> None:
    source = {path.name: path.read_bytes() for path in SOURCE.glob("*.yaml")}
    shipped = {path.name: path.read_bytes() for path in CHART_CRDS.iterdir() if path.is_file()}
    assert sorted(shipped) == sorted(source), HINT
    for name, content in source.items():
        assert shipped[name] == content, f"charts/mintplane/crds/{name} differs from crds/{name}: {HINT}"


def test_the_chart_ships_the_four_mintplane_kinds() -> None:
    kinds = set()
    for path in CHART_CRDS.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert doc["kind"] == "CustomResourceDefinition", path.name
                assert doc["spec"]["group"] == "mintplane.io", path.name
                assert "v1alpha1" in [version["name"] for version in doc["spec"]["versions"]], path.name
                kinds.add(doc["spec"]["names"]["kind"])
    assert kinds == KINDS


def test_sync_script_check_mode_agrees() -> None:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "sync-chart-crds.sh"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "in sync" in result.stdout

"""The EVM artifacts (the deployless ERC-6492 validator auth and wallet run, the test wallet) are exactly
what their Solidity sources compile to with the pinned solc, so nobody ships bytecode no one can rebuild."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mintplane.common.signatures import VALIDATOR_ARTIFACT, validator_creation_code

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tests" / "fixtures" / "auth" / "build-contracts.mjs"


def test_artifacts_are_fresh() -> None:
    node = shutil.which("node")
    assert node is not None, "node is not on PATH; the contract build needs Node 20 (and `npm ci`)"
    result = subprocess.run(
        [node, str(BUILD_SCRIPT), "--check"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"


def test_validator_is_loaded_from_its_artifact() -> None:
    artifact = json.loads(VALIDATOR_ARTIFACT.read_text())
    assert artifact["source"] == "services/mintplane/common/evm/ValidateSigOffchain.sol"
    assert artifact["settings"]["metadata"] == {"bytecodeHash": "none"}
    constructor = next(e for e in artifact["contracts"]["ValidateSigOffchain"]["abi"] if e["type"] == "constructor")
    assert [i["type"] for i in constructor["inputs"]] == ["address", "bytes32", "bytes"]
    code = validator_creation_code()
    assert len(code) > 500 and code.hex() == artifact["contracts"]["ValidateSigOffchain"]["bytecode"][2:]

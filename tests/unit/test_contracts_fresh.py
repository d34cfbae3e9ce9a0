"""The committed contract artifacts are what the sources compile to, and they carry what services rely on."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mintplane.common.contracts import (
    CONTRACTS_DIR_ENV,
    ERC721_CONTRACT,
    ERC1155_CONTRACT,
    ContractArtifact,
    load_artifact,
)

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-contracts.mjs"


def _entries(artifact: ContractArtifact, kind: str) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in artifact.abi if entry.get("type") == kind}


def _types(entry: dict[str, Any]) -> list[str]:
    return [param["type"] for param in entry["inputs"]]


def test_committed_artifacts_are_fresh() -> None:
    node = shutil.which("node")
    assert node is not None, "node is not on PATH; the contract build needs Node 20 (and `npm ci`)"
    result = subprocess.run(
        [node, str(BUILD_SCRIPT), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"build-contracts --check failed:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("name", [ERC721_CONTRACT, ERC1155_CONTRACT])
def test_artifact_has_bytecode_and_pinned_settings(name: str) -> None:
    artifact = load_artifact(name)
    assert artifact.name == name
    assert artifact.bytecode.startswith("0x") and len(artifact.bytecode) > 2_000
    assert artifact.deployed_bytecode.startswith("0x") and len(artifact.deployed_bytecode) > 2_000
    # Runtime code must fit the EIP-170 limit or the orchestrator's deployment would fail on chain.
    assert (len(artifact.deployed_bytecode) - 2) // 2 <= 24_576

    raw = json.loads((REPO_ROOT / "contracts" / "build" / f"{name}.json").read_text())
    assert raw["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert raw["settings"]["metadata"] == {"bytecodeHash": "none"}
    assert raw["settings"]["evmVersion"] == "cancun"
    assert raw["compiler"].startswith("0.8.")


def test_erc721_abi() -> None:
    artifact = load_artifact(ERC721_CONTRACT)
    events = _entries(artifact, "event")
    functions = _entries(artifact, "function")
    errors = _entries(artifact, "error")

    transfer = events["Transfer"]
    assert _types(transfer) == ["address", "address", "uint256"]
    assert [param["indexed"] for param in transfer["inputs"]] == [True, True, True]

    assert _types(functions["ownerOf"]) == ["uint256"]
    assert _types(functions["mint"]) == ["address", "uint256"]
    assert _types(functions["safeMint"]) == ["address", "uint256"]
    assert _types(functions["mintBatch"]) == ["address", "uint256", "uint256"]
    for name in ("tokenURI", "totalSupply", "maxSupply", "royaltyInfo", "supportsInterface", "owner"):
        assert name in functions, name
    assert "MaxSupplyExceeded" in errors

    constructor = next(entry for entry in artifact.abi if entry["type"] == "constructor")
    assert _types(constructor) == ["string", "string", "string", "uint256", "address", "uint96", "address"]


def test_erc1155_abi() -> None:
    artifact = load_artifact(ERC1155_CONTRACT)
    events = _entries(artifact, "event")
    functions = _entries(artifact, "function")

    assert _types(events["TransferSingle"]) == ["address", "address", "address", "uint256", "uint256"]
    assert _types(events["TransferBatch"]) == ["address", "address", "address", "uint256[]", "uint256[]"]
    assert _types(functions["mint"]) == ["address", "uint256", "uint256", "bytes"]
    assert _types(functions["mintBatch"]) == ["address", "uint256[]", "uint256[]", "bytes"]
    for name in ("uri", "balanceOf", "balanceOfBatch", "maxSupply", "royaltyInfo", "name", "symbol"):
        assert name in functions, name
    assert "MaxSupplyExceeded" in _entries(artifact, "error")


def test_load_artifact_honours_env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONTRACTS_DIR_ENV, raising=False)
    from_repo = load_artifact(ERC721_CONTRACT)
    source = REPO_ROOT / "contracts" / "build" / f"{ERC721_CONTRACT}.json"
    (tmp_path / f"{ERC721_CONTRACT}.json").write_text(source.read_text())
    monkeypatch.setenv(CONTRACTS_DIR_ENV, str(tmp_path))
    assert load_artifact(ERC721_CONTRACT) == from_repo
    with pytest.raises(FileNotFoundError, match=ERC1155_CONTRACT):
        load_artifact(ERC1155_CONTRACT)


def test_load_artifact_rejects_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONTRACTS_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="invalid contract name"):
        load_artifact("../etc/passwd")
    (tmp_path / "Broken.json").write_text(json.dumps({"contractName": "Broken", "abi": [], "bytecode": "0x"}))
    with pytest.raises(ValueError, match="bytecode"):
        load_artifact("Broken")
    (tmp_path / "Other.json").write_text(json.dumps({"contractName": "Else"}))
    with pytest.raises(ValueError, match="contractName"):
        load_artifact("Other")

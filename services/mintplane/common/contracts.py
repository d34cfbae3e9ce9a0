"""The compiled collection contracts (ABI and bytecode) that services deploy and decode.

Why this module exists: the orchestrator deploys ``MintplaneERC721``/``MintplaneERC1155`` for creators and
the indexer decodes their events, and both must use exactly the artifacts CI verified
(``node scripts/build-contracts.mjs --check`` fails when ``contracts/build/*.json`` are stale). Services
therefore read those committed JSON files instead of compiling at runtime, so neither Node nor solc is
needed where the services run.

Where the artifacts are found:

1. ``MINTPLANE_CONTRACTS_DIR``: a directory holding ``<name>.json`` directly (what an image sets after
   copying ``contracts/build/`` somewhere);
2. otherwise the repository root found by walking up from this file to the first folder that contains
   ``contracts/build`` (a checkout or an editable install).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTRACTS_DIR_ENV = "MINTPLANE_CONTRACTS_DIR"
ERC721_CONTRACT = "MintplaneERC721"
ERC1155_CONTRACT = "MintplaneERC1155"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})+")


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    """One compiled contract: what ``w3.eth.contract(abi=..., bytecode=...)`` needs.

    ``abi`` is a tuple so the artifact stays immutable at the top level; pass ``list(artifact.abi)`` where an
    API insists on a list. ``bytecode`` is the creation code and ``deployed_bytecode`` the runtime code, both
    ``0x``-prefixed hex (the runtime code lets a caller check what an address really holds).
    """

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str
    deployed_bytecode: str


def artifacts_dir() -> Path:
    """The directory holding ``<name>.json`` artifacts (see the module docstring for the lookup order)."""
    configured = os.environ.get(CONTRACTS_DIR_ENV)
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise FileNotFoundError(f"{CONTRACTS_DIR_ENV}={configured!r} is not a directory")
        return path
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "contracts" / "build"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"no contracts/build directory above {here}; set {CONTRACTS_DIR_ENV} to the folder holding the "
        "artifacts (build them with `node scripts/build-contracts.mjs`)"
    )


def load_artifact(name: str) -> ContractArtifact:
    """Read ``<name>.json`` (e.g. ``MintplaneERC721``) from :func:`artifacts_dir` and validate its shape."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid contract name {name!r}")
    path = artifacts_dir() / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no artifact {path}; build it with `node scripts/build-contracts.mjs`"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object")

    contract_name = raw.get("contractName")
    if contract_name != name:
        raise ValueError(f"{path}: contractName is {contract_name!r}, expected {name!r}")
    abi = raw.get("abi")
    if not isinstance(abi, list) or not all(isinstance(entry, dict) for entry in abi):
        raise ValueError(f"{path}: abi must be a list of objects")
    bytecode = _hex_field(raw, "bytecode", path)
    deployed = _hex_field(raw, "deployedBytecode", path)
    return ContractArtifact(name=name, abi=tuple(abi), bytecode=bytecode, deployed_bytecode=deployed)


def _hex_field(raw: dict[str, Any], key: str, path: Path) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise ValueError(f"{path}: {key} must be non-empty 0x-prefixed hex (unlinked libraries unsupported)")
    return value

"""Content addressing of ABIs: one canonical JSON text per ABI, its SHA-256, and the standard it implements.

The same ABI arrives from solc, block explorers and hand-written files with different key order and
whitespace; hashing a canonical form makes all of them one row, so a contract's `abi_sha256` identifies
what decodes its logs no matter who uploaded it. Canonical form: keys sorted (by code point), no
insignificant whitespace, UTF-8, array order kept (fragment order is part of the ABI as published).

Non-integer numbers are refused: no ABI field is fractional, and floats would not survive the round trip
through PostgreSQL jsonb byte for byte, so the stored ABI could stop matching its hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mintplane.chain_registry.models import Standard

FRAGMENT_TYPES = frozenset({"function", "constructor", "event", "error", "fallback", "receive"})
NAMED_TYPES = frozenset({"function", "event", "error"})


class AbiError(ValueError):
    """Why a text is not an ABI; the message is safe to return to the caller."""


def _refuse_constant(name: str) -> Any:
    raise AbiError(f"{name} is not valid JSON")


def _refuse_float(text: str) -> Any:
    raise AbiError(f"non-integer number {text[:20]} (ABIs have none)")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_of(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_params(params: Any, where: str) -> None:
    if not isinstance(params, list):
        raise AbiError(f"{where} must be an array")
    for index, param in enumerate(params):
        if not isinstance(param, dict) or not isinstance(param.get("type"), str):
            raise AbiError(f"{where}[{index}] must be an object with a string \"type\"")
        if "components" in param:
            _check_params(param["components"], f"{where}[{index}].components")


def _check_strings(value: Any) -> None:
    """PostgreSQL text (and so jsonb) cannot hold NUL; refuse it here with a clear message."""
    if isinstance(value, str):
        if "\x00" in value:
            raise AbiError("strings must not contain NUL characters")
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)


def parse(text: str) -> list[dict[str, Any]]:
    """The ABI fragments of a JSON text, checked for the shape every ABI consumer relies on."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_refuse_float)
    except AbiError:
        raise
    except (ValueError, RecursionError) as exc:
        raise AbiError(f"not valid JSON ({exc.__class__.__name__}: {str(exc)[:120]})") from None
    if not isinstance(value, list):
        raise AbiError("must be a JSON array of ABI fragments")
    for index, fragment in enumerate(value):
        where = f"fragment {index}"
        if not isinstance(fragment, dict):
            raise AbiError(f"{where} is not an object")
        kind = fragment.get("type", "function")  # Solidity's ABI spec: type defaults to "function"
        if kind not in FRAGMENT_TYPES:
            raise AbiError(f"{where} has unknown type {str(kind)[:40]!r}")
        if kind in NAMED_TYPES and not (isinstance(fragment.get("name"), str) and fragment["name"]):
            raise AbiError(f"{where} ({kind}) needs a non-empty \"name\"")
        for key in ("inputs", "outputs"):
            if key in fragment:
                _check_params(fragment[key], f"{where}.{key}")
    _check_strings(value)
    return value


def _signature(fragment: dict[str, Any]) -> str:
    types = ",".join(str(param.get("type")) for param in fragment.get("inputs", []))
    return f"{fragment.get('name')}({types})"


def detect_standard(fragments: list[dict[str, Any]]) -> Standard | None:
    """The token standard an ABI implements, from the events indexers decode; None when none matches.

    ERC-721 and ERC-20 share `Transfer(address,address,uint256)`; they differ in whether the third
    argument (tokenId vs value) is indexed.
    """
    events: dict[str, list[dict[str, Any]]] = {}
    for fragment in fragments:
        if fragment.get("type") == "event":
            events.setdefault(_signature(fragment), []).append(fragment)
    if "TransferSingle(address,address,address,uint256,uint256)" in events and (
        "TransferBatch(address,address,address,uint256[],uint256[])" in events
    ):
        return Standard.ERC1155
    for transfer in events.get("Transfer(address,address,uint256)", []):
        indexed = [bool(param.get("indexed")) for param in transfer.get("inputs", [])]
        if indexed == [True, True, True]:
            return Standard.ERC721
        if indexed == [True, True, False]:
            return Standard.ERC20
    return None

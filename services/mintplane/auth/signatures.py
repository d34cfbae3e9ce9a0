"""Signature bytes as clients send them: hex decoding with limits, and ERC-6492 unwrapping (no I/O).

A 65-byte signature is first tried as an EOA's personal_sign; anything else (or a 65-byte signature that
does not recover to the address) may still be a contract wallet's: ERC-1271 signatures are arbitrary
bytes, and ERC-6492 wraps one for a wallet not deployed yet as
``abi.encode(factory, factoryCalldata, innerSignature) ++ 0x6492...6492``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from mintplane.auth.errors import Outcome, SignInRejected

ERC6492_SUFFIX = bytes.fromhex("6492" * 16)
EOA_SIGNATURE_BYTES = 65
_HEX = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")


@dataclass(frozen=True, slots=True)
class Erc6492Wrapper:
    factory: str
    factory_calldata: bytes
    inner_signature: bytes


def decode_signature(value: str, max_bytes: int) -> bytes:
    """0x-prefixed hex -> bytes; MALFORMED (INVALID_ARGUMENT) when empty, not hex or over the limit."""
    if len(value) > 2 + 2 * max_bytes:
        raise SignInRejected(Outcome.MALFORMED, f"signature is longer than {max_bytes} bytes")
    if not _HEX.fullmatch(value):
        raise SignInRejected(Outcome.MALFORMED, "signature must be 0x-prefixed hex with an even number of digits")
    raw = bytes.fromhex(value[2:])
    if not raw:
        raise SignInRejected(Outcome.MALFORMED, "signature is empty")
    return raw


def is_erc6492(signature: bytes) -> bool:
    return len(signature) > len(ERC6492_SUFFIX) and signature.endswith(ERC6492_SUFFIX)


def unwrap_erc6492(signature: bytes) -> Erc6492Wrapper:
    """Decode the wrapper; a suffix over bytes that do not decode is MALFORMED, not a bad signature."""
    try:
        factory, calldata, inner = abi_decode(["address", "bytes", "bytes"], signature[: -len(ERC6492_SUFFIX)])
    except (DecodingError, ValueError, OverflowError):
        raise SignInRejected(
            Outcome.MALFORMED, "ERC-6492 signature does not decode as (address, bytes, bytes)"
        ) from None
    return Erc6492Wrapper(factory=str(factory).lower(), factory_calldata=bytes(calldata), inner_signature=bytes(inner))

"""EVM addresses and chain ids: validated at the edge, stored in one canonical form.

Canonical form: lowercase 0x-hex, the platform-wide convention (common.proto), enforced by a CHECK in
the database, so the unique (address, chain_id) index makes every case variant of an address collide.
Mixed-case input is a claim of an EIP-55 checksum and is refused when the checksum is wrong (it catches
typos); all-lowercase and all-uppercase input carry no checksum and are accepted. Responses carry the
EIP-55 form separately for display.
"""

from __future__ import annotations

import re

from eth_utils.address import is_checksum_address, to_checksum_address

from mintplane.common.errors import InvalidArgument

_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_CAIP2_EIP155 = re.compile(r"^eip155:([1-9][0-9]{0,18})$")


def canonical(raw: str, field: str = "address") -> str:
    address = raw.strip()
    if not _HEX_ADDRESS.match(address):
        raise InvalidArgument(f"{field} must be a 0x-prefixed 20-byte hex address")
    digits = address[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(address):
        raise InvalidArgument(f"{field} has a wrong EIP-55 checksum (mixed case that is not {field}'s checksum)")
    return "0x" + digits.lower()


def checksum(address: str) -> str:
    return str(to_checksum_address(address))


def caip2(chain_numeric: int) -> str:
    return f"eip155:{chain_numeric}"


def chain_numeric(caip2_id: str, field: str = "chain.caip2") -> int:
    match = _CAIP2_EIP155.match(caip2_id.strip())
    if not match:
        raise InvalidArgument(f"{field} must be an EVM chain as CAIP-2, e.g. eip155:1")
    return int(match.group(1))


def account_id(chain: str, address: str) -> str:
    """CAIP-10 account id, e.g. eip155:1:0xab16...; lowercase like the address."""
    return f"{chain}:{address}"

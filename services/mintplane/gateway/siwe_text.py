"""Reads the fields of an EIP-4361 message the auth service built, so clients get them structured.

Verification is the auth service's job (with the `siwe` library); this only splits the text, line by line,
as the EIP lays it out: header, address, optional statement, then `Key: value` lines.
"""

from __future__ import annotations

from dataclasses import dataclass

_HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
_KEYS = {
    "URI": "uri",
    "Version": "version",
    "Chain ID": "chain_id",
    "Nonce": "nonce",
    "Issued At": "issued_at",
    "Expiration Time": "expiration_time",
    "Not Before": "not_before",
    "Request ID": "request_id",
}


@dataclass(frozen=True)
class MessageFields:
    domain: str | None = None
    address: str | None = None
    statement: str | None = None
    uri: str | None = None
    version: str | None = None
    chain_id: int | None = None
    nonce: str | None = None
    issued_at: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None


def parse_message_fields(message: str) -> MessageFields:
    """Fields of an EIP-4361 message; fields it lacks (or a text that is not one) come back as None."""
    lines = message.split("\n")
    if len(lines) < 2 or not lines[0].endswith(_HEADER_SUFFIX):
        return MessageFields()
    values: dict[str, str] = {}
    statement_lines: list[str] = []
    for line in lines[2:]:
        key, sep, value = line.partition(": ")
        if sep and key in _KEYS:
            values[_KEYS[key]] = value.strip()
        elif not values and line.strip():
            statement_lines.append(line)
    chain_id = values.pop("chain_id", "")
    return MessageFields(
        domain=lines[0].removesuffix(_HEADER_SUFFIX).strip() or None,
        address=lines[1].strip() or None,
        statement="\n".join(statement_lines) or None,
        chain_id=int(chain_id) if chain_id.isdigit() else None,
        **values,
    )

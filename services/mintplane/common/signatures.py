"""Did `address` sign this EIP-191 message? One answer for every service (auth's SignIn, wallet's LinkWallet).

A signature proves control of an address in one of three ways, tried cheapest first:

* ``eoa``: a 65-byte personal_sign signature that recovers (eth-keys over coincurve, no I/O) to the address;
* ``erc6492``: a wallet that may not be deployed yet wraps its signature as
  ``abi.encode(factory, factoryCalldata, innerSignature) ++ 0x6492...6492``; one ``eth_call`` of the
  deployless validator in ``evm/ValidateSigOffchain.sol`` simulates the factory call and then asks the
  wallet (nothing is written on chain);
* ``erc1271``: anything else is handed to the deployed contract's ``isValidSignature(hash, signature)``.

The two contract schemes need the chain: callers pass its JSON-RPC URL, or a coroutine that finds it
(only awaited when the signature is not an EOA's, so EOA sign-ins never wait on a registry). Refusals come
back as a :class:`Rejected` with a :class:`Reason`; each service maps it to its own errors. An endpoint that
does not answer is ``UNAVAILABLE`` (retryable), never a bad signature.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_account.messages import defunct_hash_message
from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.exceptions import ValidationError as EthValidationError
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError, Web3Exception

from mintplane.common.log import get_logger

log = get_logger(__name__)

ERC1271_MAGIC = bytes.fromhex("1626ba7e")  # isValidSignature(bytes32,bytes): selector and "valid" answer
ERC6492_SUFFIX = bytes.fromhex("6492" * 16)
EOA_SIGNATURE_BYTES = 65
MAX_SIGNATURE_BYTES = 4096  # smart-wallet (passkey, multisig) ERC-6492 wrappers run to a few KiB
VALIDATOR_ARTIFACT = Path(__file__).with_name("evm") / "ValidateSigOffchain.json"
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")

RpcUrl = str | None | Callable[[], Awaitable[str | None]]


class Scheme(StrEnum):
    EOA = "eoa"
    ERC1271 = "erc1271"
    ERC6492 = "erc6492"


class Reason(StrEnum):
    NOT_SIGNER = "not_signer"  # no scheme accepted the signature for this address
    MALFORMED = "malformed"  # an ERC-6492 suffix over bytes that are not (address, bytes, bytes)
    NO_RPC = "no_rpc"  # not an EOA signature, and no endpoint to ask the chain
    UNAVAILABLE = "unavailable"  # the endpoint failed or timed out: retry


@dataclass(frozen=True, slots=True)
class Verified:
    scheme: Scheme
    factory: str | None = None  # ERC-6492: the factory that deploys the wallet (lowercase)

    @property
    def is_contract(self) -> bool:
        return self.scheme is not Scheme.EOA


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reason
    detail: str  # safe to show a client: never the signature nor the endpoint URL


class MalformedSignature(ValueError):
    """Signature text that is not hex, empty, or over the size limit."""


@dataclass(frozen=True, slots=True)
class Erc6492Wrapper:
    factory: str
    factory_calldata: bytes
    inner_signature: bytes


# ------------------------------------------------------------------------------------------ no I/O


def parse_signature_hex(value: str, *, max_bytes: int = MAX_SIGNATURE_BYTES, require_prefix: bool = True) -> bytes:
    """Client hex -> bytes, with the size checked before decoding (a signature is attacker-sized input)."""
    text = value.strip()
    has_prefix = text[:2] in ("0x", "0X")
    if require_prefix and not has_prefix:
        raise MalformedSignature("signature must be 0x-prefixed hex")
    digits = text[2:] if has_prefix else text
    if len(digits) > 2 * max_bytes:
        raise MalformedSignature(f"signature is longer than {max_bytes} bytes")
    if not digits:
        raise MalformedSignature("signature is empty")
    if not _HEX.fullmatch(digits):
        raise MalformedSignature("signature must be hex with an even number of digits")
    return bytes.fromhex(digits)


def eip191_digest(message: bytes) -> bytes:
    """The personal_sign hash a wallet signs, and the hash ERC-1271 wallets are asked about."""
    return bytes(defunct_hash_message(primitive=message))


def is_eoa_signer(digest: bytes, signature: bytes, address: str) -> bool:
    """Does a 65-byte (r, s, v) signature over `digest` recover to `address`? v may be 27/28 or 0/1."""
    if len(signature) != EOA_SIGNATURE_BYTES or signature[64] not in (0, 1, 27, 28):
        return False
    try:
        vrs = Signature(signature_bytes=signature[:64] + bytes([signature[64] % 27]))
        signer = vrs.recover_public_key_from_msg_hash(digest).to_canonical_address()
    except (BadSignature, EthValidationError, ValueError):
        return False  # r or s out of range, or not a curve point: no key made this
    return signer == bytes.fromhex(address.removeprefix("0x").removeprefix("0X"))


def is_erc6492(signature: bytes) -> bool:
    return len(signature) > len(ERC6492_SUFFIX) and signature.endswith(ERC6492_SUFFIX)


def unwrap_erc6492(signature: bytes) -> Erc6492Wrapper | None:
    """The wrapper's parts, or None when the bytes before the suffix do not decode."""
    try:
        factory, calldata, inner = abi_decode(["address", "bytes", "bytes"], signature[: -len(ERC6492_SUFFIX)])
    except (DecodingError, ValueError, OverflowError):
        return None
    return Erc6492Wrapper(str(factory).lower(), bytes(calldata), bytes(inner))


@cache
def validator_creation_code() -> bytes:
    artifact = json.loads(VALIDATOR_ARTIFACT.read_text(encoding="utf-8"))
    return bytes.fromhex(artifact["contracts"]["ValidateSigOffchain"]["bytecode"].removeprefix("0x"))


def erc1271_call_data(digest: bytes, signature: bytes) -> bytes:
    return ERC1271_MAGIC + abi_encode(["bytes32", "bytes"], [digest, signature])


def erc6492_call_data(address: str, digest: bytes, signature: bytes) -> bytes:
    """Deployless call: the validator's creation code with (signer, hash, signature) as constructor args."""
    return validator_creation_code() + abi_encode(
        ["address", "bytes32", "bytes"], [to_checksum_address(address), digest, signature]
    )


# ------------------------------------------------------------------------------------------ chain I/O


class RpcUnavailable(Exception):
    """The endpoint did not answer in time, or answered with a transport/JSON-RPC error."""


class EvmCaller:
    """A read-only ``eth_call`` client for one endpoint URL, with a hard timeout.

    No middleware: web3's default validation middleware would add an ``eth_chainId`` round trip to every
    call. No transport retries: the caller is an interactive sign-in, UNAVAILABLE tells the client to retry.
    """

    def __init__(self, url: str, *, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._provider = AsyncHTTPProvider(
            url, request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout_seconds)},
            exception_retry_configuration=None,
        )
        self._w3: AsyncWeb3[Any] = AsyncWeb3(self._provider, middleware=[])

    async def call(self, data: bytes, to: str | None = None) -> bytes | None:
        """Return data of the call at the latest block; None when it reverted."""
        tx: dict[str, Any] = {"data": data}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        try:
            return bytes(await asyncio.wait_for(self._w3.eth.call(tx), self._timeout))  # type: ignore[arg-type]
        except ContractLogicError:
            return None
        except (Web3Exception, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise RpcUnavailable(type(exc).__name__) from None

    async def close(self) -> None:
        await self._provider.disconnect()


class SignatureVerifier:
    """The one verifier of a process. Holds one :class:`EvmCaller` per endpoint URL, closed by :meth:`close`."""

    def __init__(self, *, timeout_seconds: float = 5.0) -> None:
        self._timeout = timeout_seconds
        self._callers: dict[str, EvmCaller] = {}

    async def verify(self, message: bytes, signature: bytes, address: str, rpc_url: RpcUrl) -> Verified | Rejected:
        """Which scheme proves `address` signed `message` (EIP-191 personal_sign), or why none does."""
        digest = eip191_digest(message)
        if is_eoa_signer(digest, signature, address):
            return Verified(Scheme.EOA)
        url = rpc_url if rpc_url is None or isinstance(rpc_url, str) else await rpc_url()
        if url is None:
            return Rejected(Reason.NO_RPC, "contract-wallet signatures cannot be checked on this chain: "
                                           "no RPC endpoint is configured for it")
        caller = self._caller(url)
        try:
            if is_erc6492(signature):
                wrapper = unwrap_erc6492(signature)
                if wrapper is None:
                    return Rejected(Reason.MALFORMED, "ERC-6492 signature does not decode as (address, bytes, bytes)")
                result = await caller.call(erc6492_call_data(address, digest, signature))
                if result == b"\x01":
                    return Verified(Scheme.ERC6492, wrapper.factory)
            else:
                result = await caller.call(erc1271_call_data(digest, signature), to=address)
                if result is not None and len(result) >= 32 and result[:4] == ERC1271_MAGIC:
                    return Verified(Scheme.ERC1271)
        except RpcUnavailable as exc:
            log.warning("contract-wallet signature check failed", error=str(exc))
            return Rejected(Reason.UNAVAILABLE, "the chain's RPC endpoint did not answer; try again")
        return Rejected(Reason.NOT_SIGNER, "the signature was not made by the address")

    def _caller(self, url: str) -> EvmCaller:
        caller = self._callers.get(url)
        if caller is None:
            caller = self._callers[url] = EvmCaller(url, timeout_seconds=self._timeout)
        return caller

    async def close(self) -> None:
        callers, self._callers = list(self._callers.values()), {}
        for caller in callers:
            await caller.close()

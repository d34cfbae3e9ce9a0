"""Contract-wallet signatures checked on the wallet's chain: ERC-1271 and ERC-6492 (the chain I/O of auth).

A smart-contract wallet has no key of its own, so its sign-in signature is whatever its code accepts:
ERC-1271 asks the deployed wallet ``isValidSignature(hash, signature)``; ERC-6492 covers a wallet that is
not deployed yet, by simulating its factory call and then asking it, inside one ``eth_call`` of the
deployless validator in ``evm/ValidateSigOffchain.sol`` (nothing is written on chain).

Which RPC endpoint to ask comes from a :class:`RpcEndpoints` (the chain registry). A chain without an
endpoint cannot verify contract wallets: the attempt fails as a bad signature with that reason. An endpoint
that does not answer is UNAVAILABLE (retryable), never a bad signature.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError, Web3Exception

from mintplane.auth.errors import Outcome, SignInRejected
from mintplane.auth.signatures import is_erc6492, unwrap_erc6492
from mintplane.common.log import get_logger

log = get_logger(__name__)

ERC1271_MAGIC = bytes.fromhex("1626ba7e")  # isValidSignature(bytes32,bytes)
VALIDATOR_ARTIFACT = Path(__file__).with_name("evm") / "ValidateSigOffchain.json"


class RpcEndpoints(Protocol):
    """Where to send JSON-RPC for a chain; None when none is known."""

    async def rpc_url(self, caip2: str) -> str | None: ...


@cache
def validator_creation_code() -> bytes:
    artifact = json.loads(VALIDATOR_ARTIFACT.read_text(encoding="utf-8"))
    return bytes.fromhex(artifact["contracts"]["ValidateSigOffchain"]["bytecode"].removeprefix("0x"))


def erc1271_call_data(message_hash: bytes, signature: bytes) -> bytes:
    return ERC1271_MAGIC + abi_encode(["bytes32", "bytes"], [message_hash, signature])


def erc6492_call_data(address: str, message_hash: bytes, signature: bytes) -> bytes:
    return validator_creation_code() + abi_encode(
        ["address", "bytes32", "bytes"], [to_checksum_address(address), message_hash, signature]
    )


class ContractWalletVerifier:
    """Asks a chain whether a contract wallet accepts a signature. One web3 client per endpoint URL."""

    def __init__(self, endpoints: RpcEndpoints, *, timeout_seconds: float) -> None:
        self._endpoints = endpoints
        self._timeout = timeout_seconds
        self._clients: dict[str, AsyncWeb3[Any]] = {}

    async def is_valid(self, caip2: str, address: str, message_hash: bytes, signature: bytes) -> bool:
        url = await self._endpoints.rpc_url(caip2)
        if url is None:
            raise SignInRejected(
                Outcome.BAD_SIGNATURE,
                f"the signature is not the address's own key, and contract-wallet signatures cannot be checked "
                f"on {caip2}: no RPC endpoint is registered for it",
            )
        if is_erc6492(signature):
            wrapper = unwrap_erc6492(signature)
            log.info("erc6492 signature", chain=caip2, address=address, factory=wrapper.factory)
            tx: dict[str, Any] = {"data": erc6492_call_data(address, message_hash, signature)}
        else:
            tx = {"to": to_checksum_address(address), "data": erc1271_call_data(message_hash, signature)}
        try:
            result = await asyncio.wait_for(self._client(url).eth.call(tx), self._timeout)  # type: ignore[arg-type]
        except ContractLogicError:
            return False  # the wallet (or its factory) reverted: it does not accept this signature
        except (Web3Exception, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("contract wallet check failed", chain=caip2, error=type(exc).__name__)
            raise SignInRejected(
                Outcome.UNAVAILABLE, f"the RPC endpoint of {caip2} did not answer; try again"
            ) from None
        if "to" not in tx:
            return bytes(result) == b"\x01"
        return len(result) >= 32 and bytes(result[:4]) == ERC1271_MAGIC

    def _client(self, url: str) -> AsyncWeb3[Any]:
        client = self._clients.get(url)
        if client is None:
            client = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": aiohttp.ClientTimeout(self._timeout)}))
            self._clients[url] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.provider.disconnect()
        self._clients.clear()

"""How fast the auth service verifies Sign-In-With-Ethereum messages, on one core, in-process.

Prints, from one run over the same pre-signed messages:
  * raw secp256k1 public-key recovery (eth-keys over coincurve): the floor any EOA verification pays;
  * the auth service's message check (size/charset limits, siwe parse, canonical round trip, domain/URI/
    chain/time checks, eth-account recovery over the exact text) with siwe's regex parser (the default)
    and with its ABNF parser;
  * for reference, siwe's own parse + ``SiweMessage.verify()``, which builds a Web3 object per call.

With ``--grpc`` (needs the dev stack's PostgreSQL and Redis) it also starts auth, user and wallet in-process
and times, over gRPC with N concurrent clients: SignIn of returning users (nonce, sign, sign in) and
ValidateSession (the gateway's per-request call, Redis-cached session state).

    .venv/bin/python bench/auth_siwe.py [--messages 300] [--seconds 3] [--grpc --concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from eth_account import Account
from eth_account.messages import defunct_hash_message, encode_defunct
from eth_keys import keys

from mintplane.api.auth.v1 import auth_pb2, auth_pb2_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.auth.settings import AuthSettings
from mintplane.auth.siwe_message import (
    MessagePolicy,
    build_message,
    check_message,
    parse_message,
    siwe,
    verify_eoa_signature,
)


def _rate(label: str, work: Callable[[int], None], items: int, seconds: float) -> float:
    work(min(items, 20))  # warm-up (imports, caches)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        work(items)
        done += items
    rate = done / (time.perf_counter() - started)
    print(f"{label:<62} {rate:>9,.0f} /s  {1e6 / rate:>9,.1f} us each")
    return rate


async def _serve(service: str, settings: object) -> tuple[int, list[object]]:
    from mintplane.common.service import Resources

    server_module = importlib.import_module(f"mintplane.{service}.server")
    resources = await Resources.open(settings, server_module.NEEDS, name=f"{service}-bench")  # type: ignore[arg-type]
    built = await server_module.build_server(settings, resources)
    await built.server.start()
    return built.port, [built, resources]


async def _grpc(concurrency: int, rounds: int) -> None:
    import grpc

    from mintplane.user.settings import UserSettings
    from mintplane.wallet.settings import WalletSettings

    user_port, user = await _serve("user", UserSettings(grpc_port=0, log_level="WARNING"))
    wallet_port, wallet = await _serve("wallet", WalletSettings(grpc_port=0, log_level="WARNING"))
    unlimited = "1000000/minute"
    auth_port, auth = await _serve("auth", AuthSettings(
        grpc_port=0, auth_user_target=f"127.0.0.1:{user_port}", auth_wallet_target=f"127.0.0.1:{wallet_port}",
        auth_rate_limit_signin_ip=unlimited, auth_rate_limit_signin_address=unlimited,
        auth_rate_limit_nonce_address=unlimited,
    ))
    accounts = [Account.create() for _ in range(concurrency)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{auth_port}") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)

        async def sign_in(account: object) -> auth_pb2.SignInResponse:
            issued = await stub.CreateNonce(auth_pb2.CreateNonceRequest(
                address=account.address, domain="localhost:3000",  # type: ignore[attr-defined]
                chain=common_pb2.ChainRef(caip2="eip155:31337"),
            ))
            signature = account.sign_message(encode_defunct(text=issued.message)).signature  # type: ignore[attr-defined]
            request = auth_pb2.SignInRequest(message=issued.message, signature="0x" + bytes(signature).hex())
            return await stub.SignIn(request)

        first = await asyncio.gather(*(sign_in(a) for a in accounts))  # first logins create users and wallets
        latencies: list[float] = []

        async def client(account: object) -> None:
            for _ in range(rounds):
                started = time.perf_counter()
                await sign_in(account)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client(a) for a in accounts))
        elapsed = time.perf_counter() - started
        print(f"{'gRPC sign-in round trip, returning users (CreateNonce+SignIn)':<62} "
              f"{len(latencies) / elapsed:>9,.0f} /s  p50 {1e3 * statistics.median(latencies):.1f} ms, "
              f"p95 {1e3 * statistics.quantiles(latencies, n=20)[18]:.1f} ms ({concurrency} clients)")

        tokens = [r.tokens.access_token for r in first]
        validations: list[float] = []

        async def validator(token: str) -> None:
            for _ in range(rounds * 10):
                started = time.perf_counter()
                await stub.ValidateSession(auth_pb2.ValidateSessionRequest(access_token=token))
                validations.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(validator(t) for t in tokens))
        elapsed = time.perf_counter() - started
        print(f"{'gRPC ValidateSession (JWT + Redis-cached session state)':<62} "
              f"{len(validations) / elapsed:>9,.0f} /s  p50 {1e3 * statistics.median(validations):.1f} ms, "
              f"p95 {1e3 * statistics.quantiles(validations, n=20)[18]:.1f} ms ({concurrency} clients)")
        for response in first:
            await stub.SignOut(auth_pb2.SignOutRequest(session_id=response.session.session_id, all_sessions=True))
    for built, resources in (auth, wallet, user):
        await built.server.stop(None)  # type: ignore[attr-defined]
        await resources.close()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300, help="distinct signed messages to cycle through")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per case")
    parser.add_argument("--grpc", action="store_true", help="also time SignIn and ValidateSession over gRPC")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent gRPC clients")
    parser.add_argument("--rounds", type=int, default=25, help="sign-ins per gRPC client")
    args = parser.parse_args()

    now = datetime.now(UTC)
    signed: list[tuple[str, str, bytes, bytes, keys.Signature]] = []
    for i in range(args.messages):
        account = Account.create()
        text = build_message(
            domain="localhost:3000", address=account.address, uri="http://localhost:3000", chain=31337,
            nonce=f"benchNonce{i:014d}", statement="Sign in to mintplane.", issued_at=now,
            expires_at=now + timedelta(hours=1),
        )
        signature = bytes(account.sign_message(encode_defunct(text=text)).signature)
        vrs = keys.Signature(signature[:64] + bytes([signature[64] - 27]))  # eth-keys wants v in {0, 1}
        signed.append((text, "0x" + signature.hex(), signature, bytes(defunct_hash_message(text=text)), vrs))

    def recover(n: int) -> None:
        for *_, digest, vrs in signed[:n]:
            vrs.recover_public_key_from_msg_hash(digest)

    def service_check(policy: MessagePolicy) -> Callable[[int], None]:
        def work(n: int) -> None:
            for text, _hex, signature, _digest, _vrs in signed[:n]:
                message = parse_message(text, policy)
                check_message(message, policy, now)
                assert verify_eoa_signature(message, signature)
        return work

    def siwe_verify(n: int) -> None:
        for text, hex_signature, *_ in signed[:n]:
            siwe.SiweMessage.from_message(text, abnf=False).verify(hex_signature, timestamp=now)

    settings = AuthSettings()
    regex = MessagePolicy.from_settings(settings.model_copy(update={"auth_siwe_abnf_parser": False}))
    abnf = MessagePolicy.from_settings(settings.model_copy(update={"auth_siwe_abnf_parser": True}))
    print(f"{args.messages} distinct messages, {args.seconds:g} s per case, one core, "
          f"eth-keys backend {keys.backend.__class__.__name__}")
    floor = _rate("secp256k1 public-key recovery (raw)", recover, len(signed), args.seconds)
    fast = _rate("auth SIWE verification, regex parser (abnf=False, default)", service_check(regex), len(signed),
                 args.seconds)
    slow = _rate("auth SIWE verification, ABNF parser (abnf=True)", service_check(abnf), len(signed), args.seconds)
    reference = _rate("siwe from_message(abnf=False) + verify() (reference)", siwe_verify, len(signed), args.seconds)
    print(f"regex parser: {fast / slow:.1f}x the ABNF parser, {fast / reference:.1f}x siwe's verify(); "
          f"recovery is {100 * fast / floor:.0f}% of a regex-parsed verification")
    if args.grpc:
        from mintplane.common.log import configure_logging

        configure_logging("WARNING", json=False)
        asyncio.run(_grpc(args.concurrency, args.rounds))


if __name__ == "__main__":
    main()

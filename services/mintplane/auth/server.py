"""Builds the auth gRPC server: wires settings and open clients into the domain objects, then the servicer."""

from __future__ import annotations

import grpc

from mintplane.api.auth.v1 import auth_pb2, auth_pb2_grpc
from mintplane.auth.cache import SessionCache
from mintplane.auth.directory import GrpcIdentity, Identity, RegistryRpcEndpoints
from mintplane.auth.handlers import AuthDomain, AuthServicer
from mintplane.auth.keys import KeySet
from mintplane.auth.nonces import NonceIssuer
from mintplane.auth.ratelimit import AttemptLimiter
from mintplane.auth.repository import AuthRepository
from mintplane.auth.sessions import SessionService
from mintplane.auth.settings import AuthSettings
from mintplane.auth.signin import SignInFlow
from mintplane.auth.tokens import TokenIssuer
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings
from mintplane.common.signatures import SignatureVerifier

NEEDS = Needs(postgres=True, redis=True)
SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


def build_domain(
    settings: AuthSettings, resources: Resources, *, identity: Identity | None = None,
    keys: KeySet | None = None,
) -> AuthDomain:
    """The domain objects over real clients; tests may inject their own Identity or KeySet."""
    channels = {
        name: grpc.aio.insecure_channel(target)
        for name, target in (
            ("user", settings.auth_user_target),
            ("wallet", settings.auth_wallet_target),
            ("chain_registry", settings.auth_chain_registry_target),
        )
    }
    endpoints = RegistryRpcEndpoints(
        channels["chain_registry"], timeout=settings.auth_rpc_timeout_seconds,
        fallback_url=settings.eth_rpc_url if settings.auth_dev_rpc_fallback else None,
    )
    signatures = SignatureVerifier(timeout_seconds=settings.auth_rpc_timeout_seconds)

    async def close() -> None:
        await signatures.close()
        for channel in channels.values():
            await channel.close(None)

    resources.add_closer(close)

    identity = identity or GrpcIdentity(channels["user"], channels["wallet"], settings.auth_rpc_timeout_seconds)
    keys = keys or KeySet.from_settings(settings)
    repo = AuthRepository(resources.pg)
    cache = SessionCache(resources.redis, settings.auth_session_cache_ttl_seconds)
    limiter = AttemptLimiter.from_settings(resources.redis, settings)
    issuer = TokenIssuer(keys, settings)
    return AuthDomain(
        nonces=NonceIssuer(settings=settings, repo=repo, limiter=limiter),
        sign_in=SignInFlow(
            settings=settings, repo=repo, limiter=limiter, identity=identity, signatures=signatures,
            endpoints=endpoints, cache=cache, issuer=issuer,
        ),
        sessions=SessionService(settings=settings, repo=repo, cache=cache, issuer=issuer, identity=identity),
        keys=keys,
    )


def as_auth_settings(settings: ServiceSettings) -> AuthSettings:
    return settings if isinstance(settings, AuthSettings) else AuthSettings(**settings.model_dump())


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    servicer = AuthServicer(build_domain(as_auth_settings(settings), resources))
    return build_grpc_server(
        settings,
        [lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

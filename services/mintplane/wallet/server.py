"""Builds the wallet gRPC server from its servicer (the shape every service shares)."""

from datetime import timedelta

from mintplane.api.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings
from mintplane.common.signatures import SignatureVerifier
from mintplane.wallet.domain import Wallets
from mintplane.wallet.handlers import WalletServicer
from mintplane.wallet.proof import LinkPolicy, host_of
from mintplane.wallet.repository import WalletRepository
from mintplane.wallet.settings import WalletSettings

NEEDS = Needs(postgres=True)
SERVICE_NAME = wallet_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    own = settings if isinstance(settings, WalletSettings) else WalletSettings(**settings.model_dump())
    policy = LinkPolicy(
        allowed_domains=frozenset(host_of(d) for d in own.link_allowed_domains),
        max_age=timedelta(seconds=own.link_max_age_seconds),
        clock_skew=timedelta(seconds=own.link_clock_skew_seconds),
    )
    signatures = SignatureVerifier(timeout_seconds=own.link_rpc_timeout_seconds)
    resources.add_closer(signatures.close)
    wallets = Wallets(
        WalletRepository(resources.pg), signatures, own.link_chain_rpc_urls, policy,
        challenge_ttl=timedelta(seconds=own.link_challenge_ttl_seconds),
        max_signature_bytes=own.link_max_signature_bytes,
    )
    servicer = WalletServicer(wallets)
    return build_grpc_server(
        settings,
        [lambda server: wallet_pb2_grpc.add_WalletServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

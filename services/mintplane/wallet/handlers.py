"""gRPC servicer of the wallet service: thin, it translates messages and calls domain code."""

from __future__ import annotations

from mintplane.api.common.v1 import common_pb2
from mintplane.api.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from mintplane.common import ids
from mintplane.common.grpc_server import Context
from mintplane.wallet import convert
from mintplane.wallet.domain import Wallets, audit


class WalletServicer(wallet_pb2_grpc.WalletServiceServicer):
    def __init__(self, wallets: Wallets) -> None:
        self._wallets = wallets

    async def CreateLinkChallenge(
        self, request: wallet_pb2.CreateLinkChallengeRequest, context: Context
    ) -> wallet_pb2.CreateLinkChallengeResponse:
        challenge = self._wallets.create_challenge(
            ids.parse("user_id", request.user_id), request.address, request.chain.caip2, request.domain, request.uri
        )
        return wallet_pb2.CreateLinkChallengeResponse(
            message=challenge.message, nonce=challenge.nonce,
            issued_at=convert.timestamp(challenge.issued_at), expires_at=convert.timestamp(challenge.expires_at),
        )

    async def LinkWallet(
        self, request: wallet_pb2.LinkWalletRequest, context: Context
    ) -> wallet_pb2.LinkWalletResponse:
        wallet, created = await self._wallets.link(
            ids.actor(request.user_id, "user_id"), request.message, request.signature, request.connector, request.label,
            request.make_primary, audit(request.ip_address, request.user_agent),
        )
        return wallet_pb2.LinkWalletResponse(wallet=wallet, created=created)

    async def UnlinkWallet(
        self, request: wallet_pb2.UnlinkWalletRequest, context: Context
    ) -> wallet_pb2.UnlinkWalletResponse:
        promoted = await self._wallets.unlink(
            ids.actor(request.user_id, "user_id"), ids.parse("wallet_id", request.wallet_id),
            audit(request.ip_address, request.user_agent),
        )
        return wallet_pb2.UnlinkWalletResponse(new_primary=promoted)

    async def SetPrimaryWallet(
        self, request: wallet_pb2.SetPrimaryWalletRequest, context: Context
    ) -> wallet_pb2.SetPrimaryWalletResponse:
        wallet = await self._wallets.set_primary(
            ids.actor(request.user_id, "user_id"), ids.parse("wallet_id", request.wallet_id),
            audit(request.ip_address, request.user_agent),
        )
        return wallet_pb2.SetPrimaryWalletResponse(wallet=wallet)

    async def UpdateWalletLabel(
        self, request: wallet_pb2.UpdateWalletLabelRequest, context: Context
    ) -> wallet_pb2.UpdateWalletLabelResponse:
        wallet = await self._wallets.update_label(
            ids.actor(request.user_id, "user_id"), ids.parse("wallet_id", request.wallet_id), request.label,
            audit(request.ip_address, request.user_agent),
        )
        return wallet_pb2.UpdateWalletLabelResponse(wallet=wallet)

    async def GetWallet(self, request: wallet_pb2.GetWalletRequest, context: Context) -> wallet_pb2.GetWalletResponse:
        return wallet_pb2.GetWalletResponse(wallet=await self._wallets.get(ids.parse("wallet_id", request.wallet_id)))

    async def ListWallets(
        self, request: wallet_pb2.ListWalletsRequest, context: Context
    ) -> wallet_pb2.ListWalletsResponse:
        user_id = ids.parse("user_id", request.user_id)
        wallets = await self._wallets.of_users([user_id])
        return wallet_pb2.ListWalletsResponse(wallets=wallets.get(user_id, []))

    async def BatchListWallets(
        self, request: wallet_pb2.BatchListWalletsRequest, context: Context
    ) -> wallet_pb2.BatchListWalletsResponse:
        grouped = await self._wallets.of_users(ids.parse_many("user_ids", request.user_ids))
        return wallet_pb2.BatchListWalletsResponse(
            users=[wallet_pb2.UserWallets(user_id=str(u), wallets=w) for u, w in grouped.items()]
        )

    async def GetWalletByAddress(
        self, request: wallet_pb2.GetWalletByAddressRequest, context: Context
    ) -> wallet_pb2.GetWalletByAddressResponse:
        return wallet_pb2.GetWalletByAddressResponse(wallet=await self._wallets.by_address(request.address))

    async def BatchGetWalletsByAddress(
        self, request: wallet_pb2.BatchGetWalletsByAddressRequest, context: Context
    ) -> wallet_pb2.BatchGetWalletsByAddressResponse:
        return wallet_pb2.BatchGetWalletsByAddressResponse(wallets=await self._wallets.by_addresses(request.addresses))

    async def ListWalletActivity(
        self, request: wallet_pb2.ListWalletActivityRequest, context: Context
    ) -> wallet_pb2.ListWalletActivityResponse:
        wallet_id = ids.parse("wallet_id", request.wallet_id) if request.wallet_id else None
        activities, next_token = await self._wallets.activity(
            ids.actor(request.actor_user_id), ids.parse("user_id", request.user_id), wallet_id,
            request.page.page_size, request.page.page_token,
        )
        return wallet_pb2.ListWalletActivityResponse(
            activities=activities, page=common_pb2.PageResponse(next_page_token=next_token)
        )

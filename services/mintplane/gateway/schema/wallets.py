"""Wallets: the addresses a user proved control of. Addresses are public (they are on chain anyway); the
connector, label and verification time are shown to the owner only."""

# strawberry.field/mutation(...) with keyword arguments are typed as Any (they double as field specs).
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from mintplane.api.common.v1 import common_pb2
from mintplane.api.wallet.v1 import wallet_pb2
from mintplane.gateway.context import Info
from mintplane.gateway.schema.common import (
    caip2_reference,
    check_address,
    check_chain_id,
    or_none,
    parse_id,
    timestamp,
)


@strawberry.enum(description="Kind of account behind an address.")
class WalletType(Enum):
    UNSPECIFIED = "UNSPECIFIED"
    EOA = "EOA"
    CONTRACT = "CONTRACT"


_WALLET_TYPES = {
    wallet_pb2.WALLET_TYPE_EOA: WalletType.EOA,
    wallet_pb2.WALLET_TYPE_CONTRACT: WalletType.CONTRACT,
}


@strawberry.type(description="An address linked to a user.")
class Wallet:
    id: strawberry.ID
    address: str = strawberry.field(description="Lowercase 0x-prefixed address (the form to compare).")
    checksum_address: str = strawberry.field(description="EIP-55 mixed-case form, for display.")
    account_id: str = strawberry.field(description="CAIP-10 account id, e.g. eip155:1:0xab…")
    chain: str = strawberry.field(description="CAIP-2 id of the chain the link was proven on.")
    chain_id: int | None = strawberry.field(description="Numeric EIP-155 chain id, when the chain is EVM.")
    is_primary: bool
    wallet_type: WalletType
    created_at: datetime | None
    user_id: strawberry.Private[str]
    _connector: strawberry.Private[str]
    _label: strawberry.Private[str]
    _verified_at: strawberry.Private[datetime | None]

    @classmethod
    def from_proto(cls, wallet: wallet_pb2.Wallet) -> Wallet:
        return cls(
            id=strawberry.ID(wallet.wallet_id), address=wallet.address,
            checksum_address=wallet.checksum_address or wallet.address, account_id=wallet.account_id,
            chain=wallet.chain.caip2, chain_id=caip2_reference(wallet.chain.caip2), is_primary=wallet.is_primary,
            wallet_type=_WALLET_TYPES.get(wallet.wallet_type, WalletType.UNSPECIFIED),
            created_at=timestamp(wallet, "created_at"), user_id=wallet.user_id,
            _connector=wallet.connector, _label=wallet.label, _verified_at=timestamp(wallet, "verified_at"),
        )

    async def _owned_by_viewer(self, info: Info) -> bool:
        viewer = await info.context.viewer_or_none()
        return viewer is not None and viewer.user_id == self.user_id

    @strawberry.field(description="Client connector used to link it, e.g. metamask. Owner only.")
    async def connector(self, info: Info) -> str | None:
        return or_none(self._connector) if await self._owned_by_viewer(info) else None

    @strawberry.field(description="The owner's label for this wallet. Owner only.")
    async def label(self, info: Info) -> str | None:
        return or_none(self._label) if await self._owned_by_viewer(info) else None

    @strawberry.field(description="When control of the address was last proven. Owner only.")
    async def verified_at(self, info: Info) -> datetime | None:
        return self._verified_at if await self._owned_by_viewer(info) else None


@strawberry.type
class UnlinkWalletPayload:
    unlinked_wallet_id: strawberry.ID
    new_primary: Wallet | None = strawberry.field(
        description="The wallet that became primary, when the unlinked one was primary."
    )


@strawberry.type(description="The EIP-4361 message that proves control of an address, to sign and pass to linkWallet.")
class LinkChallengePayload:
    message: str = strawberry.field(description="The exact text to sign (personal_sign / EIP-191).")
    nonce: str
    issued_at: datetime | None
    expires_at: datetime | None = strawberry.field(description="linkWallet refuses the message after this.")


@strawberry.type
class LinkWalletPayload:
    wallet: Wallet
    created: bool = strawberry.field(description="False when the address was already linked to the viewer.")


async def viewer_wallets(info: Info) -> list[Wallet]:
    viewer = await info.context.viewer()
    wallets = await info.context.loaders.wallets.load(viewer.user_id)
    return [Wallet.from_proto(wallet) for wallet in wallets]


@strawberry.type
class WalletQuery:
    @strawberry.field(description="The signed-in user's wallets, primary first.")
    async def wallets(self, info: Info) -> list[Wallet]:
        return await viewer_wallets(info)


@strawberry.type
class WalletMutation:
    @strawberry.mutation(description=(
        "Starts linking another address to the viewer: returns the message its owner signs for linkWallet. "
        "`domain` defaults to the browser's Origin."
    ))
    async def link_wallet_challenge(
        self, info: Info, address: str, chain_id: int, domain: str | None = None, uri: str | None = None
    ) -> LinkChallengePayload:
        viewer = await info.context.viewer()
        chain = check_chain_id(chain_id)
        domain, uri = info.context.signing_origin(domain, uri)
        reply = await info.context.clients.wallet.create_link_challenge(wallet_pb2.CreateLinkChallengeRequest(
            user_id=viewer.user_id, address=check_address(address), chain=common_pb2.ChainRef(caip2=chain),
            domain=domain, uri=uri,
        ))
        return LinkChallengePayload(
            message=reply.message, nonce=reply.nonce, issued_at=timestamp(reply, "issued_at"),
            expires_at=timestamp(reply, "expires_at"),
        )

    @strawberry.mutation(
        description="Links the address that signed `message` (from linkWalletChallenge) to the viewer."
    )
    async def link_wallet(
        self, info: Info, message: str, signature: str, connector: str | None = None, label: str | None = None,
        make_primary: bool = False,
    ) -> LinkWalletPayload:
        viewer = await info.context.viewer()
        client = info.context.client
        reply = await info.context.clients.wallet.link_wallet(wallet_pb2.LinkWalletRequest(
            user_id=viewer.user_id, message=message, signature=signature, connector=connector or "",
            label=label or "", make_primary=make_primary, ip_address=client.ip_address, user_agent=client.user_agent,
        ))
        info.context.loaders.forget_user(viewer.user_id)
        return LinkWalletPayload(wallet=Wallet.from_proto(reply.wallet), created=reply.created)

    @strawberry.mutation(description="Unlinks one of the viewer's wallets; the last one cannot be unlinked.")
    async def unlink_wallet(self, info: Info, wallet_id: strawberry.ID) -> UnlinkWalletPayload:
        viewer = await info.context.viewer()
        wallet_id = strawberry.ID(parse_id(wallet_id, "walletId"))
        client = info.context.client
        reply = await info.context.clients.wallet.unlink_wallet(wallet_pb2.UnlinkWalletRequest(
            user_id=viewer.user_id, wallet_id=wallet_id, ip_address=client.ip_address, user_agent=client.user_agent,
        ))
        info.context.loaders.forget_user(viewer.user_id)
        new_primary = Wallet.from_proto(reply.new_primary) if reply.HasField("new_primary") else None
        return UnlinkWalletPayload(unlinked_wallet_id=wallet_id, new_primary=new_primary)

    @strawberry.mutation(description="Makes one of the viewer's wallets the primary one.")
    async def set_primary_wallet(self, info: Info, wallet_id: strawberry.ID) -> Wallet:
        viewer = await info.context.viewer()
        client = info.context.client
        reply = await info.context.clients.wallet.set_primary_wallet(wallet_pb2.SetPrimaryWalletRequest(
            user_id=viewer.user_id, wallet_id=parse_id(wallet_id, "walletId"),
            ip_address=client.ip_address, user_agent=client.user_agent,
        ))
        info.context.loaders.forget_user(viewer.user_id)
        return Wallet.from_proto(reply.wallet)

    @strawberry.mutation(description="Sets (or clears, with null) the label of one of the viewer's wallets.")
    async def update_wallet_label(self, info: Info, wallet_id: strawberry.ID, label: str | None) -> Wallet:
        viewer = await info.context.viewer()
        reply = await info.context.clients.wallet.update_wallet_label(wallet_pb2.UpdateWalletLabelRequest(
            user_id=viewer.user_id, wallet_id=parse_id(wallet_id, "walletId"), label=label or "",
        ))
        info.context.loaders.forget_user(viewer.user_id)
        return Wallet.from_proto(reply.wallet)

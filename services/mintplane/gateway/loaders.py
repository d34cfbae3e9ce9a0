"""Per-request DataLoaders: every `user`, `stats` and `wallets` a query touches in one tick becomes one
batched upstream call, so a page of 50 followers with their stats and wallets costs three calls, not 150.
The catalog's loaders do the same for a page of tokens: their collections, the collections' stats, the
owners' wallets (and through them the owners' users) are one call each, whatever the page size.

They live for one request only (built in the context), so nothing one viewer loaded is seen by another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from mintplane.api.catalog.v1 import catalog_pb2
from mintplane.api.chain_registry.v1 import chain_registry_pb2
from mintplane.api.user.v1 import user_pb2
from mintplane.api.wallet.v1 import wallet_pb2
from mintplane.gateway.clients import Clients
from mintplane.gateway.errors import NotFound

# The Batch* RPCs accept up to 100 ids per call.
BATCH_LIMIT = 100


class Loaders:
    def __init__(self, clients: Clients) -> None:
        self._clients = clients
        self.users: DataLoader[str, user_pb2.User | None] = DataLoader(self._load_users, max_batch_size=BATCH_LIMIT)
        self.stats: DataLoader[str, user_pb2.UserStats | None] = DataLoader(
            self._load_stats, max_batch_size=BATCH_LIMIT
        )
        self.wallets: DataLoader[str, list[wallet_pb2.Wallet]] = DataLoader(
            self._load_wallets, max_batch_size=BATCH_LIMIT
        )
        self._follows: dict[str, DataLoader[str, bool]] = {}
        self.collections: DataLoader[str, catalog_pb2.Collection | None] = DataLoader(
            self._load_collections, max_batch_size=BATCH_LIMIT
        )
        self.collection_stats: DataLoader[str, catalog_pb2.CollectionStats | None] = DataLoader(
            self._load_collection_stats, max_batch_size=BATCH_LIMIT
        )
        self.tokens: DataLoader[str, catalog_pb2.Token | None] = DataLoader(
            self._load_tokens, max_batch_size=BATCH_LIMIT
        )
        # Keyed by lowercase address: the wallet linking it (and so its mintplane user), None when unlinked.
        self.wallets_by_address: DataLoader[str, wallet_pb2.Wallet | None] = DataLoader(
            self._load_wallets_by_address, max_batch_size=BATCH_LIMIT
        )
        self.chains: DataLoader[str, chain_registry_pb2.Chain | None] = DataLoader(self._load_chains)
        self.chain_heads: DataLoader[str, int | None] = DataLoader(self._load_chain_heads)

    def follows(self, follower_id: str) -> DataLoader[str, bool]:
        """Whether `follower_id` (the viewer) follows each requested user: one IsFollowing per batch."""
        loader = self._follows.get(follower_id)
        if loader is None:

            async def load(following_ids: Sequence[str]) -> list[bool]:
                reply = await self._clients.user.is_following(
                    user_pb2.IsFollowingRequest(follower_id=follower_id, following_ids=list(following_ids))
                )
                followed = {edge.following_id for edge in reply.follows}
                return [user_id in followed for user_id in following_ids]

            loader = DataLoader(load, max_batch_size=BATCH_LIMIT)
            self._follows[follower_id] = loader
        return loader

    def forget_user(self, user_id: str) -> None:
        """Drop what a mutation may have changed, so later fields of the same request read fresh data."""
        loaders: tuple[DataLoader[str, Any], ...] = (self.users, self.stats, self.wallets, *self._follows.values())
        for loader in loaders:
            with contextlib.suppress(KeyError):  # DataLoader.clear raises for keys it never loaded
                loader.clear(user_id)

    async def _load_users(self, user_ids: Sequence[str]) -> list[user_pb2.User | None]:
        reply = await self._clients.user.batch_get_users(user_pb2.BatchGetUsersRequest(user_ids=list(user_ids)))
        found = {user.user_id: user for user in reply.users}
        return [found.get(user_id) for user_id in user_ids]

    async def _load_stats(self, user_ids: Sequence[str]) -> list[user_pb2.UserStats | None]:
        reply = await self._clients.user.batch_get_stats(user_pb2.BatchGetStatsRequest(user_ids=list(user_ids)))
        found = {stats.user_id: stats for stats in reply.stats}
        return [found.get(user_id) for user_id in user_ids]

    async def _load_wallets(self, user_ids: Sequence[str]) -> list[list[wallet_pb2.Wallet]]:
        reply = await self._clients.wallet.batch_list_wallets(
            wallet_pb2.BatchListWalletsRequest(user_ids=list(user_ids))
        )
        found = {entry.user_id: list(entry.wallets) for entry in reply.users}
        return [found.get(user_id, []) for user_id in user_ids]

    async def _load_collections(self, ids: Sequence[str]) -> list[catalog_pb2.Collection | None]:
        reply = await self._clients.catalog.batch_get_collections(catalog_pb2.BatchGetCollectionsRequest(ids=list(ids)))
        found = {collection.id: collection for collection in reply.collections}
        return [found.get(collection_id) for collection_id in ids]

    async def _load_collection_stats(self, ids: Sequence[str]) -> list[catalog_pb2.CollectionStats | None]:
        reply = await self._clients.catalog.batch_get_collection_stats(
            catalog_pb2.BatchGetCollectionStatsRequest(collection_ids=list(ids))
        )
        found = {stats.collection_id: stats for stats in reply.stats}
        return [found.get(collection_id) for collection_id in ids]

    async def _load_tokens(self, ids: Sequence[str]) -> list[catalog_pb2.Token | None]:
        reply = await self._clients.catalog.batch_get_tokens(catalog_pb2.BatchGetTokensRequest(ids=list(ids)))
        found = {token.id: token for token in reply.tokens}
        return [found.get(token_id) for token_id in ids]

    async def _load_wallets_by_address(self, addresses: Sequence[str]) -> list[wallet_pb2.Wallet | None]:
        reply = await self._clients.wallet.batch_get_wallets_by_address(
            wallet_pb2.BatchGetWalletsByAddressRequest(addresses=list(addresses))
        )
        found = {wallet.address: wallet for wallet in reply.wallets}
        return [found.get(address.lower()) for address in addresses]

    async def _load_chains(self, caip2_ids: Sequence[str]) -> list[chain_registry_pb2.Chain | None]:
        """The registry has no batch read: one GetChain per distinct chain, all at once. A response names a
        handful of chains at most (a page of tokens or collections is usually all on one)."""

        async def one(caip2: str) -> chain_registry_pb2.Chain | None:
            try:
                reply = await self._clients.chain_registry.get_chain(chain_registry_pb2.GetChainRequest(caip2=caip2))
            except NotFound:
                return None
            return reply.chain

        return list(await asyncio.gather(*(one(caip2) for caip2 in caip2_ids)))

    async def _load_chain_heads(self, caip2_ids: Sequence[str]) -> list[int | None]:
        """The best-known head of each chain: the highest block a healthy endpoint reported at its last probe
        (any probed endpoint when none is healthy). The registry lists endpoints per chain only, so this is one
        ListEndpoints per chain asked for, all at once; a response names a handful of chains at most."""
        replies = await asyncio.gather(*(
            self._clients.chain_registry.list_endpoints(
                chain_registry_pb2.ListEndpointsRequest(caip2=caip2, include_inactive=True)
            )
            for caip2 in caip2_ids
        ))
        return [best_head(reply.endpoints) for reply in replies]


def best_head(endpoints: Sequence[chain_registry_pb2.Endpoint]) -> int | None:
    probed = [endpoint.health for endpoint in endpoints if endpoint.HasField("health") and endpoint.health.head_block]
    healthy = [health.head_block for health in probed if health.healthy]
    heads = healthy or [health.head_block for health in probed]
    return max(heads) if heads else None

"""Per-request DataLoaders: every `user`, `stats` and `wallets` a query touches in one tick becomes one
batched upstream call, so a page of 50 followers with their stats and wallets costs three calls, not 150.

They live for one request only (built in the context), so nothing one viewer loaded is seen by another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from mintplane.api.user.v1 import user_pb2
from mintplane.api.wallet.v1 import wallet_pb2
from mintplane.gateway.clients import Clients

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

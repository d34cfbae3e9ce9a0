"""gRPC servicer of the user service: thin, it translates messages and calls domain code."""

from __future__ import annotations

from mintplane.api.common.v1 import common_pb2
from mintplane.api.user.v1 import user_pb2, user_pb2_grpc
from mintplane.common import ids
from mintplane.common.grpc_server import Context
from mintplane.user import convert
from mintplane.user.domain import Users


class UserServicer(user_pb2_grpc.UserServiceServicer):
    def __init__(self, users: Users) -> None:
        self._users = users

    async def CreateUser(self, request: user_pb2.CreateUserRequest, context: Context) -> user_pb2.CreateUserResponse:
        user_id = ids.parse("user_id", request.user_id) if request.user_id else None
        user, created = await self._users.create(user_id, request.username, request.display_name)
        return user_pb2.CreateUserResponse(user=user, created=created)

    async def GetUser(self, request: user_pb2.GetUserRequest, context: Context) -> user_pb2.GetUserResponse:
        return user_pb2.GetUserResponse(user=await self._users.get(ids.parse("user_id", request.user_id)))

    async def GetUserByUsername(
        self, request: user_pb2.GetUserByUsernameRequest, context: Context
    ) -> user_pb2.GetUserByUsernameResponse:
        return user_pb2.GetUserByUsernameResponse(user=await self._users.get_by_username(request.username))

    async def BatchGetUsers(
        self, request: user_pb2.BatchGetUsersRequest, context: Context
    ) -> user_pb2.BatchGetUsersResponse:
        users = await self._users.get_many(ids.parse_many("user_ids", request.user_ids))
        return user_pb2.BatchGetUsersResponse(users=users)

    async def UpdateProfile(
        self, request: user_pb2.UpdateProfileRequest, context: Context
    ) -> user_pb2.UpdateProfileResponse:
        user = await self._users.update_profile(
            ids.actor(request.actor_user_id), ids.parse("user_id", request.user_id),
            request.profile, list(request.update_mask.paths),
        )
        return user_pb2.UpdateProfileResponse(user=user)

    async def SetUserStatus(
        self, request: user_pb2.SetUserStatusRequest, context: Context
    ) -> user_pb2.SetUserStatusResponse:
        user = await self._users.set_status(
            ids.actor(request.actor_user_id), ids.parse("user_id", request.user_id), request.status, request.reason
        )
        return user_pb2.SetUserStatusResponse(user=user)

    async def GetPreferences(
        self, request: user_pb2.GetPreferencesRequest, context: Context
    ) -> user_pb2.GetPreferencesResponse:
        preferences = await self._users.get_preferences(
            ids.actor(request.actor_user_id), ids.parse("user_id", request.user_id)
        )
        return user_pb2.GetPreferencesResponse(preferences=preferences)

    async def UpdatePreferences(
        self, request: user_pb2.UpdatePreferencesRequest, context: Context
    ) -> user_pb2.UpdatePreferencesResponse:
        preferences = await self._users.update_preferences(
            ids.actor(request.actor_user_id), ids.parse("user_id", request.user_id),
            request.preferences, list(request.update_mask.paths),
        )
        return user_pb2.UpdatePreferencesResponse(preferences=preferences)

    async def GetStats(self, request: user_pb2.GetStatsRequest, context: Context) -> user_pb2.GetStatsResponse:
        return user_pb2.GetStatsResponse(stats=await self._users.get_one_stats(ids.parse("user_id", request.user_id)))

    async def BatchGetStats(
        self, request: user_pb2.BatchGetStatsRequest, context: Context
    ) -> user_pb2.BatchGetStatsResponse:
        stats = await self._users.get_stats(ids.parse_many("user_ids", request.user_ids))
        return user_pb2.BatchGetStatsResponse(stats=stats)

    async def Follow(self, request: user_pb2.FollowRequest, context: Context) -> user_pb2.FollowResponse:
        follow, created = await self._users.follow(
            ids.actor(request.actor_user_id),
            ids.parse("follower_id", request.follower_id),
            ids.parse("following_id", request.following_id),
        )
        return user_pb2.FollowResponse(follow=convert.follow_edge(follow), created=created)

    async def Unfollow(self, request: user_pb2.UnfollowRequest, context: Context) -> user_pb2.UnfollowResponse:
        removed = await self._users.unfollow(
            ids.actor(request.actor_user_id),
            ids.parse("follower_id", request.follower_id),
            ids.parse("following_id", request.following_id),
        )
        return user_pb2.UnfollowResponse(removed=removed)

    async def ListFollowers(
        self, request: user_pb2.ListFollowersRequest, context: Context
    ) -> user_pb2.ListFollowersResponse:
        page = await self._users.list_follows(
            ids.parse("user_id", request.user_id), followers=True,
            size=request.page.page_size, token=request.page.page_token,
        )
        return user_pb2.ListFollowersResponse(
            follows=[convert.follow_edge(f) for f in page.follows],
            page=common_pb2.PageResponse(next_page_token=page.next_token, total_size=page.total),
        )

    async def ListFollowing(
        self, request: user_pb2.ListFollowingRequest, context: Context
    ) -> user_pb2.ListFollowingResponse:
        page = await self._users.list_follows(
            ids.parse("user_id", request.user_id), followers=False,
            size=request.page.page_size, token=request.page.page_token,
        )
        return user_pb2.ListFollowingResponse(
            follows=[convert.follow_edge(f) for f in page.follows],
            page=common_pb2.PageResponse(next_page_token=page.next_token, total_size=page.total),
        )

    async def IsFollowing(self, request: user_pb2.IsFollowingRequest, context: Context) -> user_pb2.IsFollowingResponse:
        follows = await self._users.is_following(
            ids.parse("follower_id", request.follower_id), ids.parse_many("following_ids", request.following_ids)
        )
        return user_pb2.IsFollowingResponse(follows=[convert.follow_edge(f) for f in follows])

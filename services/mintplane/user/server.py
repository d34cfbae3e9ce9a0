"""Builds the user gRPC server from its servicer (the shape every service shares)."""

from mintplane.api.user.v1 import user_pb2, user_pb2_grpc
from mintplane.common.grpc_server import BuiltServer
from mintplane.common.grpc_server import build_server as build_grpc_server
from mintplane.common.service import Needs, Resources
from mintplane.common.settings import ServiceSettings
from mintplane.user.cache import UserCache
from mintplane.user.domain import Users
from mintplane.user.handlers import UserServicer
from mintplane.user.repository import UserRepository
from mintplane.user.settings import UserSettings

NEEDS = Needs(postgres=True, redis=True)
SERVICE_NAME = user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name


async def build_server(settings: ServiceSettings, resources: Resources) -> BuiltServer:
    own = settings if isinstance(settings, UserSettings) else UserSettings(**settings.model_dump())
    users = Users(
        UserRepository(resources.pg),
        UserCache(resources.redis, ttl_seconds=own.user_cache_ttl_seconds),
        admins=own.admin_user_ids,
    )
    servicer = UserServicer(users)
    return build_grpc_server(
        settings,
        [lambda server: user_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)],
        [SERVICE_NAME],
    )

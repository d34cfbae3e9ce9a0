"""gRPC servicer of the user service: thin, it translates messages and calls domain code.

RPCs not implemented yet answer UNIMPLEMENTED (the generated base class does that).
"""

from mintplane.api.user.v1 import user_pb2_grpc
from mintplane.common.service import Resources


class UserServicer(user_pb2_grpc.UserServiceServicer):
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

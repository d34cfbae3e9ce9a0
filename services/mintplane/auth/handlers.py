"""gRPC servicer of the auth service: thin, it translates messages and calls domain code.

RPCs not implemented yet answer UNIMPLEMENTED (the generated base class does that).
"""

from mintplane.api.auth.v1 import auth_pb2_grpc
from mintplane.common.service import Resources


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

"""gRPC servicer of the media service: thin, it translates messages and calls domain code.

RPCs not implemented yet answer UNIMPLEMENTED (the generated base class does that).
"""

from mintplane.api.media.v1 import media_pb2_grpc
from mintplane.common.service import Resources


class MediaServicer(media_pb2_grpc.MediaServiceServicer):
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

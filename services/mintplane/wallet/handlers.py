"""gRPC servicer of the wallet service: thin, it translates messages and calls domain code.

RPCs not implemented yet answer UNIMPLEMENTED (the generated base class does that).
"""

from mintplane.api.wallet.v1 import wallet_pb2_grpc
from mintplane.common.service import Resources


class WalletServicer(wallet_pb2_grpc.WalletServiceServicer):
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

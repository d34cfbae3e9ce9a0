"""`python -m mintplane.wallet` runs the service on its port (MINTPLANE_GRPC_PORT overrides it)."""

from mintplane.common.service import main
from mintplane.wallet.server import NEEDS, build_server
from mintplane.wallet.settings import WalletSettings

main("wallet", WalletSettings, NEEDS, build_server)

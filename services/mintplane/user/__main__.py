"""`python -m mintplane.user` runs the service on its port (MINTPLANE_GRPC_PORT overrides it)."""

from mintplane.common.service import main
from mintplane.user.server import NEEDS, build_server
from mintplane.user.settings import UserSettings

main("user", UserSettings, NEEDS, build_server)

"""`python -m mintplane.auth` runs the service on its port (MINTPLANE_GRPC_PORT overrides it)."""

from mintplane.auth.server import NEEDS, build_server
from mintplane.auth.settings import AuthSettings
from mintplane.common.service import main

main("auth", AuthSettings, NEEDS, build_server)

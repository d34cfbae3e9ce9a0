"""`python -m mintplane.media` runs the service on its port (MINTPLANE_GRPC_PORT overrides it)."""

from mintplane.common.service import main
from mintplane.media.server import NEEDS, build_server
from mintplane.media.settings import MediaSettings

main("media", MediaSettings, NEEDS, build_server)

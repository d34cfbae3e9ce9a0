"""`python -m mintplane.catalog` runs the service on its port (MINTPLANE_GRPC_PORT overrides it)."""

from mintplane.catalog.server import NEEDS, build_server
from mintplane.catalog.settings import CatalogSettings
from mintplane.common.service import main

main("catalog", CatalogSettings, NEEDS, build_server)

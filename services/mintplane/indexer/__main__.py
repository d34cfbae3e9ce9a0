"""`python -m mintplane.indexer` runs the service on its port (MINTPLANE_GRPC_PORT overrides it)."""

from mintplane.common.service import main
from mintplane.indexer.server import NEEDS, build_server
from mintplane.indexer.settings import IndexerSettings

main("indexer", IndexerSettings, NEEDS, build_server)

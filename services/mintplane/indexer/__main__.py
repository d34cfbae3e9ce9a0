"""`python -m mintplane.indexer [--chain <caip2> | backfill ...]`: see mintplane.indexer.cli."""

import sys

from mintplane.indexer.cli import main

sys.exit(main())

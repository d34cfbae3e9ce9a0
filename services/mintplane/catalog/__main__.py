"""`python -m mintplane.catalog [consume]`: the service with its consumer, or the consumer alone."""

import sys

from mintplane.catalog.process import consume_only, serve

if len(sys.argv) > 1 and sys.argv[1] == "consume":
    consume_only()
elif len(sys.argv) > 1:
    sys.exit(f"usage: python -m mintplane.catalog [consume]  (unknown argument {sys.argv[1]!r})")
else:
    serve()

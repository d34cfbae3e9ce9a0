"""``python -m mintplane.devstack.fileserver --directory D --port P``: the dev stack's loopback file server.

It serves the demo collection's metadata documents and images (see :mod:`mintplane.devstack.demo_assets`)
the way a collection's metadata host would: ``baseURI + tokenId`` paths have no extension, so files without
one are served as ``application/json``; the rest by extension (``.svg`` as ``image/svg+xml``). The standard
library's threaded ``http.server`` does the serving; it only ever binds to 127.0.0.1, and the catalog's
metadata fetcher reaches it because the dev stack allow-lists exactly this host and port.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from collections.abc import Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar


class AssetHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {  # type: ignore[misc]
        **SimpleHTTPRequestHandler.extensions_map, "": "application/json", ".json": "application/json",
        ".svg": "image/svg+xml",
    }

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mintplane.devstack.fileserver", description=__doc__)
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    handler = functools.partial(AssetHandler, directory=str(args.directory))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"serving {args.directory} on http://127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The floor bench/gateway/run.py compares the gateway with: the same JSON from a plain FastAPI route (orjson).

    python bench/gateway/plain.py --docs responses.json --port 8099

Serves ``GET /plain/<name>`` for every ``name -> document`` in ``--docs`` (the gateway's own responses,
captured by run.py), serialising the parsed document with orjson on every request as a hand-written JSON
endpoint would. One uvicorn worker with the gateway's server choices (uvloop, httptools, no access log).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Response


def build_app(docs: dict[str, Any]) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/plain/{name}")
    async def plain(name: str) -> Response:
        return Response(orjson.dumps(docs[name]), media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build_app(orjson.loads(args.docs.read_bytes()))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                server_header=False)


if __name__ == "__main__":
    main()

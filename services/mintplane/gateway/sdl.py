"""Writes the gateway's GraphQL schema (SDL) for front-end code generators and reviews of API changes.

    .venv/bin/python -m mintplane.gateway.sdl > services/mintplane/gateway/schema.graphql

tests/unit/test_gateway_sdl.py fails when the committed file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mintplane.gateway.schema import build_schema
from mintplane.gateway.settings import GatewaySettings

SDL_PATH = Path(__file__).with_name("schema.graphql")


def render() -> str:
    return build_schema(GatewaySettings()).as_str() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

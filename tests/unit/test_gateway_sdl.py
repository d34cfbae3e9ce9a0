"""The committed SDL (what front ends generate their clients from) matches the schema the code builds."""

from __future__ import annotations

import pytest

from mintplane.gateway.sdl import SDL_PATH, render

pytestmark = pytest.mark.unit


def test_committed_sdl_is_fresh() -> None:
    assert SDL_PATH.read_text() == render(), (
        "services/mintplane/gateway/schema.graphql is stale: "
        ".venv/bin/python -m mintplane.gateway.sdl > services/mintplane/gateway/schema.graphql"
    )

"""Fixtures shared by every test layer. Integration and e2e tests talk to the dev stack (`make up`)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mintplane.common.settings import InfraSettings
from mintplane.devstack.layout import Layout


@pytest.fixture(scope="session")
def settings() -> InfraSettings:
    return InfraSettings()


@pytest.fixture(scope="session")
def layout() -> Layout:
    return Layout.default()


@pytest.fixture(scope="session")
def kubeconfig(layout: Layout) -> Path:
    return Path(os.environ.get("KUBECONFIG", str(layout.kubeconfig)))


@pytest.fixture
def free_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port

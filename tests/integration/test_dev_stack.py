"""`mintplane dev status` checks every piece for real and says which one is down and where its log is."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.integration

PIECES = ("postgres", "redis", "rabbitmq", "ferretdb", "etcd", "kube-apiserver", "kube-controller-manager", "anvil")


def _status(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mintplane.cli", "dev", "status"],
        capture_output=True, text=True, env={**os.environ, **env}, check=False, timeout=60,
    )


def test_status_reports_every_piece_up() -> None:
    result = _status()
    assert result.returncode == 0, result.stdout + result.stderr
    for piece in PIECES:
        assert any(line.startswith("up") and f" {piece} " in line for line in result.stdout.splitlines()), piece
    assert "Kubernetes v1.35.4" in result.stdout
    assert "etcd 3.6.13" in result.stdout


def test_status_fails_and_names_the_piece_that_is_down() -> None:
    # Point the Redis probe at a port nothing listens on: status must exit non-zero and say so.
    result = _status(MINTPLANE_REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    down = [line for line in result.stdout.splitlines() if line.startswith("DOWN")]
    assert len(down) == 1 and " redis " in down[0]
    assert "redis.log" in down[0]


def test_migrate_command_is_rerunnable() -> None:
    # `make up` already migrated: the entry point must find nothing to do, and say so.
    result = subprocess.run(
        [sys.executable, "-m", "mintplane.cli", "migrate"], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "database is up to date"
    assert "mintplane:mintplane@" not in result.stdout + result.stderr  # the DSN's password never printed


def test_env_prints_kubeconfig_and_path(layout: Layout) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mintplane.cli", "dev", "env"], capture_output=True, text=True, check=True
    )
    assert f"export KUBECONFIG={layout.kubeconfig}" in result.stdout
    assert str(layout.bin) in result.stdout

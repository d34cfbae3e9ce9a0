"""The image the chart runs and the chart agree: the Dockerfile copies what the components read at run time,
runs as the uid the chart's securityContext expects, and the build context keeps local state out. The kind
script is valid bash that refuses to run without a Docker engine."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.unit

ROOT = Layout.default().root
DOCKERFILE = (ROOT / "Dockerfile").read_text()
VALUES = yaml.safe_load((ROOT / "charts" / "mintplane" / "values.yaml").read_text())
KIND_SCRIPT = ROOT / "scripts" / "kind-e2e.sh"


def _copies() -> list[str]:
    sources = []
    for line in DOCKERFILE.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(part.startswith("--from") for part in parts):
            sources += [part for part in parts[1:-1] if not part.startswith("--")]
    return sources


def test_dockerfile_copies_exist_and_are_not_ignored() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copies = _copies()
    assert {"pyproject.toml", "services", "operator", "migrations", "contracts/build"} <= set(copies)
    for source in copies:
        assert (ROOT / source).exists(), source
        assert source not in ignored, f"{source} is copied but excluded by .dockerignore"
    for local_state in (".venv", ".dev", "node_modules", ".git"):
        assert local_state in ignored


def test_image_is_multi_stage_slim_and_non_root_with_the_chart_uid() -> None:
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE, re.M)
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) == 2
    user = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert user == ["10001:10001"]  # numeric, so the kubelet can enforce runAsNonRoot
    pod = VALUES["defaults"]["podSecurityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (10001, 10001)
    assert "HEALTHCHECK" not in DOCKERFILE.replace("No HEALTHCHECK", "")


def test_image_points_the_runtime_at_migrations_and_contracts() -> None:
    """Installed as a wheel the package cannot find the repository's folders: the image must name them."""
    env = dict(re.findall(r"(MINTPLANE_[A-Z_]+)=(\S+)", DOCKERFILE))
    copies = dict(re.findall(r"^COPY (\S+) (\S+)$", DOCKERFILE, re.M))
    assert env["MINTPLANE_MIGRATIONS_DIR"] == copies["migrations"]
    assert env["MINTPLANE_CONTRACTS_DIR"] == copies["contracts/build"]
    assert (ROOT / "migrations" / "alembic.ini").is_file()
    assert list((ROOT / "contracts" / "build").glob("*.json"))


def test_kind_script_is_valid_bash_and_fails_early_without_docker(tmp_path: Path) -> None:
    assert subprocess.run(["bash", "-n", str(KIND_SCRIPT)], check=False).returncode == 0
    # a PATH whose `docker` cannot reach an engine: the script must stop before doing anything else
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    docker.chmod(0o755)
    result = subprocess.run(["bash", str(KIND_SCRIPT)], capture_output=True, text=True, timeout=60, check=False,
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode != 0
    assert "Docker engine" in result.stderr
    assert "go install" not in result.stdout + result.stderr
    assert not (tmp_path / ".cache").exists()  # nothing downloaded or built

"""Where the dev stack keeps its binaries, state, logs and pid files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def repo_root() -> Path:
    """The checkout root: the nearest parent holding pyproject.toml (overridable for installed copies)."""
    override = os.environ.get("MINTPLANE_ROOT")
    if override:
        return Path(override).resolve()
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "services").is_dir():
            return parent
    raise RuntimeError("cannot find the mintplane checkout; set MINTPLANE_ROOT")


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def default(cls) -> Layout:
        return cls(repo_root())

    @property
    def state(self) -> Path:
        return Path(os.environ.get("MINTPLANE_DEV_DIR", self.root / ".dev"))

    @property
    def bin(self) -> Path:
        return self.state / "bin"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kube" / "kubeconfig"

    @property
    def anvil(self) -> Path:
        return self.root / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"

    def data(self, piece: str) -> Path:
        return self.state / "data" / piece

    def log(self, piece: str) -> Path:
        return self.logs / f"{piece}.log"

    def pidfile(self, piece: str) -> Path:
        return self.run / f"{piece}.pid"

    def ensure(self) -> None:
        for folder in (self.bin, self.logs, self.run, self.pki, self.kubeconfig.parent):
            folder.mkdir(parents=True, exist_ok=True)

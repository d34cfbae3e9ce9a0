"""`up` replaces a piece's process that does not answer and was started with another command line (an
earlier kind of the piece, like the status-only indexer before the dev stack's indexer followed anvil),
and leaves alone one that runs the wanted command and is still starting."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

from mintplane.devstack import probes, process, stack
from mintplane.devstack.layout import Layout
from mintplane.devstack.pieces import Piece

pytestmark = pytest.mark.unit


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _piece(port: int) -> Piece:
    return Piece(
        name="stale-test", kind="service", address=f"http://127.0.0.1:{port}",
        command=lambda _layout: [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        probe=lambda _layout: probes.http_ok(f"http://127.0.0.1:{port}/"), start_timeout=20.0,
    )


async def test_a_silent_process_with_another_command_line_is_replaced(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINTPLANE_DEV_DIR", str(tmp_path / ".dev"))
    layout = Layout(tmp_path)
    layout.ensure()
    piece = _piece(_free_port())
    pidfile = layout.pidfile(piece.name)
    old = process.spawn([sys.executable, "-c", "import time; time.sleep(120)"], pidfile=pidfile,
                        log=layout.log(piece.name))
    try:
        log: list[str] = []
        await stack._start_piece(layout, piece, {piece.name: asyncio.Event()}, log)
        assert not process.is_alive(old)
        new = process.running_pid(pidfile)
        assert new is not None and new != old
        assert process.command_line(new) == piece.command(layout)
        assert "replaced a process started with another command line" in " ".join(log)
    finally:
        process.stop(pidfile)
        if process.is_alive(old):
            process.stop(pidfile)


async def test_a_process_running_the_wanted_command_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINTPLANE_DEV_DIR", str(tmp_path / ".dev"))
    layout = Layout(tmp_path)
    layout.ensure()
    piece = _piece(_free_port())
    pidfile = layout.pidfile(piece.name)
    started = process.spawn(piece.command(layout), pidfile=pidfile, log=layout.log(piece.name))
    try:
        log: list[str] = []
        await stack._start_piece(layout, piece, {piece.name: asyncio.Event()}, log)
        assert process.running_pid(pidfile) == started
        assert not any("replaced" in line for line in log)
    finally:
        process.stop(pidfile)

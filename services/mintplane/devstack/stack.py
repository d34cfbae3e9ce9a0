"""`up`, `down` and `status` over the pieces: dependency-ordered, concurrent where possible, idempotent."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

from mintplane.common.settings import GATEWAY_PORT, InfraSettings
from mintplane.devstack import pieces, pki, process
from mintplane.devstack.layout import Layout
from mintplane.devstack.pieces import Piece


class PieceFailed(RuntimeError):
    """A piece did not come up; the message names it and where its log is."""


@dataclass(frozen=True)
class PieceStatus:
    piece: Piece
    healthy: bool
    detail: str
    pid: int | None


def _tail(layout: Layout, name: str, lines: int = 15) -> str:
    try:
        text = layout.log(name).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log yet)"
    return "\n".join("    " + line for line in text[-lines:])


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        text = f"{exc.code().name}: {exc.details()}"
    elif isinstance(exc, asyncio.TimeoutError):
        text = "no answer within the probe timeout"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:240]


async def probe(layout: Layout, piece: Piece, timeout: float = 5.0) -> PieceStatus:
    pid = process.running_pid(layout.pidfile(piece.name))
    try:
        detail = await asyncio.wait_for(piece.probe(layout), timeout)
    except Exception as exc:
        return PieceStatus(piece, False, _one_line(exc), pid)
    return PieceStatus(piece, True, detail, pid)


async def _bootstrap_postgres(layout: Layout) -> None:
    """Create the application role and database (idempotent), over the superuser's unix socket."""
    import asyncpg

    conn = await asyncpg.connect(host=pieces.pg_socket_dir(layout), port=pieces.PG_PORT, user="postgres",
                                 database="postgres", timeout=3)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'mintplane'"):
            await conn.execute("CREATE ROLE mintplane LOGIN CREATEDB PASSWORD 'mintplane'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'mintplane'"):
            await conn.execute("CREATE DATABASE mintplane OWNER mintplane")
    finally:
        await conn.close()


async def _start_piece(layout: Layout, piece: Piece, ready: dict[str, asyncio.Event], log: list[str]) -> None:
    for need in piece.needs:
        if need in ready:
            await ready[need].wait()
    status = await probe(layout, piece, timeout=3)
    if status.healthy:
        owner = "already running" if status.pid else "already answering (not started by mintplane)"
        log.append(f"{piece.name}: {owner}")
        ready[piece.name].set()
        return
    pidfile = layout.pidfile(piece.name)
    running = process.running_pid(pidfile)
    if running is not None and not status.healthy:
        # Not answering, and started with another command line than `up` would use now (an earlier kind of
        # this piece, e.g. the status-only indexer before it followed the local chain): replace it.
        try:
            wanted = piece.command(layout)
        except Exception as exc:
            raise PieceFailed(f"{piece.name}: cannot start: {exc}") from exc
        if process.command_line(running) not in (None, wanted):
            log.append(f"{piece.name}: replaced a process started with another command line")
            await asyncio.to_thread(process.stop, pidfile, sig=piece.stop_signal)
    if process.running_pid(pidfile) is None:
        try:
            piece.prepare(layout)
            argv = piece.command(layout)
        except Exception as exc:
            raise PieceFailed(f"{piece.name}: cannot start: {exc}") from exc
        process.spawn(argv, pidfile=pidfile, log=layout.log(piece.name), env=piece.env(layout), cwd=layout.root)
    deadline = time.monotonic() + piece.start_timeout
    bootstrapped = piece.name != "postgres"
    last = status
    while time.monotonic() < deadline:
        if process.running_pid(pidfile) is None:
            raise PieceFailed(
                f"{piece.name} exited during start; log: {layout.log(piece.name)}\n{_tail(layout, piece.name)}"
            )
        if not bootstrapped:
            try:
                await _bootstrap_postgres(layout)
                bootstrapped = True
            except (TimeoutError, OSError, Exception):
                await asyncio.sleep(0.3)
                continue
        last = await probe(layout, piece, timeout=3)
        if last.healthy:
            ready[piece.name].set()
            log.append(f"{piece.name}: started ({last.detail})")
            return
        await asyncio.sleep(0.3)
    raise PieceFailed(
        f"{piece.name} not ready after {piece.start_timeout:.0f}s ({last.detail}); "
        f"log: {layout.log(piece.name)}\n{_tail(layout, piece.name)}"
    )


async def _start_all(layout: Layout, group: Iterable[Piece]) -> list[str]:
    group = list(group)
    ready = {piece.name: asyncio.Event() for piece in group}
    log: list[str] = []
    tasks = [asyncio.create_task(_start_piece(layout, piece, ready, log), name=piece.name) for piece in group]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    for line in log:
        print(f"  {line}", flush=True)
    if failures:
        raise PieceFailed("\n".join(str(failure) for failure in failures))
    return log


def _kubectl(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(layout.bin / "kubectl"), f"--kubeconfig={layout.kubeconfig}", *args],
        capture_output=True, text=True, check=False,
    )


def _apply_crds(layout: Layout) -> None:
    crds = layout.root / "crds"
    if not crds.is_dir() or not any(crds.glob("*.yaml")):
        return
    result = _kubectl(layout, "apply", "--server-side", "--force-conflicts", "-f", str(crds))
    if result.returncode != 0:
        raise PieceFailed(f"applying CRDs from {crds} failed:\n{result.stderr}")
    print(f"  CRDs applied from {crds}", flush=True)


def _apply(layout: Layout, example: Path) -> None:
    result = _kubectl(layout, "apply", "-n", "default", "-f", str(example))
    if result.returncode != 0:
        raise PieceFailed(f"applying {example} failed:\n{result.stderr}")
    print(f"  applied {example.relative_to(layout.root)}", flush=True)


def _apply_examples(layout: Layout) -> None:
    """The local anvil chain as a Chain resource, so the operator registers it like any other chain."""
    example = layout.root / pieces.LOCAL_CHAIN_EXAMPLE
    if example.exists():
        _apply(layout, example)


DEMO_TRACK_TIMEOUT = 60.0  # the operator registering the chain and the demo contract
DEMO_INDEX_TIMEOUT = 180.0  # indexer -> RabbitMQ -> catalog, for every demo token
DEMO_METADATA_TIMEOUT = 60.0  # then metadata fetches; what is still pending goes on in the background


def _seed_demo(layout: Layout) -> None:
    """Deploy and mint the demo collection (what is missing of it) and register it through its Collection."""
    from mintplane.devstack import demo

    try:
        collection = demo.collection(layout)
        seed = demo.seed_chain(pieces.ANVIL_URL, collection, pieces.FILESERVER_URL)
        done = [f"{count} {what}" for what, count in (("tokens minted", seed.minted),
                                                      ("on-chain URIs set", seed.uris_set),
                                                      ("transfers", seed.transfers)) if count]
        if seed.deployed:
            done.insert(0, "deployed")
        print(f"  demo collection {collection.address} on {pieces.LOCAL_CHAIN}: "
              f"{', '.join(done) if done else 'already on chain'}", flush=True)
        _apply(layout, collection.manifest)
        asyncio.run(demo.wait_tracked(pieces.service_address("chain_registry"), pieces.LOCAL_CHAIN,
                                      collection.address, DEMO_TRACK_TIMEOUT))
    except PieceFailed:
        raise
    except Exception as exc:
        raise PieceFailed(str(exc) if isinstance(exc, demo.DemoFailed) else f"demo: {type(exc).__name__}: {exc}") \
            from exc


def _wait_demo(layout: Layout) -> str:
    """Until the catalog holds the demo tokens; returns the line `up` prints about them."""
    from mintplane.devstack import demo

    collection = demo.collection(layout)
    started = time.monotonic()
    try:
        progress = asyncio.run(demo.wait_indexed(
            pieces.service_address("catalog"), pieces.LOCAL_CHAIN, collection.address,
            timeout=DEMO_INDEX_TIMEOUT, metadata_timeout=DEMO_METADATA_TIMEOUT))
    except demo.DemoFailed as exc:
        raise PieceFailed(str(exc)) from exc
    return (f"  demo collection indexed in {time.monotonic() - started:.1f}s: {progress.items} tokens, "
            f"{progress.owners} owners; metadata {progress.metadata_ok} ok, {progress.metadata_pending} pending, "
            f"{progress.metadata_failed} failed")


def _migrate() -> None:
    from mintplane.common.migrate import upgrade_to_head

    applied = upgrade_to_head(InfraSettings().pg_dsn.get_secret_value())
    print(f"  migrations: {'applied ' + ', '.join(applied) if applied else 'up to date'}", flush=True)


def up(layout: Layout, *, services: bool = True) -> int:
    started = time.monotonic()
    layout.ensure()
    pki.ensure_pki(layout.pki)
    pki.write_kubeconfig(layout.kubeconfig, layout.pki, pieces.APISERVER_URL)
    try:
        print("starting infrastructure", flush=True)
        asyncio.run(_start_all(layout, pieces.INFRA))
        _migrate()
        _apply_crds(layout)
        if services:
            print("starting services", flush=True)
            asyncio.run(_start_all(layout, [piece for piece in pieces.SERVICES if piece not in pieces.FOLLOWERS]))
            _apply_examples(layout)
            print("demo collection", flush=True)
            _seed_demo(layout)
            print(f"starting the indexer of {pieces.LOCAL_CHAIN}", flush=True)
            asyncio.run(_start_all(layout, pieces.FOLLOWERS))
            print(_wait_demo(layout), flush=True)
    except PieceFailed as exc:
        print(f"\nmintplane dev up FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"\nmintplane dev stack is up in {time.monotonic() - started:.1f}s\n")
    print_where(layout, services=services)
    if services:
        print_demo(layout)
    return 0


def print_demo(layout: Layout) -> None:
    from mintplane.devstack import demo

    collection = demo.collection(layout)
    print(f"\n  demo collection {collection.slug!r} ({collection.address}): `kubectl get collections` shows "
          "its tokens and metadata progress")
    print(f"  open GraphiQL at http://127.0.0.1:{GATEWAY_PORT}/graphql and run:\n")
    print("\n".join("    " + line for line in demo.first_query(collection.slug).splitlines()))


def restart(layout: Layout, names: Iterable[str]) -> int:
    """Stop the named pieces (by pid file) and start them again, e.g. a service after a code change."""
    by_name = {piece.name: piece for piece in pieces.INFRA + pieces.SERVICES}
    wanted = list(dict.fromkeys(names))
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        print(f"unknown piece(s): {', '.join(unknown)}; pieces: {', '.join(by_name)}", file=sys.stderr)
        return 2
    group = [by_name[name] for name in wanted]
    for piece in group:
        if process.stop(layout.pidfile(piece.name), sig=piece.stop_signal):
            print(f"  stopped {piece.name}", flush=True)
    try:
        asyncio.run(_start_all(layout, group))
    except PieceFailed as exc:
        print(f"\nmintplane dev restart FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def print_where(layout: Layout, *, services: bool) -> None:
    group = pieces.INFRA + (pieces.SERVICES if services else ())
    width = max(len(piece.name) for piece in group)
    for piece in group:
        print(f"  {piece.name:<{width}}  {piece.address}")
    if services:
        print(f"\n  browser: GraphiQL http://127.0.0.1:{GATEWAY_PORT}/graphql")
    print(f"  browser: RabbitMQ management http://127.0.0.1:{pieces.RABBIT_MANAGEMENT_PORT} (mintplane/mintplane)")
    print(f"  logs: {layout.logs}")
    print(f"  point kubectl at it:  export KUBECONFIG={layout.kubeconfig}   (kubectl: {layout.bin / 'kubectl'})")
    print(f"  or:                   eval \"$({sys.argv[0]} dev env)\"")
    print("  no kubelet runs here: Pods stay Pending; Deployments, ReplicaSets and Jobs are real objects.")


def env_lines(layout: Layout) -> list[str]:
    return [
        f"export KUBECONFIG={layout.kubeconfig}",
        f"export PATH={layout.bin}:$PATH",
    ]


def status(layout: Layout) -> int:
    async def all_status() -> list[PieceStatus]:
        return list(await asyncio.gather(*(probe(layout, piece) for piece in pieces.INFRA + pieces.SERVICES)))

    results = asyncio.run(all_status())
    width = max(len(result.piece.name) for result in results)
    down = 0
    for result in results:
        state = "up  " if result.healthy else "DOWN"
        down += not result.healthy
        where = result.piece.address if result.healthy else f"log: {layout.log(result.piece.name)}"
        print(f"{state} {result.piece.name:<{width}}  {result.detail}  [{where}]")
    print(f"\n{len(results) - down}/{len(results)} up")
    return 1 if down else 0


def down(layout: Layout, *, wipe: bool = False) -> int:
    for piece in reversed(pieces.INFRA + pieces.SERVICES):
        if process.stop(layout.pidfile(piece.name), sig=piece.stop_signal):
            print(f"  stopped {piece.name}", flush=True)
    if wipe:
        postgres_home = layout.data("postgres")
        if postgres_home.is_symlink():  # data kept outside the checkout (see pieces._postgres_home)
            shutil.rmtree(postgres_home.resolve(), ignore_errors=True)
        shutil.rmtree(layout.state / "data", ignore_errors=True)
        shutil.rmtree(layout.pki, ignore_errors=True)
        shutil.rmtree(layout.kubeconfig.parent, ignore_errors=True)
        print(f"  wiped {layout.state / 'data'}", flush=True)
    return 0

"""What the dev stack runs: one `Piece` per server, with how to start it and how to know it works."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from mintplane.common.settings import GATEWAY_PORT, SERVICE_PORTS, InfraSettings
from mintplane.devstack import pki, probes
from mintplane.devstack.layout import Layout

PG_PORT = 5432
REDIS_PORT = 6379
AMQP_PORT = 5672
RABBIT_MANAGEMENT_PORT = 15672
MONGO_PORT = 27017
ETCD_URL = "http://127.0.0.1:2379"
APISERVER_URL = "https://127.0.0.1:6443"
CONTROLLER_MANAGER_URL = "https://127.0.0.1:10257"
ANVIL_URL = "http://127.0.0.1:8545"
ANVIL_CHAIN_ID = 31337
KCM_CONTROLLERS = (
    "garbage-collector-controller,namespace-controller,deployment-controller,"
    "replicaset-controller,serviceaccount-controller,job-controller"
)


@dataclass(frozen=True)
class Piece:
    """One server of the stack. `command` builds argv; `probe` proves it answers; `kind` groups output."""

    name: str
    kind: str
    address: str
    command: Callable[[Layout], list[str]]
    probe: Callable[[Layout], Awaitable[str]]
    prepare: Callable[[Layout], None] = lambda _layout: None
    env: Callable[[Layout], dict[str, str]] = lambda _layout: {}
    stop_signal: signal.Signals = signal.SIGTERM
    start_timeout: float = 60.0
    needs: tuple[str, ...] = field(default=())


def _settings() -> InfraSettings:
    return InfraSettings()


def _as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; when we are root, run it as the Debian `postgres` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _pg_bin(name: str) -> str:
    installed = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if installed:
        return str(installed[-1])
    exe = shutil.which(name)
    if not exe:
        raise RuntimeError(f"{name} not found: run `make install` (scripts/install-system-deps.sh)")
    return exe


def _postgres_home(layout: Layout) -> Path:
    """Folder for PostgreSQL's data and socket. Under root, the `postgres` user must reach it: when the
    checkout sits below a folder it cannot traverse (e.g. /root), the data lives under /var/lib/mintplane
    and .dev/data/postgres links there, so the state still belongs to this checkout."""
    home = layout.data("postgres")
    if os.geteuid() != 0 or home.is_symlink():
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    reachable = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(home.parent)], check=False
    ).returncode == 0
    if reachable:
        return home
    digest = hashlib.sha256(str(layout.root).encode()).hexdigest()[:12]
    target = Path("/var/lib/mintplane") / digest / "postgres"
    target.mkdir(parents=True, exist_ok=True)
    if not home.exists():
        home.symlink_to(target)
    return target


def pg_socket_dir(layout: Layout) -> str:
    return str(_postgres_home(layout) / "socket")


def _pg_data_dir(layout: Layout) -> Path:
    return _postgres_home(layout) / "data"


def _prepare_postgres(layout: Layout) -> None:
    data = _pg_data_dir(layout)
    socket_dir = Path(pg_socket_dir(layout))
    for folder in (data, socket_dir):
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(folder, pwd.getpwnam("postgres").pw_uid, -1)
            folder.parent.chmod(0o755)
    if (data / "PG_VERSION").exists():
        return
    subprocess.run(
        _as_postgres_user([
            _pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
            "--auth-local=trust", "--auth-host=scram-sha-256",
        ]),
        check=True, capture_output=True,
    )


def postgres_command(layout: Layout) -> list[str]:
    return _as_postgres_user([
        _pg_bin("postgres"), "-D", str(_pg_data_dir(layout)), "-p", str(PG_PORT),
        "-k", pg_socket_dir(layout), "-c", "listen_addresses=127.0.0.1",
        "-c", "max_connections=300", "-c", "shared_buffers=256MB",
        # A dev database: durability is traded for speed; nothing here outlives a wipe anyway.
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
    ])


async def _postgres_probe(_layout: Layout) -> str:
    return await probes.postgres(_settings().pg_dsn.get_secret_value())


def _prepare_redis(layout: Layout) -> None:
    layout.data("redis").mkdir(parents=True, exist_ok=True)


def _prepare_rabbitmq(layout: Layout) -> None:
    data = layout.data("rabbitmq")
    (data / "home").mkdir(parents=True, exist_ok=True)
    (data / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{AMQP_PORT}\n"
        f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {RABBIT_MANAGEMENT_PORT}\n"
        "default_user = mintplane\ndefault_pass = mintplane\nloopback_users = none\n"
        "log.console = true\nlog.file = false\n"
    )
    (data / "enabled_plugins").write_text("[rabbitmq_management].\n")


def rabbitmq_env(layout: Layout) -> dict[str, str]:
    data = layout.data("rabbitmq")
    return {
        "HOME": str(data / "home"),
        "RABBITMQ_NODENAME": "mintplane@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(AMQP_PORT),
        "RABBITMQ_DIST_PORT": "25672",
        "RABBITMQ_MNESIA_BASE": str(data / "mnesia"),
        "RABBITMQ_LOG_BASE": str(layout.logs),
        "RABBITMQ_CONFIG_FILE": str(data / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(data / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(data / "rabbitmq.pid"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


def _rabbitmq_server() -> str:
    for candidate in ("/usr/lib/rabbitmq/bin/rabbitmq-server", shutil.which("rabbitmq-server")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("rabbitmq-server not found: run `make install` (scripts/install-system-deps.sh)")


def _need_bin(layout: Layout, name: str) -> str:
    path = layout.bin / name
    if not path.exists():
        raise RuntimeError(f"{path} missing: run `make install` (scripts/build-go-tools.sh builds it)")
    return str(path)


def _etcd_command(layout: Layout) -> list[str]:
    return [
        _need_bin(layout, "etcd"), "--name", "mintplane", "--data-dir", str(layout.data("etcd")),
        "--listen-client-urls", ETCD_URL, "--advertise-client-urls", ETCD_URL,
        "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        "--initial-cluster", "mintplane=http://127.0.0.1:2380", "--listen-metrics-urls", "http://127.0.0.1:2381",
        "--unsafe-no-fsync", "--log-level", "warn",
    ]


def _apiserver_command(layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        _need_bin(layout, "kube-apiserver"),
        f"--etcd-servers={ETCD_URL}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=6443",
        f"--cert-dir={pki}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=RBAC", "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--v=1",
    ]


def _controller_manager_command(layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        _need_bin(layout, "kube-controller-manager"),
        f"--kubeconfig={layout.kubeconfig}",
        f"--controllers={KCM_CONTROLLERS}",
        "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10257",
        f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        "--use-service-account-credentials=false", "--v=1",
    ]


def _anvil_command(layout: Layout) -> list[str]:
    if not layout.anvil.exists():
        raise RuntimeError(f"{layout.anvil} missing: run `make install` (npm ci installs @foundry-rs/anvil)")
    state = layout.data("anvil")
    state.mkdir(parents=True, exist_ok=True)
    return [
        str(layout.anvil), "--host", "127.0.0.1", "--port", "8545", "--chain-id", str(ANVIL_CHAIN_ID),
        # In-memory history only (never ~/.foundry/anvil/tmp); state saved on SIGINT, reloaded on start.
        "--prune-history", "256", "--state", str(state / "state.json"),
    ]


def service_address(name: str) -> str:
    return f"127.0.0.1:{SERVICE_PORTS[name]}"


def _service_env(name: str, layout: Layout) -> dict[str, str]:
    env = {"MINTPLANE_GRPC_PORT": str(SERVICE_PORTS[name]), "MINTPLANE_LOG_JSON": "true"}
    if name == "auth":
        env["MINTPLANE_AUTH_JWT_PRIVATE_KEY"] = pki.ensure_jwt_key(layout.pki).read_text()
    return env


def _service_piece(name: str) -> Piece:
    return Piece(
        name=name,
        kind="service",
        address=f"grpc://{service_address(name)}",
        command=lambda _layout: [sys_executable(), "-m", f"mintplane.{name}"],
        probe=lambda _layout: probes.grpc_health(service_address(name)),
        env=lambda layout: _service_env(name, layout),
        start_timeout=30.0,
        needs=("postgres", "redis", "rabbitmq", "ferretdb"),
    )


def sys_executable() -> str:
    import sys

    return sys.executable


INFRA: tuple[Piece, ...] = (
    Piece(
        name="postgres", kind="infra", address=f"postgresql://127.0.0.1:{PG_PORT}/mintplane",
        command=postgres_command, probe=_postgres_probe, prepare=_prepare_postgres, stop_signal=signal.SIGINT,
    ),
    Piece(
        name="redis", kind="infra", address=f"redis://127.0.0.1:{REDIS_PORT}",
        command=lambda layout: [
            shutil.which("redis-server") or "/usr/bin/redis-server", "--bind", "127.0.0.1",
            "--port", str(REDIS_PORT), "--dir", str(layout.data("redis")), "--save", "", "--appendonly", "no",
        ],
        probe=lambda _layout: probes.redis(_settings().redis_url.get_secret_value()),
        prepare=_prepare_redis,
    ),
    Piece(
        name="rabbitmq", kind="infra",
        address=f"amqp://127.0.0.1:{AMQP_PORT} (management http://127.0.0.1:{RABBIT_MANAGEMENT_PORT})",
        command=lambda _layout: [_rabbitmq_server()],
        probe=lambda _layout: probes.rabbitmq(_settings().amqp_url.get_secret_value()),
        prepare=_prepare_rabbitmq, env=rabbitmq_env, start_timeout=90.0,
    ),
    Piece(
        name="ferretdb", kind="infra", address=f"mongodb://127.0.0.1:{MONGO_PORT}",
        command=lambda layout: [
            _need_bin(layout, "ferretdb"), "--listen-addr", f"127.0.0.1:{MONGO_PORT}",
            "--handler", "sqlite", "--sqlite-url", f"file:{layout.data('ferretdb')}/",
        ],
        probe=lambda _layout: probes.mongo(_settings().mongo_url.get_secret_value()),
        prepare=lambda layout: layout.data("ferretdb").mkdir(parents=True, exist_ok=True),
    ),
    Piece(
        name="etcd", kind="kubernetes", address=ETCD_URL,
        command=_etcd_command, probe=lambda _layout: probes.etcd(ETCD_URL),
    ),
    Piece(
        name="kube-apiserver", kind="kubernetes", address=APISERVER_URL,
        command=_apiserver_command, probe=lambda layout: probes.kube_apiserver(APISERVER_URL, layout.pki),
        start_timeout=120.0, needs=("etcd",),
    ),
    Piece(
        name="kube-controller-manager", kind="kubernetes", address=CONTROLLER_MANAGER_URL,
        command=_controller_manager_command,
        probe=lambda _layout: probes.kube_controller_manager(CONTROLLER_MANAGER_URL),
        needs=("kube-apiserver",),
    ),
    Piece(
        name="anvil", kind="chain", address=ANVIL_URL,
        command=_anvil_command, probe=lambda _layout: probes.eth_rpc(ANVIL_URL, ANVIL_CHAIN_ID),
        stop_signal=signal.SIGINT,
    ),
)

GATEWAY = Piece(
    name="gateway",
    kind="service",
    address=f"http://127.0.0.1:{GATEWAY_PORT}/graphql (GraphiQL in a browser)",
    command=lambda _layout: [sys_executable(), "-m", "mintplane.gateway"],
    probe=lambda _layout: probes.http_ready(f"http://127.0.0.1:{GATEWAY_PORT}/readyz"),
    env=lambda _layout: {
        "MINTPLANE_LOG_JSON": "true",
        "MINTPLANE_GATEWAY_GRAPHIQL": "true",
        "MINTPLANE_GATEWAY_CORS_ORIGINS": '["http://localhost:3000"]',
    },
    start_timeout=30.0,
    needs=("auth", "user", "wallet"),
)

OPERATOR_LIVENESS_URL = "http://127.0.0.1:18080/healthz"
OPERATOR = Piece(
    name="operator",
    kind="service",
    address=f"watching namespaces default, mintplane-* (liveness {OPERATOR_LIVENESS_URL})",
    command=lambda _layout: [sys_executable(), "-m", "mintplane.operator"],
    probe=lambda _layout: probes.http_ok(OPERATOR_LIVENESS_URL),
    env=lambda layout: {
        "KUBECONFIG": str(layout.kubeconfig),
        "MINTPLANE_LOG_JSON": "true",
        # Test suites run their own operators in their own namespaces; the dev one stays out of them.
        "MINTPLANE_OPERATOR_NAMESPACES": "default,mintplane-*",
        "MINTPLANE_OPERATOR_LIVENESS_ENDPOINT": OPERATOR_LIVENESS_URL,
    },
    start_timeout=45.0,
    needs=("chain_registry", "catalog"),
)

SERVICES: tuple[Piece, ...] = (*(_service_piece(name) for name in SERVICE_PORTS), GATEWAY, OPERATOR)

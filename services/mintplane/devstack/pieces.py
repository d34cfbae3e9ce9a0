"""What the dev stack runs: one `Piece` per server, with how to start it and how to know it works."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
LOCAL_CHAIN = f"eip155:{ANVIL_CHAIN_ID}"
LOCAL_CHAIN_EXAMPLE = Path("examples") / "chains" / "anvil.yaml"
FILESERVER_HOST = "127.0.0.1:8090"
FILESERVER_URL = f"http://{FILESERVER_HOST}"
KUBO_API_URL = "http://127.0.0.1:5001"
KUBO_GATEWAY_URL = "http://127.0.0.1:8080"
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


def _kubo_env(layout: Layout) -> dict[str, str]:
    return {"IPFS_PATH": str(layout.data("kubo"))}


def _prepare_kubo(layout: Layout) -> None:
    """Init the repo once (`test` profile: no bootstrap peers, no MDNS, loopback only), then pin on every
    start what the media service relies on: the RPC API and gateway on fixed loopback ports, no swarm
    listener, and the importer settings its local CIDs assume (CIDv1, raw leaves, 256 KiB, 174 links), so
    a kubo whose defaults drift still adds the bytes to the CIDs the service computed."""
    repo = layout.data("kubo")
    if not (repo / "config").exists():
        repo.mkdir(parents=True, exist_ok=True)
        subprocess.run([_need_bin(layout, "ipfs"), "init", "--profile", "test", "--empty-repo"],
                       env={**os.environ, **_kubo_env(layout)}, check=True, capture_output=True)
    config = json.loads((repo / "config").read_text())
    config["Addresses"].update({
        "API": "/ip4/127.0.0.1/tcp/" + KUBO_API_URL.rsplit(":", 1)[1],
        "Gateway": "/ip4/127.0.0.1/tcp/" + KUBO_GATEWAY_URL.rsplit(":", 1)[1],
        "Swarm": [],
    })
    config["Bootstrap"] = []
    config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    config.setdefault("Import", {}).update({
        "CidVersion": 1, "UnixFSRawLeaves": True, "UnixFSChunker": "size-262144", "UnixFSFileMaxLinks": 174,
    })
    (repo / "config").write_text(json.dumps(config, indent=2))


def _kubo_command(layout: Layout) -> list[str]:
    # --offline: no libp2p networking at all; content is served by the local gateway/RPC only.
    return [_need_bin(layout, "ipfs"), "daemon", "--offline"]


def service_address(name: str) -> str:
    return f"127.0.0.1:{SERVICE_PORTS[name]}"


def _service_env(name: str, layout: Layout) -> dict[str, str]:
    env = {"MINTPLANE_GRPC_PORT": str(SERVICE_PORTS[name]), "MINTPLANE_LOG_JSON": "true"}
    if name == "auth":
        env["MINTPLANE_AUTH_JWT_PRIVATE_KEY"] = pki.ensure_jwt_key(layout.pki).read_text()
    if name == "catalog":
        # The metadata fetcher refuses loopback addresses (SSRF); exactly the dev file server is let through.
        env["MINTPLANE_METADATA_ALLOW_HOSTS"] = json.dumps([FILESERVER_HOST])
        # Only the local chain: tests run their own workers on their own chains in the same database, and a
        # stack worker claiming their tokens (without their allow-list) would fail them under their feet.
        env["MINTPLANE_METADATA_CHAINS"] = json.dumps([LOCAL_CHAIN])
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


def demo_assets(layout: Layout) -> Path:
    return layout.data("demo-assets")


def _prepare_demo_assets(layout: Layout) -> None:
    from mintplane.devstack import demo_assets as assets

    assets.write_assets(demo_assets(layout), f"{FILESERVER_URL}/{assets.COLLECTION_DIR}")


FILESERVER = Piece(
    name="fileserver",
    kind="service",
    address=f"{FILESERVER_URL}/anvil-demo/<id> (demo metadata and images, from .dev/data/demo-assets)",
    command=lambda layout: [sys_executable(), "-m", "mintplane.devstack.fileserver",
                            "--directory", str(demo_assets(layout)), "--port", FILESERVER_HOST.rsplit(":", 1)[1]],
    probe=lambda _layout: probes.static_json(f"{FILESERVER_URL}/anvil-demo/1", "name"),
    prepare=_prepare_demo_assets,
    start_timeout=15.0,
)


def local_chain_spec(layout: Layout) -> tuple[str, dict[str, Any]]:
    """The local Chain resource the dev stack applies (name, spec), read from its example file."""
    for document in yaml.safe_load_all((layout.root / LOCAL_CHAIN_EXAMPLE).read_text()):
        if document and document.get("kind") == "Chain":
            return str(document["metadata"]["name"]), dict(document["spec"])
    raise RuntimeError(f"no Chain in {LOCAL_CHAIN_EXAMPLE}")


def _indexer_container(layout: Layout) -> dict[str, Any]:
    """The container the operator would run for the local Chain in a cluster, built by the operator's own
    builder, so the local follower gets the same command and settings as the Deployment would."""
    from mintplane.operator import builders
    from mintplane.operator.settings import OperatorSettings

    name, spec = local_chain_spec(layout)
    deployment = builders.indexer_deployment(name, "default", spec, OperatorSettings())
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def _indexer_command(layout: Layout) -> list[str]:
    command = [str(part) for part in _indexer_container(layout)["command"]]
    return [sys_executable(), *command[1:]]  # "python" in the image; this checkout's venv here


def _indexer_env(layout: Layout) -> dict[str, str]:
    env = {str(item["name"]): str(item["value"]) for item in _indexer_container(layout)["env"]}
    env.update({
        "MINTPLANE_GRPC_HOST": "127.0.0.1",  # loopback, not the pod's 0.0.0.0
        "MINTPLANE_LOG_JSON": "true",
        # A Collection applied locally is followed within seconds rather than the in-cluster 30 s.
        "MINTPLANE_INDEXER_REGISTRY_REFRESH_SECONDS": "3",
    })
    return env


# The local chain's live indexer, a local process instead of the Deployment no kubelet would start. It
# follows a chain the operator registered, so `up` starts it after applying the example Chain (FOLLOWERS).
INDEXER = Piece(
    name="indexer",
    kind="service",
    address=f"grpc://{service_address('indexer')} (follows {LOCAL_CHAIN})",
    command=_indexer_command,
    probe=lambda _layout: probes.indexer_lane(service_address("indexer"), LOCAL_CHAIN),
    env=_indexer_env,
    start_timeout=45.0,
    needs=("chain_registry",),
)


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
    Piece(
        name="kubo", kind="infra", address=f"{KUBO_API_URL}/api/v0 (gateway {KUBO_GATEWAY_URL}/ipfs/<cid>)",
        command=_kubo_command, probe=lambda _layout: probes.kubo(KUBO_API_URL),
        prepare=_prepare_kubo, env=_kubo_env, stop_signal=signal.SIGINT,
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
    needs=("auth", "user", "wallet", "catalog", "chain_registry", "media"),
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
        # The indexer runs as a local process (INDEXER), not as the Deployment no kubelet would start:
        # Chain readiness comes from its GetStatus. Collections' counts refresh every few seconds.
        "MINTPLANE_OPERATOR_INDEXER_EXTERNAL": "true",
        "MINTPLANE_OPERATOR_INDEXER_POLL_SECONDS": "3",
        "MINTPLANE_OPERATOR_CATALOG_POLL_SECONDS": "5",
    },
    start_timeout=45.0,
    needs=("chain_registry", "catalog"),
)

# Started once the local Chain is registered (see stack.up); listed with the services for status and down.
FOLLOWERS: tuple[Piece, ...] = (INDEXER,)
SERVICES: tuple[Piece, ...] = (
    *(_service_piece(name) for name in SERVICE_PORTS if name != "indexer"), GATEWAY, OPERATOR, FILESERVER, *FOLLOWERS,
)

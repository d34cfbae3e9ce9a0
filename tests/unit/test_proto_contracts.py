"""Contract tests of the gRPC stubs generated from proto/mintplane/api/**.

They check that the committed stubs import and expose the expected services and RPCs, that they are fresh
(``scripts/gen-proto.sh --check``) and that the check really catches stale stubs, that the contracts follow
the buf STANDARD conventions the repository relies on (buf itself is not installed), and that messages
survive a serialization round trip.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
STUBS_DIR = ROOT / "services" / "mintplane" / "api"
GEN_PROTO = ROOT / "scripts" / "gen-proto.sh"

# service package -> (service name, RPCs that must exist)
SERVICES: dict[str, tuple[str, set[str]]] = {
    "auth": (
        "AuthService",
        {
            "CreateNonce",
            "SignIn",
            "Refresh",
            "SignOut",
            "ValidateSession",
            "ListSessions",
            "RevokeSession",
            "GetJwks",
        },
    ),
    "user": (
        "UserService",
        {
            "CreateUser",
            "GetUser",
            "GetUserByUsername",
            "BatchGetUsers",
            "UpdateProfile",
            "GetPreferences",
            "UpdatePreferences",
            "GetStats",
            "Follow",
            "Unfollow",
            "ListFollowers",
            "ListFollowing",
            "IsFollowing",
        },
    ),
    "wallet": (
        "WalletService",
        {
            "LinkWallet",
            "UnlinkWallet",
            "SetPrimaryWallet",
            "ListWallets",
            "BatchListWallets",
            "GetWalletByAddress",
            "ListWalletActivity",
        },
    ),
    "orchestrator": (
        "OrchestratorService",
        {
            "CreateCollectionIntent",
            "CreateMintIntent",
            "GetIntent",
            "ListIntents",
            "UpdateIntentStatus",
            "CancelIntent",
        },
    ),
    "media": (
        "MediaService",
        {"CreateUpload", "UploadChunk", "UploadMedia", "GetUpload", "ListUploads", "GetProcessingJob"},
    ),
    "chain_registry": (
        "ChainRegistryService",
        {
            "UpsertChain",
            "GetChain",
            "ListChains",
            "DisableChain",
            "UpsertEndpoint",
            "ListEndpoints",
            "DeleteEndpoint",
            "SetEndpointHealth",
            "PutAbi",
            "GetAbi",
            "UpsertContract",
            "ListContracts",
            "UpsertGasPolicy",
            "GetChainConfig",
        },
    ),
    "catalog": (
        "CatalogService",
        {
            "CreatePendingCollection",
            "MarkCollectionLive",
            "GetCollection",
            "GetCollectionBySlug",
            "ListCollections",
            "GetToken",
            "ListTokens",
            "BatchGetTokens",
            "ListTraits",
            "ListListings",
            "ListOffers",
            "ListSales",
            "ListActivities",
            "GetCollectionStats",
        },
    ),
    "indexer": ("IndexerService", {"GetStatus", "ListCheckpoints", "StartBackfill", "GetBackfill"}),
}

# The only floating-point fields allowed anywhere in the contracts: rates, not money.
FLOAT_FIELDS_ALLOWED = {
    "mintplane.api.indexer.v1.ChainIndexStatus.blocks_per_second",
    "mintplane.api.indexer.v1.ChainIndexStatus.logs_per_second",
}

LOWER_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")


def _pb2(svc: str) -> ModuleType:
    return importlib.import_module(f"mintplane.api.{svc}.v1.{svc}_pb2")


def _pb2_grpc(svc: str) -> ModuleType:
    return importlib.import_module(f"mintplane.api.{svc}.v1.{svc}_pb2_grpc")


def _all_files() -> list[FileDescriptor]:
    common = importlib.import_module("mintplane.api.common.v1.common_pb2")
    return [common.DESCRIPTOR, *(_pb2(svc).DESCRIPTOR for svc in SERVICES)]


def _walk_messages(messages: list[Descriptor]) -> Iterator[Descriptor]:
    for message in messages:
        if message.GetOptions().map_entry:
            continue
        yield message
        yield from _walk_messages(list(message.nested_types))


def _walk_enums(file: FileDescriptor) -> Iterator[EnumDescriptor]:
    yield from file.enum_types_by_name.values()
    for message in _walk_messages(list(file.message_types_by_name.values())):
        yield from message.enum_types


def _upper_snake(pascal: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", pascal).upper()


def _run_gen_proto(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, env=env, timeout=180, check=False
    )


# --- (a) stubs import and expose the expected services -------------------------------------------------


@pytest.mark.parametrize("svc", sorted(SERVICES))
def test_service_descriptor_and_rpcs(svc: str) -> None:
    name, expected_rpcs = SERVICES[svc]
    pb2 = _pb2(svc)
    assert pb2.DESCRIPTOR.package == f"mintplane.api.{svc}.v1"
    assert pb2.DESCRIPTOR.name == f"mintplane/api/{svc}/v1/{svc}.proto"
    assert list(pb2.DESCRIPTOR.services_by_name) == [name], "exactly one service per file"

    service = pb2.DESCRIPTOR.services_by_name[name]
    assert service.full_name == f"mintplane.api.{svc}.v1.{name}"
    methods = set(service.methods_by_name)
    missing = expected_rpcs - methods
    assert not missing, f"{service.full_name} lacks RPCs {sorted(missing)}"
    assert len(methods) >= 4

    grpc_module = _pb2_grpc(svc)
    stub = getattr(grpc_module, f"{name}Stub")
    servicer = getattr(grpc_module, f"{name}Servicer")
    assert callable(getattr(grpc_module, f"add_{name}Servicer_to_server"))
    assert stub.__init__ is not object.__init__
    for method in methods:
        assert callable(getattr(servicer, method)), f"{name}Servicer.{method} missing"


def test_upload_chunk_is_client_streaming() -> None:
    method = _pb2("media").DESCRIPTOR.services_by_name["MediaService"].methods_by_name["UploadChunk"]
    assert method.client_streaming
    assert not method.server_streaming


def test_mintplane_and_api_stay_namespace_packages() -> None:
    # DESIGN section 6: `mintplane` is one PEP 420 namespace across services/ and operator/.
    assert not (ROOT / "services" / "mintplane" / "__init__.py").exists()
    assert not (STUBS_DIR / "__init__.py").exists()
    for svc in [*SERVICES, "common"]:
        assert (STUBS_DIR / svc / "v1" / f"{svc}_pb2.py").is_file()
        assert (STUBS_DIR / svc / "v1" / f"{svc}_pb2.pyi").is_file()


# --- (b) the committed stubs are fresh, and the check catches stale ones --------------------------------


def test_gen_proto_check_passes() -> None:
    result = _run_gen_proto(GEN_PROTO, "--check")
    assert result.returncode == 0, f"stubs are stale:\n{result.stdout}{result.stderr}"
    assert "up to date" in result.stdout


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A minimal copy of the repository (script, protos, committed stubs) to tamper with."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(GEN_PROTO, tmp_path / "scripts" / GEN_PROTO.name)
    shutil.copytree(PROTO_DIR, tmp_path / "proto")
    shutil.copytree(
        STUBS_DIR, tmp_path / "services" / "mintplane" / "api", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_gen_proto_check_reports_stale_stubs(repo_copy: Path) -> None:
    api = repo_copy / "services" / "mintplane" / "api"
    with (api / "auth" / "v1" / "auth_pb2.py").open("a") as fh:
        fh.write("# hand edit\n")
    (api / "user" / "v1" / "leftover_pb2.py").write_text("")
    (api / "media" / "v1" / "media_pb2.pyi").unlink()

    result = _run_gen_proto(repo_copy / "scripts" / GEN_PROTO.name, "--check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "services/mintplane/api/auth/v1/auth_pb2.py (differs)" in result.stderr
    assert "services/mintplane/api/user/v1/leftover_pb2.py (not generated" in result.stderr
    assert "services/mintplane/api/media/v1/media_pb2.pyi (missing)" in result.stderr


def test_gen_proto_check_notices_proto_changes(repo_copy: Path) -> None:
    proto = repo_copy / "proto" / "mintplane" / "api" / "indexer" / "v1" / "indexer.proto"
    text = proto.read_text()
    proto.write_text(text.replace("message GetStatusRequest {", "message GetStatusRequest {\n  bool verbose = 99;", 1))

    result = _run_gen_proto(repo_copy / "scripts" / GEN_PROTO.name, "--check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "indexer/v1/indexer_pb2.py (differs)" in result.stderr

    # Regenerating in place makes the copy fresh again, and the output is deterministic: the second run
    # reproduces the first byte for byte (what --check compares).
    regen = _run_gen_proto(repo_copy / "scripts" / GEN_PROTO.name)
    assert regen.returncode == 0, regen.stdout + regen.stderr
    again = _run_gen_proto(repo_copy / "scripts" / GEN_PROTO.name, "--check")
    assert again.returncode == 0, again.stdout + again.stderr


# --- buf STANDARD conventions (what `buf lint` would enforce) -------------------------------------------


def test_rpc_request_response_naming_and_uniqueness() -> None:
    seen: dict[str, str] = {}
    for file in _all_files():
        for service in file.services_by_name.values():
            assert service.name.endswith("Service")
            for method in service.methods:
                assert PASCAL.match(method.name), method.full_name
                assert method.input_type.full_name == f"{file.package}.{method.name}Request", method.full_name
                assert method.output_type.full_name == f"{file.package}.{method.name}Response", method.full_name
                for message in (method.input_type, method.output_type):
                    assert message.full_name not in seen, f"{message.full_name} reused by {method.full_name}"
                    seen[message.full_name] = method.full_name
    assert len(seen) >= 2 * 80


def test_enums_have_prefixed_values_and_unspecified_zero() -> None:
    enums = [enum for file in _all_files() for enum in _walk_enums(file)]
    assert enums
    for enum in enums:
        assert PASCAL.match(enum.name), enum.full_name
        prefix = _upper_snake(enum.name) + "_"
        assert enum.values[0].number == 0
        assert enum.values[0].name == f"{prefix}UNSPECIFIED", enum.full_name
        for value in enum.values:
            assert UPPER_SNAKE.match(value.name), value.name
            assert value.name.startswith(prefix), f"{enum.full_name}.{value.name} lacks prefix {prefix}"


def test_fields_are_lower_snake_case_and_money_is_never_float() -> None:
    float_types = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
    floats: set[str] = set()
    for file in _all_files():
        for message in _walk_messages(list(file.message_types_by_name.values())):
            assert PASCAL.match(message.name), message.full_name
            for field in message.fields:
                assert LOWER_SNAKE.match(field.name), field.full_name
                if field.type in float_types:
                    floats.add(field.full_name)
    assert floats == FLOAT_FIELDS_ALLOWED


def test_services_rpcs_and_types_are_commented(tmp_path: Path) -> None:
    # Source comments are not in the generated descriptors: compile again with source info.
    spec = importlib.util.find_spec("grpc_tools")
    assert spec is not None
    assert spec.origin is not None
    wkt = Path(spec.origin).parent / "_proto"
    out = tmp_path / "descriptors.binpb"
    files = sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))
    compiled = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{wkt}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *files,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    undocumented: list[str] = []
    for file in fds.file:
        comments = {tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location}
        for i, service in enumerate(file.service):
            if not comments.get((6, i)):
                undocumented.append(service.name)
            for j, method in enumerate(service.method):
                if not comments.get((6, i, 2, j)):
                    undocumented.append(f"{service.name}.{method.name}")
        for i, message in enumerate(file.message_type):
            is_rpc_io = message.name.endswith(("Request", "Response"))
            if not is_rpc_io and not comments.get((4, i)):
                undocumented.append(f"{file.package}.{message.name}")
        for i, enum in enumerate(file.enum_type):
            if not comments.get((5, i)):
                undocumented.append(f"{file.package}.{enum.name}")
    assert len(fds.file) == len(files)
    assert not undocumented, f"missing leading comments: {undocumented}"


# --- (c) messages round-trip ----------------------------------------------------------------------------


def test_chain_config_round_trips_through_the_wire_format() -> None:
    cr = _pb2("chain_registry")
    common = importlib.import_module("mintplane.api.common.v1.common_pb2")
    checked_at = Timestamp(seconds=1_764_000_000, nanos=123_000_000)
    original = cr.GetChainConfigResponse(
        chain=cr.Chain(
            id=7,
            caip2="eip155:31337",
            chain_numeric=31337,
            name="anvil",
            native_symbol="ETH",
            decimals=18,
            enabled=True,
            features=["eip1559"],
        ),
        endpoints=[
            cr.Endpoint(
                id=1,
                caip2="eip155:31337",
                url="http://127.0.0.1:8545",
                priority=0,
                weight=10,
                auth_type=cr.ENDPOINT_AUTH_TYPE_NONE,
                active=True,
                health=cr.EndpointHealth(healthy=True, latency_ms=3, head_block=2**40, checked_at=checked_at),
            )
        ],
        gas_policy=cr.GasPolicy(caip2="eip155:31337", max_fee_gwei="150", priority_fee_gwei="1.5"),
        contracts=[
            cr.Contract(
                id=2**40,
                caip2="eip155:31337",
                address="0x5fbdb2315678afecb367f032d93f642f64180aa3",
                start_block=1,
                standard=common.TOKEN_STANDARD_ERC721,
            )
        ],
    )
    wire = original.SerializeToString(deterministic=True)
    decoded = cr.GetChainConfigResponse.FromString(wire)
    assert decoded == original
    assert decoded.endpoints[0].health.head_block == 2**40
    assert decoded.endpoints[0].health.checked_at.ToNanoseconds() == checked_at.ToNanoseconds()
    assert decoded.gas_policy.priority_fee_gwei == "1.5"
    assert decoded.contracts[0].standard == common.TOKEN_STANDARD_ERC721
    assert decoded.SerializeToString(deterministic=True) == wire

    # The JSON mapping (what logs and debugging tools show) round-trips too; 64-bit ints become strings.
    as_json = json_format.MessageToDict(decoded)
    assert as_json["endpoints"][0]["health"]["headBlock"] == str(2**40)
    assert json_format.ParseDict(as_json, cr.GetChainConfigResponse()) == original


def test_intent_with_oneof_payload_and_exact_wei_round_trips() -> None:
    orch = _pb2("orchestrator")
    common = importlib.import_module("mintplane.api.common.v1.common_pb2")
    max_uint256 = str(2**256 - 1)
    intent = orch.Intent(
        intent_id="0b8f3a64-6a2b-4c4e-9a35-1f0a5e8f3c11",
        kind=orch.INTENT_KIND_DEPLOY_COLLECTION,
        status=orch.INTENT_STATUS_SUBMITTED,
        chain=common.ChainRef(caip2="eip155:1"),
        collection=orch.CollectionIntentPayload(
            name="Genesis",
            symbol="GEN",
            standard=common.TOKEN_STANDARD_ERC721,
            max_supply="10000",
            royalty_bps=250,
            mint_price_wei=max_uint256,
        ),
        tx_hash="0x" + "ab" * 32,
    )
    decoded = orch.Intent.FromString(intent.SerializeToString())
    assert decoded.WhichOneof("payload") == "collection"
    assert decoded.collection.mint_price_wei == max_uint256
    assert decoded == intent

    update = orch.UpdateIntentStatusRequest(
        tx=orch.IntentTx(chain=common.ChainRef(caip2="eip155:1"), tx_hash=intent.tx_hash),
        status=orch.INTENT_STATUS_CONFIRMED,
        block_number=21_000_000,
    )
    decoded_update = orch.UpdateIntentStatusRequest.FromString(update.SerializeToString())
    assert decoded_update.WhichOneof("target") == "tx"
    assert decoded_update.tx.tx_hash == intent.tx_hash


def test_partial_update_carries_its_field_mask() -> None:
    user = _pb2("user")
    request = user.UpdateProfileRequest(
        user_id="5d2c1a4e-0000-4000-8000-000000000001",
        profile=user.Profile(display_name="Alice", socials={"x": "@alice"}),
        update_mask=FieldMask(paths=["display_name", "socials"]),
    )
    decoded = user.UpdateProfileRequest.FromString(request.SerializeToString())
    assert list(decoded.update_mask.paths) == ["display_name", "socials"]
    assert decoded.update_mask.IsValidForDescriptor(user.Profile.DESCRIPTOR)
    assert not FieldMask(paths=["no_such_field"]).IsValidForDescriptor(user.Profile.DESCRIPTOR)
    assert dict(decoded.profile.socials) == {"x": "@alice"}

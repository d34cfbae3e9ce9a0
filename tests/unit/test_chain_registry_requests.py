"""Request parsing, page tokens and response building of the chain registry: no server, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.common.v1 import common_pb2
from mintplane.chain_registry import messages, paging, requests
from mintplane.chain_registry.errors import Invalid
from mintplane.chain_registry.models import AuthType, EndpointRow, GasPolicyRow, Standard
from mintplane.chain_registry.validation import Problems

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_chain_spec_presence_and_defaults() -> None:
    bare = requests.chain_spec(pb.Chain(caip2="eip155:10", name="OP Mainnet"))
    assert (bare.chain_numeric, bare.decimals, bare.enabled, bare.native_symbol) == (10, 18, None, None)
    explicit = requests.chain_spec(pb.Chain(caip2="eip155:10", name="OP", enabled=False, decimals=6))
    assert explicit.enabled is False and explicit.decimals == 6


def test_chain_spec_reports_every_problem() -> None:
    with pytest.raises(Invalid) as info:
        requests.chain_spec(pb.Chain(caip2="eip155:10", chain_numeric=11, name="", explorer_url="javascript:x"))
    assert [p.split(":")[0] for p in info.value.problems] == ["chain.chain_numeric", "chain.name", "chain.explorer_url"]


def test_endpoint_spec_defaults_and_presence() -> None:
    spec = requests.endpoint_spec(pb.Endpoint(caip2="eip155:1", url="https://rpc.example.org"))
    assert spec.active_on_create is True and spec.auth_type is AuthType.NONE and spec.rate_limit is None
    assert spec.endpoint_id is None and spec.auth_secret_ref is None
    off = requests.endpoint_spec(
        pb.Endpoint(
            id=4,
            caip2="eip155:1",
            url="https://rpc.example.org",
            active=False,
            rate_limit=25,
            auth_type=pb.ENDPOINT_AUTH_TYPE_BASIC,
            auth_secret_ref="secret://ns/rpc/basic",
        )
    )
    assert off.active_on_create is False and off.endpoint_id == 4 and off.rate_limit == 25
    assert off.auth_type is AuthType.BASIC and off.auth_secret_ref == "secret://ns/rpc/basic"


@pytest.mark.parametrize(
    ("auth_type", "param", "expected"),
    [
        (pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER, "x-api-key", AuthType.API_KEY_HEADER),
        (pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "apikey", AuthType.API_KEY_QUERY),
    ],
)
def test_endpoint_spec_named_auth_keeps_its_param(auth_type: int, param: str, expected: AuthType) -> None:
    spec = requests.endpoint_spec(
        pb.Endpoint(
            caip2="eip155:1", url="https://rpc.example.org/v1?network=mainnet", auth_type=auth_type,  # type: ignore[arg-type]
            auth_secret_ref="secret://ns/rpc/key", auth_param=param,
        )
    )
    assert (spec.auth_type, spec.auth_param, spec.auth_secret_ref) == (expected, param, "secret://ns/rpc/key")
    assert requests.endpoint_spec(pb.Endpoint(caip2="eip155:1", url="https://rpc.example.org")).auth_param is None


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER, "auth_secret_ref": "secret://ns/rpc/key"},
         ["endpoint.auth_param: is required when auth_type is ENDPOINT_AUTH_TYPE_API_KEY_HEADER"]),
        ({"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "auth_secret_ref": "secret://ns/rpc/key"},
         ["endpoint.auth_param: is required when auth_type is ENDPOINT_AUTH_TYPE_API_KEY_QUERY"]),
        ({"auth_type": pb.ENDPOINT_AUTH_TYPE_BEARER, "auth_secret_ref": "secret://ns/rpc/key", "auth_param": "x"},
         ["endpoint.auth_param: must be empty when auth_type is ENDPOINT_AUTH_TYPE_BEARER"]),
        ({"auth_param": "apikey"},
         ["endpoint.auth_param: must be empty when auth_type is ENDPOINT_AUTH_TYPE_UNSPECIFIED"]),
        ({"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "auth_param": "apikey"},
         ["endpoint.auth_secret_ref: is required when auth_type is ENDPOINT_AUTH_TYPE_API_KEY_QUERY"]),
        ({"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "auth_secret_ref": "secret://ns/rpc/key",
          "auth_param": "network"},
         ["endpoint.url: already has the query parameter 'network'"]),
    ],
)
def test_endpoint_spec_auth_param_combinations_are_refused(fields: dict[str, object], problems: list[str]) -> None:
    message = pb.Endpoint(caip2="eip155:1", url="https://rpc.example.org/?network=mainnet", **fields)  # type: ignore[arg-type]
    with pytest.raises(Invalid) as info:
        requests.endpoint_spec(message)
    assert len(info.value.problems) == len(problems)
    for got, want in zip(info.value.problems, problems, strict=True):
        assert got.startswith(want), got


def test_every_endpoint_auth_type_round_trips() -> None:
    """Each wire value maps to a stored value and back, so a new enum value cannot be half-supported."""
    wire = {v for v in pb.EndpointAuthType.values() if v != pb.ENDPOINT_AUTH_TYPE_UNSPECIFIED}
    assert set(requests.AUTH_TYPES) - {pb.ENDPOINT_AUTH_TYPE_UNSPECIFIED} == wire
    assert {messages.AUTH_TYPE_VALUES[requests.AUTH_TYPES[v]] for v in wire} == wire
    assert set(messages.AUTH_TYPE_VALUES) == set(AuthType)


def test_health_report() -> None:
    stamp = Timestamp()
    stamp.FromDatetime(NOW - timedelta(seconds=3))
    report = requests.health_report(
        pb.SetEndpointHealthRequest(id=3, active=True, latency_ms=5, head_block=9, checked_at=stamp, last_error=" "),
        now=NOW,
    )
    assert report.checked_at == NOW - timedelta(seconds=3) and report.last_error is None
    assert requests.health_report(pb.SetEndpointHealthRequest(id=3), now=NOW).checked_at is None
    future = Timestamp()
    future.FromDatetime(NOW + timedelta(minutes=6))
    with pytest.raises(Invalid) as info:
        requests.health_report(pb.SetEndpointHealthRequest(id=0, latency_ms=-1, checked_at=future), now=NOW)
    assert [p.split(":")[0] for p in info.value.problems] == ["id", "latency_ms", "checked_at"]


def test_abi_spec_hashes_canonical_form_and_detects_standard() -> None:
    fragments = [
        {
            "type": "event",
            "name": "Transfer",
            "inputs": [
                {"name": "a", "type": "address", "indexed": True},
                {"name": "b", "type": "address", "indexed": True},
                {"name": "c", "type": "uint256", "indexed": True},
            ],
        }
    ]
    spec = requests.abi_spec(pb.PutAbiRequest(abi_json=json.dumps(fragments, indent=3)), max_bytes=10_000)
    assert spec.standard is Standard.ERC721 and spec.size_bytes == len(spec.canonical_json.encode())
    declared = requests.abi_spec(
        pb.PutAbiRequest(
            abi_json=json.dumps(fragments), sha256=spec.sha256.upper(), standard=common_pb2.TOKEN_STANDARD_OTHER
        ),
        max_bytes=10_000,
    )
    assert declared.sha256 == spec.sha256 and declared.standard is Standard.OTHER  # the caller's word wins
    with pytest.raises(Invalid, match="larger than 1024 bytes"):
        requests.abi_spec(pb.PutAbiRequest(abi_json="[" + " " * 2000 + "]"), max_bytes=1024)


def test_gas_patch_masks() -> None:
    everything = requests.gas_patch(
        pb.UpsertGasPolicyRequest(gas_policy=pb.GasPolicy(caip2="eip155:1", max_fee_gwei="100", multiplier="1.25"))
    )
    assert everything.values == {
        "max_fee_gwei": Decimal("100"),
        "priority_fee_gwei": None,
        "multiplier": Decimal("1.25"),
        "last_observed_base_fee_gwei": None,
    }
    one = requests.gas_patch(
        pb.UpsertGasPolicyRequest(
            gas_policy=pb.GasPolicy(caip2="eip155:1", max_fee_gwei="bogus", last_observed_base_fee_gwei="7"),
            update_mask=FieldMask(paths=["last_observed_base_fee_gwei", "last_observed_base_fee_gwei"]),
        )
    )
    assert one.values == {"last_observed_base_fee_gwei": Decimal("7")}  # unmasked junk is not even read
    uncapped = requests.gas_patch(
        pb.UpsertGasPolicyRequest(gas_policy=pb.GasPolicy(caip2="eip155:1", max_fee_gwei="0", multiplier="1"))
    )
    assert uncapped.values["max_fee_gwei"] is None  # "0" is how specs say "no cap"
    with pytest.raises(Invalid, match="multiplier: is required"):
        requests.gas_patch(pb.UpsertGasPolicyRequest(gas_policy=pb.GasPolicy(caip2="eip155:1")))
    with pytest.raises(Invalid, match="'updated_at'"):
        requests.gas_patch(
            pb.UpsertGasPolicyRequest(
                gas_policy=pb.GasPolicy(caip2="eip155:1"), update_mask=FieldMask(paths=["updated_at"])
            )
        )


def test_page_tokens_are_bound_to_their_parameters() -> None:
    token = paging.encode("contracts", ["eip155:1", None, []], 41)
    problems = Problems()
    assert paging.decode(problems, "t", token, "contracts", ["eip155:1", None, []]) == 41
    assert paging.decode(problems, "t", "", "contracts", []) is None and problems.items == []
    assert paging.decode(problems, "t", token, "contracts", ["eip155:1", "ERC721", []]) is None
    assert paging.decode(problems, "t", token, "chains", ["eip155:1", None, []]) is None
    assert paging.decode(problems, "t", "%%%", "contracts", []) is None
    assert paging.decode(problems, "t", "W10", "contracts", []) is None  # valid base64 of a JSON list
    assert len(problems.items) == 4 and "different request parameters" in problems.items[0]
    assert "not a page token" in problems.items[2]


def test_contract_filter_normalises_addresses() -> None:
    where, after, size = requests.contract_filter(
        pb.ListContractsRequest(
            caip2="eip155:1",
            addresses=["0x" + "AB" * 20, "0x" + "ab" * 20],
            page=common_pb2.PageRequest(page_size=500),
        )
    )
    assert where.addresses == ["0x" + "ab" * 20] and after is None and size == 100


def test_decimal_text_is_plain() -> None:
    assert [messages.decimal_text(Decimal(v)) for v in ("150", "1.50", "1.5E+2", "0E-9", "0.000000001")] == [
        "150",
        "1.5",
        "150",
        "0",
        "0.000000001",
    ]
    assert messages.decimal_text(None) == ""


def test_endpoint_message_health() -> None:
    row = EndpointRow(
        id=1,
        url="https://a.example.org",
        priority=0,
        weight=1,
        auth_type="bearer",
        auth_secret_ref="secret://a/b/c",
        rate_limit=None,
        active=True,
        latency_ms=None,
        head_block=None,
        blocks_behind=None,
        last_error=None,
        checked_at=None,
    )
    unprobed = messages.endpoint("eip155:1", row)
    assert not unprobed.HasField("health") and unprobed.auth_type == pb.ENDPOINT_AUTH_TYPE_BEARER
    assert unprobed.auth_param == ""
    query = messages.endpoint("eip155:1", EndpointRow(**{**row.__dict__, "auth_type": "api_key_query",
                                                         "auth_param": "apikey"}))
    assert (query.auth_type, query.auth_param) == (pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "apikey")
    probed = messages.endpoint(
        "eip155:1",
        EndpointRow(
            **{
                **row.__dict__,
                "latency_ms": 4,
                "head_block": 10,
                "blocks_behind": 2,
                "last_error": "boom",
                "checked_at": NOW,
            }
        ),
    )
    assert not probed.health.healthy and probed.health.blocks_behind == 2 and probed.health.last_error == "boom"
    assert probed.health.checked_at.ToDatetime(tzinfo=UTC) == NOW


def test_gas_policy_message() -> None:
    row = GasPolicyRow(Decimal("150.000"), None, Decimal("2"), Decimal("12.5"), NOW)
    message = messages.gas_policy("eip155:1", row)
    assert (message.max_fee_gwei, message.priority_fee_gwei, message.multiplier) == ("150", "", "2")
    assert message.last_observed_base_fee_gwei == "12.5"

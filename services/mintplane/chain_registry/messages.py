"""Repository rows -> response messages (the wire format's conventions live here, not in SQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.common.v1 import common_pb2
from mintplane.chain_registry import abi as abi_codec
from mintplane.chain_registry.models import (
    AbiRow,
    AuthType,
    ChainConfig,
    ChainRow,
    ContractRow,
    EndpointRow,
    GasPolicyRow,
    Standard,
)

AUTH_TYPE_VALUES = {
    AuthType.NONE: pb.ENDPOINT_AUTH_TYPE_NONE,
    AuthType.API_KEY_PATH: pb.ENDPOINT_AUTH_TYPE_API_KEY_PATH,
    AuthType.API_KEY_HEADER: pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER,
    AuthType.BEARER: pb.ENDPOINT_AUTH_TYPE_BEARER,
    AuthType.BASIC: pb.ENDPOINT_AUTH_TYPE_BASIC,
    AuthType.API_KEY_QUERY: pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY,
}
STANDARD_VALUES = {
    Standard.ERC721: common_pb2.TOKEN_STANDARD_ERC721,
    Standard.ERC1155: common_pb2.TOKEN_STANDARD_ERC1155,
    Standard.ERC20: common_pb2.TOKEN_STANDARD_ERC20,
    Standard.OTHER: common_pb2.TOKEN_STANDARD_OTHER,
}


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> Timestamp:
    """Exact integer conversion; twice as fast as Timestamp.FromDatetime, which matters for 50-contract configs."""
    delta = value - EPOCH
    return Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


def decimal_text(value: Decimal | None) -> str:
    """Plain base-10 text without exponent or trailing zeros: "150", "1.5" (common.v1 convention)."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _standard(value: str | None) -> common_pb2.TokenStandard.ValueType:
    if value is None:
        return common_pb2.TOKEN_STANDARD_UNSPECIFIED
    return STANDARD_VALUES.get(Standard(value), common_pb2.TOKEN_STANDARD_UNSPECIFIED)


def chain(row: ChainRow) -> pb.Chain:
    return pb.Chain(
        id=row.id,
        caip2=row.caip2,
        chain_numeric=row.chain_numeric,
        name=row.name,
        native_symbol=row.native_symbol or "",
        decimals=row.decimals,
        explorer_url=row.explorer_url or "",
        enabled=row.enabled,
        features=row.features or [],
    )


def endpoint(caip2: str, row: EndpointRow) -> pb.Endpoint:
    message = pb.Endpoint(
        id=row.id,
        caip2=caip2,
        url=row.url,
        priority=row.priority,
        weight=row.weight,
        auth_type=AUTH_TYPE_VALUES[AuthType(row.auth_type)] if row.auth_type else pb.ENDPOINT_AUTH_TYPE_NONE,
        auth_secret_ref=row.auth_secret_ref or "",
        auth_param=row.auth_param or "",
        rate_limit=row.rate_limit or 0,
        active=row.active,
    )
    if row.checked_at is not None:
        message.health.CopyFrom(
            pb.EndpointHealth(
                healthy=row.last_error is None,
                latency_ms=row.latency_ms or 0,
                head_block=row.head_block or 0,
                last_error=row.last_error or "",
                checked_at=timestamp(row.checked_at),
                blocks_behind=row.blocks_behind or 0,
            )
        )
    return message


def contract(caip2: str, row: ContractRow) -> pb.Contract:
    return pb.Contract(
        id=row.id,
        caip2=caip2,
        name=row.name or "",
        address=row.address,
        start_block=row.start_block or 0,
        abi_sha256=row.abi_sha256 or "",
        impl_address=row.impl_address or "",
        standard=_standard(row.standard),
        first_seen_at=timestamp(row.first_seen_at),
    )


def gas_policy(caip2: str, row: GasPolicyRow) -> pb.GasPolicy:
    return pb.GasPolicy(
        caip2=caip2,
        max_fee_gwei=decimal_text(row.max_fee_gwei),
        priority_fee_gwei=decimal_text(row.priority_fee_gwei),
        multiplier=decimal_text(row.multiplier),
        last_observed_base_fee_gwei=decimal_text(row.last_observed_base_fee_gwei),
        updated_at=timestamp(row.updated_at),
    )


def abi_blob(row: AbiRow) -> pb.AbiBlob:
    """The stored ABI; its body (when loaded) is re-serialised canonically, so it hashes to `sha256`."""
    return pb.AbiBlob(
        sha256=row.sha256,
        size_bytes=row.size_bytes or 0,
        source=row.source or "",
        compiler=row.compiler or "",
        contract_name=row.contract_name or "",
        standard=_standard(row.standard),
        abi_json=abi_codec.canonical_json(row.abi) if row.abi is not None else "",
        s3_key=row.s3_key or "",
        created_at=timestamp(row.created_at),
    )


def chain_config(config: ChainConfig) -> pb.GetChainConfigResponse:
    caip2 = config.chain.caip2
    response = pb.GetChainConfigResponse(
        chain=chain(config.chain),
        endpoints=[endpoint(caip2, row) for row in config.endpoints],
        contracts=[contract(caip2, row) for row in config.contracts],
    )
    if config.gas_policy is not None:
        response.gas_policy.CopyFrom(gas_policy(caip2, config.gas_policy))
    return response

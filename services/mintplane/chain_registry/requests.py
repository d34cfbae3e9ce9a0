"""Incoming messages -> validated specs. Every request is checked whole before anything is written, so an
invalid request is refused with every problem listed and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.common.v1 import common_pb2
from mintplane.chain_registry import abi, paging, validation
from mintplane.chain_registry.models import (
    GAS_FIELDS,
    AbiSpec,
    AuthType,
    ChainSpec,
    ContractFilter,
    ContractSpec,
    EndpointSpec,
    GasPolicyPatch,
    HealthReport,
    Standard,
)
from mintplane.chain_registry.validation import INT64_MAX, Problems

AUTH_TYPES: dict[int, AuthType] = {
    pb.ENDPOINT_AUTH_TYPE_UNSPECIFIED: AuthType.NONE,
    pb.ENDPOINT_AUTH_TYPE_NONE: AuthType.NONE,
    pb.ENDPOINT_AUTH_TYPE_API_KEY_PATH: AuthType.API_KEY_PATH,
    pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER: AuthType.API_KEY_HEADER,
    pb.ENDPOINT_AUTH_TYPE_BEARER: AuthType.BEARER,
    pb.ENDPOINT_AUTH_TYPE_BASIC: AuthType.BASIC,
    pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY: AuthType.API_KEY_QUERY,
}
# Auth types whose key travels under a name the endpoint chooses (Endpoint.auth_param).
NAMED_AUTH = {AuthType.API_KEY_HEADER: "header", AuthType.API_KEY_QUERY: "query"}
STANDARDS: dict[int, Standard | None] = {
    common_pb2.TOKEN_STANDARD_UNSPECIFIED: None,
    common_pb2.TOKEN_STANDARD_ERC721: Standard.ERC721,
    common_pb2.TOKEN_STANDARD_ERC1155: Standard.ERC1155,
    common_pb2.TOKEN_STANDARD_ERC20: Standard.ERC20,
    common_pb2.TOKEN_STANDARD_OTHER: Standard.OTHER,
}
DEFAULT_DECIMALS = 18
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_ADDRESS_FILTER = 500


def _standard(problems: Problems, field: str, value: int) -> Standard | None:
    if value not in STANDARDS:
        problems.add(field, f"unknown TokenStandard {value}")
        return None
    return STANDARDS[value]


def caip2_only(field: str, value: str) -> str:
    """A lookup key: malformed ids are INVALID_ARGUMENT, not NOT_FOUND, so typos are told apart."""
    problems = Problems()
    parsed = validation.caip2(problems, field, value)
    problems.raise_if_any()
    assert parsed is not None
    return parsed[0]


def chain_spec(msg: pb.Chain) -> ChainSpec:
    problems = Problems()
    parsed = validation.caip2(problems, "chain.caip2", msg.caip2)
    validation.chain_numeric(problems, "chain.chain_numeric", msg.chain_numeric, parsed[1] if parsed else None)
    name = validation.text(problems, "chain.name", msg.name, max_length=100, required=True)
    native_symbol = validation.symbol(problems, "chain.native_symbol", msg.native_symbol)
    decimals = validation.int_range(problems, "chain.decimals", msg.decimals or DEFAULT_DECIMALS, low=1, high=255)
    explorer = validation.explorer_url(problems, "chain.explorer_url", msg.explorer_url)
    flags = validation.features(problems, "chain.features", list(msg.features))
    problems.raise_if_any()
    assert parsed is not None and name is not None and decimals is not None
    return ChainSpec(
        caip2=parsed[0],
        chain_numeric=parsed[1],
        name=name,
        native_symbol=native_symbol,
        decimals=decimals,
        explorer_url=explorer,
        enabled=msg.enabled if msg.HasField("enabled") else None,
        features=flags,
    )


def endpoint_spec(msg: pb.Endpoint) -> EndpointSpec:
    problems = Problems()
    parsed = validation.caip2(problems, "endpoint.caip2", msg.caip2)
    url = validation.rpc_url(problems, "endpoint.url", msg.url)
    priority = validation.int_range(problems, "endpoint.priority", msg.priority)
    weight = validation.int_range(problems, "endpoint.weight", msg.weight)
    rate_limit = validation.int_range(problems, "endpoint.rate_limit", msg.rate_limit)
    if msg.id < 0:
        problems.add("endpoint.id", "must not be negative (0 creates or matches by caip2 and url)")
    auth_type = AUTH_TYPES.get(msg.auth_type)
    if auth_type is None:
        problems.add("endpoint.auth_type", f"unknown EndpointAuthType {msg.auth_type}")
    label = pb.EndpointAuthType.Name(msg.auth_type) if auth_type is not None else "?"
    secret_ref = validation.secret_ref(
        problems, "endpoint.auth_secret_ref", msg.auth_secret_ref,
        needed=auth_type not in (None, AuthType.NONE), auth_label=label,
    )
    kind = NAMED_AUTH.get(auth_type) if auth_type is not None else None
    param = None
    if auth_type is not None:
        param = validation.auth_param(problems, "endpoint.auth_param", msg.auth_param, kind=kind, auth_label=label)
    if kind == "query" and param is not None and url is not None:
        validation.query_param_absent(problems, "endpoint.url", url, param)
    problems.raise_if_any()
    assert parsed is not None and url is not None and priority is not None and weight is not None
    assert auth_type is not None
    return EndpointSpec(
        caip2=parsed[0],
        url=url,
        priority=priority,
        weight=weight,
        auth_type=auth_type,
        auth_secret_ref=secret_ref,
        rate_limit=rate_limit or None,
        active_on_create=msg.active if msg.HasField("active") else True,
        endpoint_id=msg.id or None,
        auth_param=param,
    )


def endpoint_id(field: str, value: int) -> int:
    if value <= 0:
        problems = Problems()
        problems.add(field, "is required (a positive endpoint id)")
        problems.raise_if_any()
    return value


def health_report(req: pb.SetEndpointHealthRequest, *, now: datetime | None = None) -> HealthReport:
    problems = Problems()
    if req.id <= 0:
        problems.add("id", "is required (a positive endpoint id)")
    validation.int_range(problems, "latency_ms", req.latency_ms)
    validation.int_range(problems, "head_block", req.head_block, high=INT64_MAX)
    checked_at = req.checked_at.ToDatetime(tzinfo=UTC) if req.HasField("checked_at") else None
    if checked_at is not None and checked_at > (now or datetime.now(UTC)) + MAX_CLOCK_SKEW:
        problems.add("checked_at", "is in the future; send the probe's own time or leave it unset")
    problems.raise_if_any()
    return HealthReport(
        endpoint_id=req.id,
        active=req.active,
        latency_ms=req.latency_ms,
        head_block=req.head_block,
        last_error=validation.probe_error(req.last_error),
        checked_at=checked_at,
    )


def abi_spec(req: pb.PutAbiRequest, *, max_bytes: int) -> AbiSpec:
    problems = Problems()
    expected = validation.sha256_hex(problems, "sha256", req.sha256, required=False)
    source = validation.text(problems, "source", req.source, max_length=200)
    compiler = validation.text(problems, "compiler", req.compiler, max_length=200)
    contract_name = validation.text(problems, "contract_name", req.contract_name, max_length=200)
    standard = _standard(problems, "standard", req.standard)
    fragments: list[dict[str, object]] = []
    canonical = ""
    if not req.abi_json:
        problems.add("abi_json", "is required (a JSON array of ABI fragments)")
    elif len(req.abi_json.encode()) > max_bytes:
        problems.add("abi_json", f"is larger than {max_bytes} bytes")
    else:
        try:
            fragments = abi.parse(req.abi_json)
            canonical = abi.canonical_json(fragments)
        except abi.AbiError as exc:
            problems.add("abi_json", str(exc))
    digest = abi.sha256_of(canonical) if canonical else ""
    if canonical and expected is not None and expected != digest:
        problems.add("sha256", f"{expected} does not match the canonical JSON, whose SHA-256 is {digest}")
    problems.raise_if_any()
    return AbiSpec(
        sha256=digest,
        canonical_json=canonical,
        abi=fragments,
        size_bytes=len(canonical.encode()),
        source=source,
        compiler=compiler,
        contract_name=contract_name,
        standard=standard or abi.detect_standard(fragments),
    )


def contract_spec(msg: pb.Contract) -> ContractSpec:
    problems = Problems()
    parsed = validation.caip2(problems, "contract.caip2", msg.caip2)
    address = validation.address(problems, "contract.address", msg.address)
    impl = validation.address(problems, "contract.impl_address", msg.impl_address, required=False)
    name = validation.text(problems, "contract.name", msg.name, max_length=200)
    start_block = validation.int_range(problems, "contract.start_block", msg.start_block)
    abi_sha = validation.sha256_hex(problems, "contract.abi_sha256", msg.abi_sha256, required=False)
    standard = _standard(problems, "contract.standard", msg.standard)
    problems.raise_if_any()
    assert parsed is not None and address is not None
    return ContractSpec(
        caip2=parsed[0],
        address=address,
        name=name,
        start_block=start_block,
        abi_sha256=abi_sha,
        impl_address=impl,
        standard=standard,
    )


def contract_filter(req: pb.ListContractsRequest) -> tuple[ContractFilter, int | None, int]:
    """The filter, the id to continue after, and the page size of a ListContracts request."""
    problems = Problems()
    parsed = validation.caip2(problems, "caip2", req.caip2)
    standard = _standard(problems, "standard", req.standard)
    if len(req.addresses) > MAX_ADDRESS_FILTER:
        problems.add("addresses", f"at most {MAX_ADDRESS_FILTER} addresses per request")
    addresses = sorted(
        {a for i, raw in enumerate(req.addresses) if (a := validation.address(problems, f"addresses[{i}]", raw))}
    )
    size = validation.page_size(problems, "page.page_size", req.page.page_size)
    where = ContractFilter(caip2=req.caip2, standard=standard, addresses=addresses)
    after = paging.decode(problems, "page.page_token", req.page.page_token, "contracts", contract_page_params(where))
    problems.raise_if_any()
    assert parsed is not None
    return where, after, size


def contract_page_params(where: ContractFilter) -> list[object]:
    """What a ListContracts page token is bound to."""
    return [where.caip2, where.standard.value if where.standard else None, where.addresses]


def contract_key(req: pb.DeleteContractRequest) -> tuple[str, str]:
    problems = Problems()
    parsed = validation.caip2(problems, "caip2", req.caip2)
    address = validation.address(problems, "address", req.address)
    problems.raise_if_any()
    assert parsed is not None and address is not None
    return parsed[0], address


def sha256_only(field: str, value: str) -> str:
    problems = Problems()
    digest = validation.sha256_hex(problems, field, value)
    problems.raise_if_any()
    assert digest is not None
    return digest


def chain_page(req: pb.ListChainsRequest) -> tuple[int | None, int]:
    problems = Problems()
    size = validation.page_size(problems, "page.page_size", req.page.page_size)
    after = paging.decode(problems, "page.page_token", req.page.page_token, "chains", [req.include_disabled])
    problems.raise_if_any()
    return after, size


def gas_patch(req: pb.UpsertGasPolicyRequest) -> GasPolicyPatch:
    """The masked fields of a gas policy; an empty mask means every writable field."""
    problems = Problems()
    policy = req.gas_policy
    parsed = validation.caip2(problems, "gas_policy.caip2", policy.caip2)
    paths = list(dict.fromkeys(req.update_mask.paths)) or list(GAS_FIELDS)
    values = {}
    for path in paths:
        if path not in GAS_FIELDS:
            problems.add("update_mask", f"unknown or read-only path {path[:60]!r}; writable: {', '.join(GAS_FIELDS)}")
            continue
        raw: str = getattr(policy, path)
        field = f"gas_policy.{path}"
        if path == "multiplier":
            if not raw:
                problems.add(field, "is required when masked (a factor > 0, e.g. \"1.25\")")
                continue
            values[path] = validation.decimal_amount(problems, field, raw, positive=True)
        else:
            amount = validation.decimal_amount(problems, field, raw) if raw else None
            # A zero cap would forbid every transaction: "0" is how specs say "no cap", stored as absent.
            values[path] = None if path == "max_fee_gwei" and amount == 0 else amount
    problems.raise_if_any()
    assert parsed is not None
    return GasPolicyPatch(caip2=parsed[0], values=values)


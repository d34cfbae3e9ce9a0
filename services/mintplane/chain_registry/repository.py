"""The only module that speaks SQL to the `chain_registry` schema.

Each operation is one statement (two for SetEndpointHealth and a conflicting PutAbi), so a write is
atomic without explicit locking and a read costs one round trip however many endpoints or contracts a
chain has: related rows come back as arrays of records (`ARRAY(SELECT ROW(...))`), decoded by asyncpg in
binary. Statements that must tell "unknown chain" from "disabled chain" from "written" look the chain up
in a CTE and LEFT JOIN the write to it, instead of paying a second round trip.

Every round trip increments `chain_registry_db_round_trips_total{operation}`, which is both a production
metric and how tests prove GetChainConfig stays at a fixed number of queries.

Statements are assembled from fixed column-list fragments only; every value travels as a $n parameter.
"""
# ruff: noqa: S608

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter

from mintplane.chain_registry.errors import (
    AbiNotFound,
    AbiNotStored,
    ChainDisabled,
    ChainNotFound,
    EndpointNotFound,
    Invalid,
)
from mintplane.chain_registry.models import (
    GAS_FIELDS,
    AbiRow,
    AbiSpec,
    ChainConfig,
    ChainRow,
    ChainSpec,
    ContractFilter,
    ContractRow,
    ContractSpec,
    EndpointRow,
    EndpointSpec,
    GasPolicyPatch,
    GasPolicyRow,
    HealthReport,
    Page,
)
from mintplane.common.errors import AlreadyExists, FailedPrecondition, Unavailable
from mintplane.common.log import get_logger

log = get_logger(__name__)

DB_ROUND_TRIPS = Counter(
    "chain_registry_db_round_trips_total",
    "PostgreSQL round trips made by the chain-registry repository, by operation.",
    ["operation"],
)


def _chain_row(a: str) -> str:
    return (
        f"ROW({a}.id, {a}.caip2, {a}.chain_numeric, {a}.name, {a}.native_symbol, {a}.decimals, {a}.explorer_url, "
        f"{a}.enabled, {a}.features_json, {a}.created_at, {a}.updated_at, {a}.disabled_at)"
    )


def _endpoint_row(a: str, blocks_behind: str | None = None) -> str:
    return (
        f"ROW({a}.id, {a}.url, {a}.priority, {a}.weight, {a}.auth_type, {a}.auth_secret_ref, {a}.rate_limit, "
        f"{a}.active, {a}.latency_ms, {a}.head_block, {blocks_behind or f'{a}.blocks_behind'}, {a}.last_error, "
        f"{a}.checked_at, {a}.auth_param)"
    )


def _contract_row(a: str) -> str:
    return (
        f"ROW({a}.id, {a}.name, {a}.address, {a}.start_block, {a}.abi_sha256, {a}.impl_address, {a}.standard, "
        f"{a}.first_seen_at)"
    )


def _gas_row(a: str) -> str:
    return (
        f"ROW({a}.max_fee_gwei, {a}.priority_fee_gwei, {a}.multiplier, {a}.last_observed_base_fee_gwei, "
        f"{a}.updated_at)"
    )


def _abi_row(a: str) -> str:
    return (
        f"ROW({a}.sha256, {a}.size_bytes, {a}.source, {a}.compiler, {a}.contract_name, {a}.standard, {a}.s3_key, "
        f"{a}.created_at)"
    )


ENDPOINT_ORDER = "e.priority, e.weight DESC, e.id"

UPSERT_CHAIN = f"""
INSERT INTO chain_registry.chains AS c
       (caip2, chain_numeric, name, native_symbol, decimals, explorer_url, enabled, features_json, disabled_at)
VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::boolean, true), $8::jsonb,
        CASE WHEN COALESCE($7::boolean, true) THEN NULL ELSE now() END)
ON CONFLICT (caip2) DO UPDATE SET
    name = EXCLUDED.name,
    native_symbol = EXCLUDED.native_symbol,
    decimals = EXCLUDED.decimals,
    explorer_url = EXCLUDED.explorer_url,
    features_json = EXCLUDED.features_json,
    enabled = COALESCE($7::boolean, c.enabled),
    disabled_at = CASE WHEN COALESCE($7::boolean, c.enabled) THEN NULL ELSE COALESCE(c.disabled_at, now()) END,
    updated_at = CASE
        WHEN (c.name, c.native_symbol, c.decimals, c.explorer_url, c.features_json, c.enabled)
             IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.native_symbol, EXCLUDED.decimals, EXCLUDED.explorer_url,
                               EXCLUDED.features_json, COALESCE($7::boolean, c.enabled))
        THEN now() ELSE c.updated_at END
RETURNING {_chain_row("c")} AS chain, (c.xmax = 0) AS created
"""

GET_CHAIN = f"SELECT {_chain_row('c')} AS chain FROM chain_registry.chains c WHERE c.caip2 = $1"

LIST_CHAINS = f"""
SELECT (SELECT count(*) FROM chain_registry.chains c WHERE c.enabled OR $1) AS total,
       ARRAY(SELECT {_chain_row("c")} FROM chain_registry.chains c
              WHERE (c.enabled OR $1) AND c.chain_numeric > $2
              ORDER BY c.chain_numeric LIMIT $3) AS chains
"""

DISABLE_CHAIN = f"""
UPDATE chain_registry.chains c
   SET enabled = false,
       disabled_at = COALESCE(c.disabled_at, now()),
       updated_at = CASE WHEN c.enabled THEN now() ELSE c.updated_at END
 WHERE c.caip2 = $1
RETURNING {_chain_row("c")} AS chain
"""

UPSERT_ENDPOINT = f"""
WITH c AS (SELECT id, enabled FROM chain_registry.chains WHERE caip2 = $1),
up AS (
    INSERT INTO chain_registry.chain_endpoints AS e
           (chain_id, url, priority, weight, auth_type, auth_secret_ref, rate_limit, auth_param, active)
    SELECT c.id, $2, $3, $4, $5, $6, $7, $8, $9 FROM c WHERE c.enabled
    ON CONFLICT (chain_id, url) DO UPDATE SET
        priority = EXCLUDED.priority,
        weight = EXCLUDED.weight,
        auth_type = EXCLUDED.auth_type,
        auth_secret_ref = EXCLUDED.auth_secret_ref,
        rate_limit = EXCLUDED.rate_limit,
        auth_param = EXCLUDED.auth_param,
        updated_at = CASE
            WHEN (e.priority, e.weight, e.auth_type, e.auth_secret_ref, e.rate_limit, e.auth_param)
                 IS DISTINCT FROM (EXCLUDED.priority, EXCLUDED.weight, EXCLUDED.auth_type, EXCLUDED.auth_secret_ref,
                                   EXCLUDED.rate_limit, EXCLUDED.auth_param)
            THEN now() ELSE e.updated_at END
    RETURNING {_endpoint_row("e")} AS endpoint, (e.xmax = 0) AS created
)
SELECT c.enabled AS chain_enabled, up.endpoint, up.created FROM c LEFT JOIN up ON true
"""

UPDATE_ENDPOINT_BY_ID = f"""
WITH c AS (SELECT id, enabled FROM chain_registry.chains WHERE caip2 = $1),
cur AS (SELECT ch.caip2 FROM chain_registry.chain_endpoints e
          JOIN chain_registry.chains ch ON ch.id = e.chain_id WHERE e.id = $2),
up AS (
    UPDATE chain_registry.chain_endpoints e
       SET url = $3::text, priority = $4::integer, weight = $5::integer, auth_type = $6::text,
           auth_secret_ref = $7::text, rate_limit = $8::integer, auth_param = $9::text,
           updated_at = CASE
               WHEN (e.url, e.priority, e.weight, e.auth_type, e.auth_secret_ref, e.rate_limit, e.auth_param)
                    IS DISTINCT FROM ($3::text, $4::integer, $5::integer, $6::text, $7::text, $8::integer, $9::text)
               THEN now() ELSE e.updated_at END
      FROM c
     WHERE e.id = $2 AND e.chain_id = c.id AND c.enabled
    RETURNING {_endpoint_row("e")} AS endpoint
)
SELECT EXISTS (SELECT 1 FROM c) AS chain_exists, (SELECT enabled FROM c) AS chain_enabled,
       (SELECT caip2 FROM cur) AS current_caip2, (SELECT endpoint FROM up) AS endpoint
"""

LIST_ENDPOINTS = f"""
SELECT ARRAY(SELECT {_endpoint_row("e")} FROM chain_registry.chain_endpoints e
              WHERE e.chain_id = c.id AND (e.active OR $2) ORDER BY {ENDPOINT_ORDER}) AS endpoints
  FROM chain_registry.chains c WHERE c.caip2 = $1
"""

DELETE_ENDPOINT = "DELETE FROM chain_registry.chain_endpoints WHERE id = $1 RETURNING id"

# A late result (older than the stored one) changes nothing; the row's chain is returned either way.
RECORD_HEALTH = """
WITH up AS (
    UPDATE chain_registry.chain_endpoints e
       SET active = $2, latency_ms = $3, head_block = $4, last_error = $5,
           checked_at = COALESCE($6::timestamptz, now()), updated_at = now()
     WHERE e.id = $1 AND (e.checked_at IS NULL OR e.checked_at <= COALESCE($6::timestamptz, now()))
    RETURNING e.id
)
SELECT e.chain_id, EXISTS (SELECT 1 FROM up) AS applied FROM chain_registry.chain_endpoints e WHERE e.id = $1
"""

# Lag of every endpoint of the chain against the best head among probes no older than the window before
# the chain's newest probe; an endpoint whose own probe is outside the window has no lag (unknown).
RECOMPUTE_LAG = f"""
WITH latest AS (SELECT max(checked_at) AS at FROM chain_registry.chain_endpoints WHERE chain_id = $2),
best AS (
    SELECT max(x.head_block) AS head FROM chain_registry.chain_endpoints x, latest
     WHERE x.chain_id = $2 AND x.checked_at >= latest.at - $3::interval
),
lag AS (
    SELECT x.id, CASE WHEN x.head_block IS NULL OR x.checked_at < latest.at - $3::interval THEN NULL
                      ELSE GREATEST(best.head - x.head_block, 0) END AS behind
      FROM chain_registry.chain_endpoints x, latest, best
     WHERE x.chain_id = $2
),
changed AS (
    UPDATE chain_registry.chain_endpoints x SET blocks_behind = lag.behind
      FROM lag WHERE x.id = lag.id AND x.blocks_behind IS DISTINCT FROM lag.behind
    RETURNING x.id
)
SELECT c.caip2, {_endpoint_row("e", "(SELECT behind FROM lag WHERE lag.id = e.id)")} AS endpoint
  FROM chain_registry.chain_endpoints e JOIN chain_registry.chains c ON c.id = e.chain_id
 WHERE e.id = $1
"""

PUT_ABI = f"""
INSERT INTO chain_registry.abi_blobs AS a (sha256, size_bytes, source, compiler, contract_name, standard, abi_json)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (sha256) DO UPDATE SET
    source = COALESCE(a.source, EXCLUDED.source),
    compiler = COALESCE(a.compiler, EXCLUDED.compiler),
    contract_name = COALESCE(a.contract_name, EXCLUDED.contract_name),
    standard = COALESCE(a.standard, EXCLUDED.standard)
WHERE (a.source IS NULL AND EXCLUDED.source IS NOT NULL)
   OR (a.compiler IS NULL AND EXCLUDED.compiler IS NOT NULL)
   OR (a.contract_name IS NULL AND EXCLUDED.contract_name IS NOT NULL)
   OR (a.standard IS NULL AND EXCLUDED.standard IS NOT NULL)
RETURNING {_abi_row("a")} AS abi, (a.xmax = 0) AS created
"""

GET_ABI_META = f"SELECT {_abi_row('a')} AS abi FROM chain_registry.abi_blobs a WHERE a.sha256 = $1"
GET_ABI = f"SELECT {_abi_row('a')} AS abi, a.abi_json FROM chain_registry.abi_blobs a WHERE a.sha256 = $1"

UPSERT_CONTRACT = f"""
WITH c AS (SELECT id, enabled FROM chain_registry.chains WHERE caip2 = $1),
a AS (SELECT sha256, standard FROM chain_registry.abi_blobs WHERE sha256 = $5::varchar),
chk AS (
    SELECT c.id AS chain_pk, c.enabled,
           ($5::varchar IS NULL OR a.sha256 IS NOT NULL) AS abi_ok,
           a.standard AS abi_standard,
           ($7::text IS NULL OR a.standard IS NULL OR 'OTHER' IN (a.standard, $7::text) OR a.standard = $7::text)
               AS standard_ok
      FROM c LEFT JOIN a ON true
),
up AS (
    INSERT INTO chain_registry.chain_contracts AS k
           (chain_id, name, address, start_block, abi_sha256, impl_address, standard)
    SELECT chk.chain_pk, $2, $3, $4, $5, $6, COALESCE($7::text, chk.abi_standard)
      FROM chk WHERE chk.enabled AND chk.abi_ok AND chk.standard_ok
    ON CONFLICT (chain_id, address) DO UPDATE SET
        name = EXCLUDED.name,
        start_block = EXCLUDED.start_block,
        abi_sha256 = EXCLUDED.abi_sha256,
        impl_address = EXCLUDED.impl_address,
        standard = EXCLUDED.standard,
        updated_at = CASE
            WHEN (k.name, k.start_block, k.abi_sha256, k.impl_address, k.standard)
                 IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.start_block, EXCLUDED.abi_sha256, EXCLUDED.impl_address,
                                   EXCLUDED.standard)
            THEN now() ELSE k.updated_at END
    RETURNING {_contract_row("k")} AS contract, (k.xmax = 0) AS created
)
SELECT chk.enabled, chk.abi_ok, chk.abi_standard, chk.standard_ok, up.contract, up.created
  FROM chk LEFT JOIN up ON true
"""

_CONTRACT_FILTER = (
    "k.chain_id = c.id AND ($2::text IS NULL OR k.standard = $2::text) "
    "AND (cardinality($3::text[]) = 0 OR k.address = ANY($3::text[]))"
)
LIST_CONTRACTS = f"""
SELECT (SELECT count(*) FROM chain_registry.chain_contracts k WHERE {_CONTRACT_FILTER}) AS total,
       ARRAY(SELECT {_contract_row("k")} FROM chain_registry.chain_contracts k
              WHERE {_CONTRACT_FILTER} AND k.id > $4 ORDER BY k.id LIMIT $5) AS contracts
  FROM chain_registry.chains c WHERE c.caip2 = $1
"""

DELETE_CONTRACT = """
DELETE FROM chain_registry.chain_contracts k USING chain_registry.chains c
 WHERE k.chain_id = c.id AND c.caip2 = $1 AND k.address = $2
RETURNING k.id
"""

UPSERT_GAS_POLICY = f"""
WITH c AS (SELECT id, enabled FROM chain_registry.chains WHERE caip2 = $1),
up AS (
    INSERT INTO chain_registry.chain_gas_policy AS g
           (chain_id, max_fee_gwei, priority_fee_gwei, multiplier, last_observed_base_fee_gwei)
    SELECT c.id, $2::numeric, $3::numeric, COALESCE($4::numeric, 1), $5::numeric FROM c WHERE c.enabled
    ON CONFLICT (chain_id) DO UPDATE SET
        max_fee_gwei = CASE WHEN $6::boolean THEN EXCLUDED.max_fee_gwei ELSE g.max_fee_gwei END,
        priority_fee_gwei = CASE WHEN $7::boolean THEN EXCLUDED.priority_fee_gwei ELSE g.priority_fee_gwei END,
        multiplier = CASE WHEN $8::boolean THEN EXCLUDED.multiplier ELSE g.multiplier END,
        last_observed_base_fee_gwei = CASE WHEN $9::boolean THEN EXCLUDED.last_observed_base_fee_gwei
                                           ELSE g.last_observed_base_fee_gwei END,
        updated_at = now()
    RETURNING {_gas_row("g")} AS policy
)
SELECT c.enabled AS chain_enabled, up.policy FROM c LEFT JOIN up ON true
"""

GET_CHAIN_CONFIG = f"""
SELECT {_chain_row("c")} AS chain,
       CASE WHEN g.chain_id IS NULL THEN NULL ELSE {_gas_row("g")} END AS policy,
       ARRAY(SELECT {_endpoint_row("e")} FROM chain_registry.chain_endpoints e
              WHERE e.chain_id = c.id AND e.active ORDER BY {ENDPOINT_ORDER}) AS endpoints,
       ARRAY(SELECT {_contract_row("k")} FROM chain_registry.chain_contracts k
              WHERE k.chain_id = c.id ORDER BY k.id) AS contracts
  FROM chain_registry.chains c LEFT JOIN chain_registry.chain_gas_policy g ON g.chain_id = c.id
 WHERE c.caip2 = $1
"""

# Check constraints whose violation is the caller's mistake, with what to tell them. Input validation
# normally refuses these first; the constraints are the last line.
_CHECK_MESSAGES = {
    "chain_gas_policy_priority_fee_within_max_check": (
        "gas_policy: priority_fee_gwei would exceed max_fee_gwei; lower the priority fee or raise the cap"
    ),
    "chain_endpoints_auth_param_check": (
        "endpoint.auth_param: is required for API_KEY_HEADER and API_KEY_QUERY and must be empty otherwise"
    ),
    "chain_endpoints_auth_param_format_check": (
        "endpoint.auth_param: must be 1-64 letters, digits or !#$%&'*+.^_`|~-"
    ),
}


# The database is down, restarting or out of connections: the caller should retry, not give up.
# InternalClientError is how asyncpg reports a connection that died under a statement it was sending.
_UNAVAILABLE = (
    OSError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)


@contextlib.contextmanager
def _constraint_errors() -> Iterator[None]:
    """Turn constraint violations and outages into the status a caller can act on instead of INTERNAL."""
    try:
        yield
    except _UNAVAILABLE as exc:
        log.warning("registry database unavailable", error=type(exc).__name__)
        raise Unavailable("the chain registry's database is unavailable; retry shortly") from None
    except asyncpg.CheckViolationError as exc:
        name = exc.constraint_name or "a check constraint"
        raise Invalid([_CHECK_MESSAGES.get(name, f"the values violate {name}")]) from None
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(_unique_message(exc.constraint_name)) from None
    except asyncpg.ForeignKeyViolationError as exc:
        raise FailedPrecondition(f"a referenced row does not exist ({exc.constraint_name})") from None


def _unique_message(constraint: str | None) -> str:
    if constraint == "chain_endpoints_chain_id_url_key":
        return "endpoint.url: another endpoint of this chain already has this url"
    if constraint == "chains_chain_numeric_key":
        return "chain.chain_numeric: another chain already has this chain id"
    return f"already exists ({constraint})"


def _chain(record: Sequence[Any]) -> ChainRow:
    return ChainRow(*record)


def _endpoints(records: Sequence[Sequence[Any]] | None) -> list[EndpointRow]:
    return [EndpointRow(*r) for r in records or ()]


def _contracts(records: Sequence[Sequence[Any]] | None) -> list[ContractRow]:
    return [ContractRow(*r) for r in records or ()]


def _abi(record: Sequence[Any], body: list[dict[str, object]] | None) -> AbiRow:
    sha256, size_bytes, source, compiler, contract_name, standard, s3_key, created_at = record
    return AbiRow(sha256, size_bytes, source, compiler, contract_name, standard, s3_key, created_at, body)


class Repository:
    """PostgreSQL access of the registry over one asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool[Any], *, health_window: timedelta) -> None:
        self._pool = pool
        self._health_window = health_window

    async def _fetchrow(self, operation: str, query: str, *args: Any, conn: Any = None) -> Any:
        DB_ROUND_TRIPS.labels(operation).inc()
        with _constraint_errors():
            if conn is not None:
                return await conn.fetchrow(query, *args)
            return await self._pool.fetchrow(query, *args)

    # ------------------------------------------------------------------------------------------ chains

    async def upsert_chain(self, spec: ChainSpec) -> tuple[ChainRow, bool]:
        row = await self._fetchrow(
            "upsert_chain", UPSERT_CHAIN, spec.caip2, spec.chain_numeric, spec.name, spec.native_symbol,
            spec.decimals, spec.explorer_url, spec.enabled, spec.features,
        )
        return _chain(row["chain"]), bool(row["created"])

    async def get_chain(self, caip2: str) -> ChainRow:
        row = await self._fetchrow("get_chain", GET_CHAIN, caip2)
        if row is None:
            raise ChainNotFound(caip2)
        return _chain(row["chain"])

    async def list_chains(self, *, include_disabled: bool, after: int | None, limit: int) -> Page[ChainRow]:
        row = await self._fetchrow("list_chains", LIST_CHAINS, include_disabled, after or 0, limit + 1)
        chains = [_chain(r) for r in row["chains"] or ()]
        more = len(chains) > limit
        chains = chains[:limit]
        return Page(chains, chains[-1].chain_numeric if more else None, int(row["total"]))

    async def disable_chain(self, caip2: str) -> ChainRow:
        row = await self._fetchrow("disable_chain", DISABLE_CHAIN, caip2)
        if row is None:
            raise ChainNotFound(caip2)
        return _chain(row["chain"])

    # --------------------------------------------------------------------------------------- endpoints

    async def upsert_endpoint(self, spec: EndpointSpec) -> tuple[EndpointRow, bool]:
        args = (
            spec.priority, spec.weight, spec.auth_type.value, spec.auth_secret_ref, spec.rate_limit, spec.auth_param
        )
        if spec.endpoint_id is not None:
            row = await self._fetchrow(
                "update_endpoint", UPDATE_ENDPOINT_BY_ID, spec.caip2, spec.endpoint_id, spec.url, *args
            )
            if not row["chain_exists"]:
                raise ChainNotFound(spec.caip2)
            if row["current_caip2"] is None:
                raise EndpointNotFound(spec.endpoint_id)
            if row["current_caip2"] != spec.caip2:
                raise Invalid([
                    f"endpoint.caip2: endpoint {spec.endpoint_id} belongs to {row['current_caip2']}; "
                    "endpoints never move between chains (create a new one)"
                ])
            if not row["chain_enabled"]:
                raise ChainDisabled(spec.caip2)
            return EndpointRow(*row["endpoint"]), False
        row = await self._fetchrow(
            "upsert_endpoint", UPSERT_ENDPOINT, spec.caip2, spec.url, *args, spec.active_on_create
        )
        if row is None:
            raise ChainNotFound(spec.caip2)
        if row["endpoint"] is None:
            raise ChainDisabled(spec.caip2)
        return EndpointRow(*row["endpoint"]), bool(row["created"])

    async def list_endpoints(self, caip2: str, *, include_inactive: bool) -> list[EndpointRow]:
        row = await self._fetchrow("list_endpoints", LIST_ENDPOINTS, caip2, include_inactive)
        if row is None:
            raise ChainNotFound(caip2)
        return _endpoints(row["endpoints"])

    async def delete_endpoint(self, endpoint_id: int) -> bool:
        return await self._fetchrow("delete_endpoint", DELETE_ENDPOINT, endpoint_id) is not None

    async def set_endpoint_health(self, report: HealthReport) -> tuple[str, EndpointRow]:
        """Record a probe, then recompute the chain's lag figures; one transaction, two round trips."""
        async with self._pool.acquire() as conn, conn.transaction():
            recorded = await self._fetchrow(
                "record_health", RECORD_HEALTH, report.endpoint_id, report.active, report.latency_ms,
                report.head_block, report.last_error, report.checked_at, conn=conn,
            )
            if recorded is None:
                raise EndpointNotFound(report.endpoint_id)
            row = await self._fetchrow(
                "recompute_lag", RECOMPUTE_LAG, report.endpoint_id, recorded["chain_id"], self._health_window,
                conn=conn,
            )
        return row["caip2"], EndpointRow(*row["endpoint"])

    # -------------------------------------------------------------------------------------------- ABIs

    async def put_abi(self, spec: AbiSpec) -> tuple[AbiRow, bool]:
        standard = spec.standard.value if spec.standard else None
        row = await self._fetchrow(
            "put_abi", PUT_ABI, spec.sha256, spec.size_bytes, spec.source, spec.compiler, spec.contract_name,
            standard, spec.abi,
        )
        if row is not None:
            return _abi(row["abi"], None), bool(row["created"])
        existing = await self._fetchrow("get_abi_meta", GET_ABI_META, spec.sha256)
        return _abi(existing["abi"], None), False

    async def get_abi(self, sha256: str) -> AbiRow:
        row = await self._fetchrow("get_abi", GET_ABI, sha256)
        if row is None:
            raise AbiNotFound(sha256)
        return _abi(row["abi"], row["abi_json"])

    # --------------------------------------------------------------------------------------- contracts

    async def upsert_contract(self, spec: ContractSpec) -> tuple[ContractRow, bool]:
        standard = spec.standard.value if spec.standard else None
        row = await self._fetchrow(
            "upsert_contract", UPSERT_CONTRACT, spec.caip2, spec.name, spec.address, spec.start_block,
            spec.abi_sha256, spec.impl_address, standard,
        )
        if row is None:
            raise ChainNotFound(spec.caip2)
        if not row["enabled"]:
            raise ChainDisabled(spec.caip2)
        if not row["abi_ok"]:
            raise AbiNotStored(spec.abi_sha256 or "")
        if not row["standard_ok"]:
            raise Invalid([
                f"contract.standard: {standard} contradicts abi {spec.abi_sha256}, which implements "
                f"{row['abi_standard']}"
            ])
        return ContractRow(*row["contract"]), bool(row["created"])

    async def list_contracts(self, where: ContractFilter, *, after: int | None, limit: int) -> Page[ContractRow]:
        standard = where.standard.value if where.standard else None
        row = await self._fetchrow(
            "list_contracts", LIST_CONTRACTS, where.caip2, standard, where.addresses, after or 0, limit + 1
        )
        if row is None:
            raise ChainNotFound(where.caip2)
        contracts = _contracts(row["contracts"])
        more = len(contracts) > limit
        contracts = contracts[:limit]
        return Page(contracts, contracts[-1].id if more else None, int(row["total"]))

    async def delete_contract(self, caip2: str, address: str) -> bool:
        return await self._fetchrow("delete_contract", DELETE_CONTRACT, caip2, address) is not None

    # ------------------------------------------------------------------------------------- gas policy

    async def upsert_gas_policy(self, patch: GasPolicyPatch) -> GasPolicyRow:
        values = [patch.values.get(name) for name in GAS_FIELDS]
        masked = [name in patch.values for name in GAS_FIELDS]
        row = await self._fetchrow("upsert_gas_policy", UPSERT_GAS_POLICY, patch.caip2, *values, *masked)
        if row is None:
            raise ChainNotFound(patch.caip2)
        if row["policy"] is None:
            raise ChainDisabled(patch.caip2)
        return GasPolicyRow(*row["policy"])

    # ---------------------------------------------------------------------------------- chain config

    async def get_chain_config(self, caip2: str, *, include_disabled: bool = False) -> ChainConfig:
        """The chain with its active endpoints, gas policy and contracts: one round trip.

        A disabled chain is refused unless asked for: consumers that still hold it must stop, while a
        draining consumer (include_disabled) can still read where to finish.
        """
        row = await self._fetchrow("get_chain_config", GET_CHAIN_CONFIG, caip2)
        if row is None:
            raise ChainNotFound(caip2)
        chain = _chain(row["chain"])
        if not chain.enabled and not include_disabled:
            raise FailedPrecondition(f"chain {caip2} is disabled; set include_disabled to read its last configuration")
        policy = row["policy"]
        return ChainConfig(
            chain=chain,
            endpoints=_endpoints(row["endpoints"]),
            gas_policy=GasPolicyRow(*policy) if policy is not None else None,
            contracts=_contracts(row["contracts"]),
        )

"""The chain-registry service over gRPC, against the dev stack's real PostgreSQL.

The service is started in-process on an ephemeral port (the dev stack's copy may run older code) and
driven through the generated stub, the way the operator, indexer and orchestrator call it. Every test
works on chains of its own (random chain ids in 1.0e9..1.9e9) and the module deletes them, and the ABIs
it stored, at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
from alembic import command
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.chain_registry import messages
from mintplane.chain_registry.errors import ChainNotFound, Invalid
from mintplane.chain_registry.models import AuthType, EndpointSpec, HealthReport
from mintplane.chain_registry.repository import DB_ROUND_TRIPS, Repository
from mintplane.chain_registry.server import NEEDS, build_server
from mintplane.common.errors import Unavailable
from mintplane.common.migrate import (
    ATTR_CONNECTION,
    alembic_config,
    ensure_version_schema,
    sqlalchemy_url,
    upgrade_to_head,
)
from mintplane.common.postgres import create_pool
from mintplane.common.service import Resources
from mintplane.common.settings import InfraSettings, ServiceSettings

pytestmark = pytest.mark.integration

Code = grpc.StatusCode
ADDRESS_MIXED = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # valid EIP-55 checksum (anvil's first deploy)
ADDRESS_BAD_CHECKSUM = "0x5FbDB2315678afecb367f032d93F642f64180aA3"


@dataclass
class Registry:
    """The running service, a stub to it, and what the tests created (removed at module end)."""

    stub: chain_registry_pb2_grpc.ChainRegistryServiceAsyncStub
    pg: Any
    chains: list[str] = field(default_factory=list)
    abis: list[str] = field(default_factory=list)

    async def new_chain(self, **fields: Any) -> pb.Chain:
        numeric = 1_000_000_000 + uuid.uuid4().int % 900_000_000
        chain = pb.Chain(caip2=f"eip155:{numeric}", name=f"test chain {numeric}", native_symbol="ETH", **fields)
        self.chains.append(chain.caip2)
        response = await self.stub.UpsertChain(pb.UpsertChainRequest(chain=chain))
        assert response.created
        return response.chain

    async def new_endpoint(self, caip2: str, **fields: Any) -> pb.Endpoint:
        fields.setdefault("url", f"https://rpc-{uuid.uuid4().hex[:8]}.example.org/")
        response = await self.stub.UpsertEndpoint(pb.UpsertEndpointRequest(endpoint=pb.Endpoint(caip2=caip2, **fields)))
        return response.endpoint

    async def put_abi(self, fragments: list[dict[str, Any]], **fields: Any) -> pb.AbiBlob:
        response = await self.stub.PutAbi(pb.PutAbiRequest(abi_json=json.dumps(fragments), **fields))
        self.abis.append(response.abi.sha256)
        return response.abi

    async def rows(self, caip2: str) -> dict[str, list[Any]]:
        """Everything stored under a chain, to prove a refused request changed nothing."""
        chain = await self.pg.fetch("SELECT * FROM chain_registry.chains WHERE caip2 = $1", caip2)
        ids = [row["id"] for row in chain]
        return {
            "chain": [tuple(row.values()) for row in chain],
            "endpoints": [
                tuple(r.values())
                for r in await self.pg.fetch(
                    "SELECT * FROM chain_registry.chain_endpoints WHERE chain_id = ANY($1) ORDER BY id", ids
                )
            ],
            "contracts": [
                tuple(r.values())
                for r in await self.pg.fetch(
                    "SELECT * FROM chain_registry.chain_contracts WHERE chain_id = ANY($1) ORDER BY id", ids
                )
            ],
            "gas": [
                tuple(r.values())
                for r in await self.pg.fetch(
                    "SELECT * FROM chain_registry.chain_gas_policy WHERE chain_id = ANY($1)", ids
                )
            ],
        }


@pytest_asyncio.fixture(scope="module")
async def registry() -> AsyncIterator[Registry]:
    settings = ServiceSettings(grpc_port=0)
    upgrade_to_head(settings.pg_dsn.get_secret_value())
    resources = await Resources.open(settings, NEEDS, name="chain-registry-test")
    built = await build_server(settings, resources)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    state = Registry(stub=chain_registry_pb2_grpc.ChainRegistryServiceStub(channel), pg=resources.pg)
    try:
        yield state
    finally:
        await channel.close()
        await built.server.stop(None)
        async with resources.pg.acquire() as conn, conn.transaction():
            ids = [
                r["id"]
                for r in await conn.fetch("SELECT id FROM chain_registry.chains WHERE caip2 = ANY($1)", state.chains)
            ]
            await conn.execute("DELETE FROM chain_registry.chain_contracts WHERE chain_id = ANY($1)", ids)
            await conn.execute("DELETE FROM chain_registry.chains WHERE id = ANY($1)", ids)  # cascades
            await conn.execute(
                "DELETE FROM chain_registry.abi_blobs a WHERE a.sha256 = ANY($1) AND NOT EXISTS "
                "(SELECT 1 FROM chain_registry.chain_contracts k WHERE k.abi_sha256 = a.sha256)",
                state.abis,
            )
        await resources.close()


async def expect_error(call: Awaitable[Any], code: grpc.StatusCode, *fragments: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    details = info.value.details() or ""
    assert info.value.code() == code, f"{info.value.code()}: {details}"
    for fragment in fragments:
        assert fragment in details, details
    return details


def erc721_abi(tag: str = "") -> list[dict[str, Any]]:
    """A minimal ERC-721 ABI; `tag` adds a uniquely named function so each test stores its own blob."""
    address = {"type": "address", "indexed": True}
    fragments: list[dict[str, Any]] = [
        {
            "type": "event",
            "name": "Transfer",
            "anonymous": False,
            "inputs": [
                {"name": "from", **address},
                {"name": "to", **address},
                {"name": "tokenId", "type": "uint256", "indexed": True},
            ],
        },
        {
            "type": "function",
            "name": "ownerOf",
            "stateMutability": "view",
            "inputs": [{"name": "tokenId", "type": "uint256"}],
            "outputs": [{"name": "", "type": "address"}],
        },
    ]
    if tag:
        fragments.append(
            {"type": "function", "name": f"t_{tag}", "inputs": [], "outputs": [], "stateMutability": "pure"}
        )
    return fragments


def erc1155_abi(tag: str) -> list[dict[str, Any]]:
    param = [{"name": n, "type": "address", "indexed": True} for n in ("operator", "from", "to")]
    return [
        {
            "type": "event",
            "name": "TransferSingle",
            "inputs": [*param, {"name": "id", "type": "uint256"}, {"name": "value", "type": "uint256"}],
        },
        {
            "type": "event",
            "name": "TransferBatch",
            "inputs": [*param, {"name": "ids", "type": "uint256[]"}, {"name": "values", "type": "uint256[]"}],
        },
        {"type": "function", "name": f"t_{tag}", "inputs": [], "outputs": []},
    ]


def round_trips() -> dict[str, float]:
    return {
        sample.labels["operation"]: sample.value
        for metric in DB_ROUND_TRIPS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {op: after[op] - before.get(op, 0) for op in after if after[op] != before.get(op, 0)}


# ------------------------------------------------------------------------------------------------ chains


async def test_upsert_get_list_and_disable_a_chain(registry: Registry) -> None:
    chain = await registry.new_chain(
        decimals=18, explorer_url="https://explorer.example.org", features=["finalized_tag", "eip1559", "eip1559"]
    )
    assert chain.id > 0 and chain.enabled and chain.chain_numeric == int(chain.caip2.split(":")[1])
    assert list(chain.features) == ["eip1559", "finalized_tag"]  # deduplicated, sorted

    got = (await registry.stub.GetChain(pb.GetChainRequest(caip2=chain.caip2))).chain
    assert got == chain

    disabled = (await registry.stub.DisableChain(pb.DisableChainRequest(caip2=chain.caip2))).chain
    assert disabled.enabled is False and disabled.id == chain.id
    first_disabled_at = await registry.pg.fetchval(
        "SELECT disabled_at FROM chain_registry.chains WHERE caip2 = $1", chain.caip2
    )
    assert first_disabled_at is not None
    again = (await registry.stub.DisableChain(pb.DisableChainRequest(caip2=chain.caip2))).chain  # idempotent
    assert again == disabled
    assert (
        await registry.pg.fetchval("SELECT disabled_at FROM chain_registry.chains WHERE caip2 = $1", chain.caip2)
        == first_disabled_at
    ), "a second DisableChain must keep the original disabled_at (history)"

    async def listed(include_disabled: bool) -> list[str]:
        seen: list[str] = []
        token = ""
        while True:
            page = await registry.stub.ListChains(
                pb.ListChainsRequest(include_disabled=include_disabled, page=common_pb2.PageRequest(page_token=token))
            )
            seen += [c.caip2 for c in page.chains]
            token = page.page.next_page_token
            if not token:
                return seen

    assert chain.caip2 not in await listed(False)
    assert chain.caip2 in await listed(True)

    # Upserting without `enabled` keeps the chain disabled; enabled=true re-enables and clears disabled_at.
    kept = await registry.stub.UpsertChain(pb.UpsertChainRequest(chain=pb.Chain(caip2=chain.caip2, name="renamed")))
    assert kept.chain.enabled is False and kept.chain.name == "renamed" and not kept.created
    back = await registry.stub.UpsertChain(
        pb.UpsertChainRequest(chain=pb.Chain(caip2=chain.caip2, name="renamed", enabled=True))
    )
    assert back.chain.enabled
    assert (
        await registry.pg.fetchval("SELECT disabled_at FROM chain_registry.chains WHERE caip2 = $1", chain.caip2)
        is None
    )


async def test_upsert_chain_is_idempotent(registry: Registry) -> None:
    chain = await registry.new_chain(features=["eip1559"])
    request = pb.UpsertChainRequest(
        chain=pb.Chain(caip2=chain.caip2, name=chain.name, native_symbol="ETH", features=["eip1559"])
    )
    updated_before = await registry.pg.fetchval(
        "SELECT updated_at FROM chain_registry.chains WHERE caip2 = $1", chain.caip2
    )
    first = await registry.stub.UpsertChain(request)
    second = await registry.stub.UpsertChain(request)
    assert not first.created and not second.created
    assert first.chain == second.chain == chain
    rows = await registry.pg.fetch(
        "SELECT id, updated_at FROM chain_registry.chains WHERE caip2 = $1 OR chain_numeric = $2",
        chain.caip2,
        chain.chain_numeric,
    )
    assert [r["id"] for r in rows] == [chain.id]
    assert rows[0]["updated_at"] == updated_before, "an identical upsert is not a change"

    # chain_numeric may be given; it must agree with the caip2.
    numeric = pb.Chain(caip2=chain.caip2, chain_numeric=chain.chain_numeric, name=chain.name, native_symbol="ETH")
    same = await registry.stub.UpsertChain(pb.UpsertChainRequest(chain=numeric))
    assert same.chain.id == chain.id


async def test_list_chains_pages_in_chain_id_order(registry: Registry) -> None:
    mine = {(await registry.new_chain()).caip2 for _ in range(3)}
    numerics: list[int] = []
    token = ""
    pages = 0
    while True:
        page = await registry.stub.ListChains(
            pb.ListChainsRequest(include_disabled=True, page=common_pb2.PageRequest(page_size=2, page_token=token))
        )
        pages += 1
        assert len(page.chains) <= 2
        assert page.page.total_size >= 3
        numerics += [c.chain_numeric for c in page.chains]
        token = page.page.next_page_token
        if not token:
            break
    assert numerics == sorted(numerics) and len(numerics) == len(set(numerics))
    assert mine <= {f"eip155:{n}" for n in numerics}
    assert pages >= 2

    first = await registry.stub.ListChains(
        pb.ListChainsRequest(include_disabled=True, page=common_pb2.PageRequest(page_size=1))
    )
    await expect_error(
        registry.stub.ListChains(
            pb.ListChainsRequest(page=common_pb2.PageRequest(page_token=first.page.next_page_token))
        ),
        Code.INVALID_ARGUMENT,
        "page.page_token",
        "different request parameters",
    )
    await expect_error(
        registry.stub.ListChains(pb.ListChainsRequest(page=common_pb2.PageRequest(page_token="not-a-token"))),
        Code.INVALID_ARGUMENT,
        "page.page_token",
    )
    await expect_error(
        registry.stub.ListChains(pb.ListChainsRequest(page=common_pb2.PageRequest(page_size=-1))),
        Code.INVALID_ARGUMENT,
        "page.page_size",
    )


# --------------------------------------------------------------------------------------------- endpoints


async def test_chain_config_orders_endpoints_by_priority_then_weight(registry: Registry) -> None:
    chain = await registry.new_chain()
    low = await registry.new_endpoint(chain.caip2, url="https://b.example.org/rpc", priority=1, weight=5)
    preferred = await registry.new_endpoint(chain.caip2, url="https://c.example.org/rpc", priority=0, weight=1)
    heavy = await registry.new_endpoint(chain.caip2, url="wss://a.example.org/ws", priority=1, weight=10)
    expected = [preferred.id, heavy.id, low.id]

    config = await registry.stub.GetChainConfig(pb.GetChainConfigRequest(caip2=chain.caip2))
    assert [e.id for e in config.endpoints] == expected
    assert config.chain == chain and not config.HasField("gas_policy") and list(config.contracts) == []
    listed = await registry.stub.ListEndpoints(pb.ListEndpointsRequest(caip2=chain.caip2))
    assert [e.id for e in listed.endpoints] == expected
    assert all(e.active and e.caip2 == chain.caip2 for e in listed.endpoints)


async def test_inactive_endpoints_are_listed_but_not_served(registry: Registry) -> None:
    chain = await registry.new_chain()
    serving = await registry.new_endpoint(chain.caip2, priority=5)
    created_inactive = await registry.new_endpoint(chain.caip2, priority=0, active=False)
    probed_down = await registry.new_endpoint(chain.caip2, priority=1)
    assert serving.active and not created_inactive.active and probed_down.active  # unset `active` means true
    await registry.stub.SetEndpointHealth(
        pb.SetEndpointHealthRequest(id=probed_down.id, active=False, latency_ms=900, last_error="connection refused")
    )

    config = await registry.stub.GetChainConfig(pb.GetChainConfigRequest(caip2=chain.caip2))
    assert [e.id for e in config.endpoints] == [serving.id]
    active_only = await registry.stub.ListEndpoints(pb.ListEndpointsRequest(caip2=chain.caip2))
    assert [e.id for e in active_only.endpoints] == [serving.id]
    everything = await registry.stub.ListEndpoints(pb.ListEndpointsRequest(caip2=chain.caip2, include_inactive=True))
    assert [e.id for e in everything.endpoints] == [created_inactive.id, probed_down.id, serving.id]
    down = everything.endpoints[1]
    assert not down.active and not down.health.healthy and down.health.last_error == "connection refused"


async def test_set_endpoint_health_round_trip(registry: Registry) -> None:
    chain = await registry.new_chain()
    leader = await registry.new_endpoint(chain.caip2)
    laggard = await registry.new_endpoint(chain.caip2, priority=1)
    assert not leader.HasField("health"), "no probe yet"

    probed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    stamp = Timestamp()
    stamp.FromDatetime(probed_at)
    first = await registry.stub.SetEndpointHealth(
        pb.SetEndpointHealthRequest(id=leader.id, active=True, latency_ms=42, head_block=2**40, checked_at=stamp)
    )
    health = first.endpoint.health
    assert first.endpoint.active and first.endpoint.id == leader.id and first.endpoint.caip2 == chain.caip2
    assert (health.healthy, health.latency_ms, health.head_block, health.last_error) == (True, 42, 2**40, "")
    assert health.checked_at.ToDatetime(tzinfo=UTC) == probed_at and health.blocks_behind == 0

    lagging = await registry.stub.SetEndpointHealth(
        pb.SetEndpointHealthRequest(
            id=laggard.id,
            active=True,
            latency_ms=80,
            head_block=2**40 - 7,
            last_error="slow: https://eth.example.org/v3/0123456789abcdef0123456789abcdef?apikey=hunter2",
        )
    )
    assert lagging.endpoint.health.blocks_behind == 7
    assert not lagging.endpoint.health.healthy
    assert "0123456789abcdef" not in lagging.endpoint.health.last_error
    assert "hunter2" not in lagging.endpoint.health.last_error
    stored = await registry.pg.fetchrow(
        "SELECT latency_ms, head_block, blocks_behind, last_error, checked_at FROM chain_registry.chain_endpoints "
        "WHERE id = $1",
        laggard.id,
    )
    assert stored["head_block"] == 2**40 - 7 and stored["blocks_behind"] == 7 and stored["latency_ms"] == 80
    assert "[redacted]" in stored["last_error"] and stored["checked_at"] is not None

    # A result older than the stored one arrives late: ignored, the newer one is returned.
    old = Timestamp()
    old.FromDatetime(probed_at - timedelta(minutes=1))
    late = await registry.stub.SetEndpointHealth(
        pb.SetEndpointHealthRequest(id=leader.id, active=False, latency_ms=1, head_block=1, checked_at=old)
    )
    assert late.endpoint.active and late.endpoint.health.head_block == 2**40

    future = Timestamp()
    future.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    await expect_error(
        registry.stub.SetEndpointHealth(pb.SetEndpointHealthRequest(id=leader.id, active=True, checked_at=future)),
        Code.INVALID_ARGUMENT,
        "checked_at",
    )
    await expect_error(
        registry.stub.SetEndpointHealth(pb.SetEndpointHealthRequest(id=2_000_000_000, active=True)),
        Code.NOT_FOUND,
        "endpoint 2000000000",
    )


async def test_upsert_endpoint_by_url_is_idempotent_and_by_id_updates(registry: Registry) -> None:
    chain = await registry.new_chain()
    other = await registry.new_chain()
    request = pb.UpsertEndpointRequest(
        endpoint=pb.Endpoint(caip2=chain.caip2, url="HTTPS://Node.Example.org:8545/rpc", priority=2, weight=3)
    )
    first = await registry.stub.UpsertEndpoint(request)
    second = await registry.stub.UpsertEndpoint(request)
    assert first.created and not second.created and first.endpoint == second.endpoint
    assert first.endpoint.url == "https://node.example.org:8545/rpc"  # scheme and host lowercased
    count = await registry.pg.fetchval(
        "SELECT count(*) FROM chain_registry.chain_endpoints e JOIN chain_registry.chains c ON c.id = e.chain_id "
        "WHERE c.caip2 = $1",
        chain.caip2,
    )
    assert count == 1

    # `active` only applies on creation: an update never overrides what the probe decided.
    update = pb.Endpoint(
        id=first.endpoint.id,
        caip2=chain.caip2,
        url="wss://node.example.org/ws",
        priority=0,
        weight=9,
        active=False,
        auth_type=pb.ENDPOINT_AUTH_TYPE_API_KEY_PATH,
        auth_secret_ref="secret://mintplane/rpc-keys/node",
    )
    moved = await registry.stub.UpsertEndpoint(pb.UpsertEndpointRequest(endpoint=update))
    assert not moved.created and moved.endpoint.id == first.endpoint.id
    assert (moved.endpoint.url, moved.endpoint.priority, moved.endpoint.weight) == ("wss://node.example.org/ws", 0, 9)
    assert moved.endpoint.active and moved.endpoint.auth_secret_ref == "secret://mintplane/rpc-keys/node"

    await expect_error(
        registry.stub.UpsertEndpoint(
            pb.UpsertEndpointRequest(
                endpoint=pb.Endpoint(id=first.endpoint.id, caip2=other.caip2, url="https://x.example.org")
            )
        ),
        Code.INVALID_ARGUMENT,
        f"belongs to {chain.caip2}",
    )
    await expect_error(
        registry.stub.UpsertEndpoint(
            pb.UpsertEndpointRequest(
                endpoint=pb.Endpoint(id=2_000_000_000, caip2=chain.caip2, url="https://x.example.org")
            )
        ),
        Code.NOT_FOUND,
        "endpoint 2000000000",
    )
    taken = await registry.new_endpoint(chain.caip2, url="https://taken.example.org/")
    await expect_error(
        registry.stub.UpsertEndpoint(
            pb.UpsertEndpointRequest(endpoint=pb.Endpoint(id=first.endpoint.id, caip2=chain.caip2, url=taken.url))
        ),
        Code.ALREADY_EXISTS,
        "endpoint.url",
    )

    assert (await registry.stub.DeleteEndpoint(pb.DeleteEndpointRequest(id=taken.id))).deleted
    assert not (await registry.stub.DeleteEndpoint(pb.DeleteEndpointRequest(id=taken.id))).deleted  # idempotent
    remaining = await registry.stub.ListEndpoints(pb.ListEndpointsRequest(caip2=chain.caip2, include_inactive=True))
    assert [e.id for e in remaining.endpoints] == [first.endpoint.id]


async def test_header_and_query_endpoints_carry_their_param_to_consumers(registry: Registry) -> None:
    chain = await registry.new_chain()
    header = await registry.new_endpoint(
        chain.caip2, url="https://h.example.org/rpc", priority=0, auth_type=pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER,
        auth_secret_ref="secret://mintplane/rpc-keys/header", auth_param="X-Api-Key",
    )
    query = await registry.new_endpoint(
        chain.caip2, url="https://q.example.org/v1?network=mainnet", priority=1,
        auth_type=pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, auth_secret_ref="secret://mintplane/rpc-keys/query",
        auth_param="apikey",
    )
    plain = await registry.new_endpoint(chain.caip2, url="https://p.example.org/", priority=2)
    assert (header.auth_type, header.auth_param) == (pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER, "X-Api-Key")
    assert (query.auth_type, query.auth_param) == (pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "apikey")
    assert query.url == "https://q.example.org/v1?network=mainnet" and plain.auth_param == ""

    config = await registry.stub.GetChainConfig(pb.GetChainConfigRequest(caip2=chain.caip2))
    assert [(e.id, e.auth_type, e.auth_param, e.auth_secret_ref) for e in config.endpoints] == [
        (header.id, pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER, "X-Api-Key", "secret://mintplane/rpc-keys/header"),
        (query.id, pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "apikey", "secret://mintplane/rpc-keys/query"),
        (plain.id, pb.ENDPOINT_AUTH_TYPE_NONE, "", ""),
    ]
    listed = await registry.stub.ListEndpoints(pb.ListEndpointsRequest(caip2=chain.caip2))
    assert list(listed.endpoints) == list(config.endpoints)
    stored = await registry.pg.fetch(
        "SELECT id, auth_type, auth_param FROM chain_registry.chain_endpoints WHERE id = ANY($1) ORDER BY id",
        [header.id, query.id, plain.id],
    )
    assert [tuple(r.values()) for r in stored] == [
        (header.id, "api_key_header", "X-Api-Key"), (query.id, "api_key_query", "apikey"), (plain.id, "none", None)
    ]

    # Renaming the parameter is a configuration change (updated_at moves); the same request again is not.
    async def updated_at() -> datetime:
        stamp = await registry.pg.fetchval(
            "SELECT updated_at FROM chain_registry.chain_endpoints WHERE id = $1", query.id
        )
        assert isinstance(stamp, datetime)
        return stamp

    before = await updated_at()
    renamed = pb.Endpoint(
        caip2=chain.caip2, url=query.url, priority=1, auth_type=pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY,
        auth_secret_ref="secret://mintplane/rpc-keys/query", auth_param="api_key",
    )
    first = await registry.stub.UpsertEndpoint(pb.UpsertEndpointRequest(endpoint=renamed))
    changed = await updated_at()
    again = await registry.stub.UpsertEndpoint(pb.UpsertEndpointRequest(endpoint=renamed))
    unchanged = await updated_at()
    assert not first.created and first.endpoint.id == query.id and first.endpoint.auth_param == "api_key"
    assert again.endpoint == first.endpoint and changed > before and unchanged == changed

    # Switching to an auth type without a name (by id) clears it; a probe still updates the row.
    bearer = await registry.stub.UpsertEndpoint(pb.UpsertEndpointRequest(endpoint=pb.Endpoint(
        id=header.id, caip2=chain.caip2, url=header.url, auth_type=pb.ENDPOINT_AUTH_TYPE_BEARER,
        auth_secret_ref="secret://mintplane/rpc-keys/header",
    )))
    assert (bearer.endpoint.auth_type, bearer.endpoint.auth_param) == (pb.ENDPOINT_AUTH_TYPE_BEARER, "")
    assert await registry.pg.fetchval(
        "SELECT auth_param FROM chain_registry.chain_endpoints WHERE id = $1", header.id
    ) is None
    health = await registry.stub.SetEndpointHealth(
        pb.SetEndpointHealthRequest(id=query.id, active=True, latency_ms=12, head_block=99)
    )
    assert health.endpoint.auth_param == "api_key" and health.endpoint.health.head_block == 99


async def test_database_refuses_auth_param_mismatches_written_by_hand(registry: Registry) -> None:
    """The constraints of revision 0006 hold even for writes that bypass the service."""
    chain = await registry.new_chain()
    chain_pk = await registry.pg.fetchval("SELECT id FROM chain_registry.chains WHERE caip2 = $1", chain.caip2)
    insert = (
        "INSERT INTO chain_registry.chain_endpoints (chain_id, url, auth_type, auth_secret_ref, auth_param) "
        "VALUES ($1, $2, $3, 'secret://ns/rpc/key', $4)"
    )
    for auth_type, param, constraint in [
        ("api_key_query", None, "chain_endpoints_auth_param_check"),
        ("api_key_header", None, "chain_endpoints_auth_param_check"),
        ("bearer", "x-api-key", "chain_endpoints_auth_param_check"),
        ("api_key_header", "bad name", "chain_endpoints_auth_param_format_check"),
        ("api_key_cookie", None, "chain_endpoints_auth_type_check"),
    ]:
        with pytest.raises(asyncpg.CheckViolationError) as info:
            await registry.pg.execute(insert, chain_pk, f"https://{uuid.uuid4().hex[:8]}.example.org", auth_type, param)
        assert info.value.constraint_name == constraint, (auth_type, param)
    await registry.pg.execute(insert, chain_pk, "https://ok.example.org", "api_key_query", "apikey")
    assert len((await registry.rows(chain.caip2))["endpoints"]) == 1


def _migrate_to(dsn: str, target: str) -> None:
    """Bring a database to one revision (not the heads), the way upgrade_to_head hands Alembic a connection."""
    cfg = alembic_config()
    engine = create_engine(sqlalchemy_url(dsn), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            ensure_version_schema(conn)
            cfg.attributes[ATTR_CONNECTION] = conn
            command.upgrade(cfg, target)
    finally:
        engine.dispose()


async def test_header_endpoints_stored_before_0006_keep_working_until_upserted() -> None:
    """Revision 0006 on a database that already has API_KEY_HEADER rows without a header name.

    Their probes (and the lag recomputation that rewrites every endpoint of the chain) must keep working;
    rows written after the revision must name their header or query parameter.
    """
    dsn = ServiceSettings().pg_dsn.get_secret_value()
    name = f"mintplane_authparam_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    fresh = make_url(dsn).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(_migrate_to, fresh, "0002")
        setup = await asyncpg.connect(fresh)
        try:
            chain_pk = await setup.fetchval(
                "INSERT INTO chain_registry.chains (caip2, chain_numeric, name) VALUES ('eip155:5', 5, 'old') "
                "RETURNING id"
            )
            legacy, peer = [
                await setup.fetchval(
                    "INSERT INTO chain_registry.chain_endpoints (chain_id, url, auth_type, auth_secret_ref) "
                    "VALUES ($1, $2, $3, $4) RETURNING id",
                    chain_pk, url, auth_type, ref,
                )
                for url, auth_type, ref in [
                    ("https://legacy.example.org", "api_key_header", "secret://ns/rpc/key"),
                    ("https://peer.example.org", "none", None),
                ]
            ]
        finally:
            await setup.close()
        assert "0006" in await asyncio.to_thread(upgrade_to_head, fresh)

        pool = await create_pool(InfraSettings(pg_dsn=fresh), application_name="authparam-legacy-test")
        try:
            repository = Repository(pool, health_window=timedelta(minutes=5))
            for endpoint_id, head in [(peer, 100), (legacy, 90)]:  # each probe rewrites the other's lag
                await repository.set_endpoint_health(
                    HealthReport(endpoint_id, True, 10, head, None, datetime.now(UTC))
                )
            rows = {r.id: r for r in await repository.list_endpoints("eip155:5", include_inactive=True)}
            assert (rows[legacy].auth_type, rows[legacy].auth_param, rows[legacy].blocks_behind) == (
                "api_key_header", None, 10
            )
            assert messages.endpoint("eip155:5", rows[legacy]).auth_param == ""

            # New rows get no exemption; the legacy row takes its name on its next upsert.
            new_header = EndpointSpec(
                caip2="eip155:5", url="https://new.example.org", priority=0, weight=1,
                auth_type=AuthType.API_KEY_HEADER, auth_secret_ref="secret://ns/rpc/key", rate_limit=None,
                active_on_create=True,
            )
            with pytest.raises(Invalid) as refused:
                await repository.upsert_endpoint(new_header)
            assert "endpoint.auth_param: is required for API_KEY_HEADER" in refused.value.problems[0]
            named = dataclasses.replace(new_header, url="https://legacy.example.org", auth_param="x-api-key")
            upserted, created = await repository.upsert_endpoint(named)
            assert (upserted.id, created, upserted.auth_param) == (legacy, False, "x-api-key")
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize(
    ("fields", "fragment", "secret"),
    [
        ({"url": "https://alice:s3cretpw@rpc.example.org"}, "must not carry credentials", "s3cretpw"),
        (
            {"url": "https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef"},
            "looks like an API key",
            "0123456789abcdef",
        ),
        ({"url": "https://rpc.example.org/?apikey=hunter2"}, "looks like a credential", "hunter2"),
        ({"url": "ftp://rpc.example.org"}, "scheme 'ftp' is not allowed", None),
        ({"url": "https://rpc.example.org#frag"}, "#fragment", None),
        ({"url": "not a url"}, "whitespace", None),
        ({"auth_type": pb.ENDPOINT_AUTH_TYPE_BEARER}, "auth_secret_ref: is required when auth_type is", None),
        ({"auth_secret_ref": "secret://ns/name/key"}, "must be empty when auth_type is", None),
        (
            {"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER, "auth_secret_ref": "sk_live_abcdef0123456789"},
            "never the credential itself",
            "sk_live_abcdef0123456789",
        ),
        ({"priority": -1}, "endpoint.priority: must be between 0", None),
        ({"weight": -5}, "endpoint.weight: must be between 0", None),
        ({"rate_limit": -1}, "endpoint.rate_limit", None),
        ({"auth_type": 99}, "unknown EndpointAuthType 99", None),
        (
            {"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER, "auth_secret_ref": "secret://ns/rpc/key"},
            "endpoint.auth_param: is required when auth_type is ENDPOINT_AUTH_TYPE_API_KEY_HEADER",
            None,
        ),
        (
            {"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "auth_secret_ref": "secret://ns/rpc/key"},
            "endpoint.auth_param: is required when auth_type is ENDPOINT_AUTH_TYPE_API_KEY_QUERY",
            None,
        ),
        (
            {"auth_type": pb.ENDPOINT_AUTH_TYPE_BEARER, "auth_secret_ref": "secret://ns/rpc/key", "auth_param": "x"},
            "endpoint.auth_param: must be empty when auth_type is ENDPOINT_AUTH_TYPE_BEARER",
            None,
        ),
        ({"auth_param": "apikey"}, "endpoint.auth_param: must be empty", None),
        (
            {"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER, "auth_secret_ref": "secret://ns/rpc/key",
             "auth_param": "x-api-key: v"},
            "endpoint.auth_param: must be 1-64 letters",
            None,
        ),
        (
            {"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER, "auth_secret_ref": "secret://ns/rpc/key",
             "auth_param": "Host"},
            "a header HTTP itself uses",
            None,
        ),
        (
            {"auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY, "auth_secret_ref": "secret://ns/rpc/key",
             "auth_param": "sk_live_abcdef0123456789"},
            "looks like an API key",
            "sk_live_abcdef0123456789",
        ),
        (
            {"url": "https://rpc.example.org/?network=main", "auth_type": pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY,
             "auth_secret_ref": "secret://ns/rpc/key", "auth_param": "network"},
            "endpoint.url: already has the query parameter 'network'",
            None,
        ),
    ],
)
async def test_invalid_endpoints_are_refused_and_store_nothing(
    registry: Registry, fields: dict[str, Any], fragment: str, secret: str | None
) -> None:
    chain = await registry.new_chain()
    before = await registry.rows(chain.caip2)
    endpoint = pb.Endpoint(caip2=chain.caip2, **{"url": "https://rpc.example.org/", **fields})
    details = await expect_error(
        registry.stub.UpsertEndpoint(pb.UpsertEndpointRequest(endpoint=endpoint)), Code.INVALID_ARGUMENT, fragment
    )
    if secret:
        assert secret not in details, "the refusal must not echo the credential"
    assert await registry.rows(chain.caip2) == before


async def test_writes_under_a_disabled_chain(registry: Registry) -> None:
    chain = await registry.new_chain()
    endpoint = await registry.new_endpoint(chain.caip2)
    spare = await registry.new_endpoint(chain.caip2, priority=3)
    await registry.stub.DisableChain(pb.DisableChainRequest(caip2=chain.caip2))
    before = await registry.rows(chain.caip2)

    await expect_error(
        registry.stub.UpsertEndpoint(
            pb.UpsertEndpointRequest(endpoint=pb.Endpoint(caip2=chain.caip2, url="https://n.example.org"))
        ),
        Code.FAILED_PRECONDITION,
        "is disabled",
    )
    await expect_error(
        registry.stub.UpsertContract(
            pb.UpsertContractRequest(contract=pb.Contract(caip2=chain.caip2, address=ADDRESS_MIXED))
        ),
        Code.FAILED_PRECONDITION,
        "is disabled",
    )
    await expect_error(
        registry.stub.UpsertGasPolicy(
            pb.UpsertGasPolicyRequest(gas_policy=pb.GasPolicy(caip2=chain.caip2, multiplier="2"))
        ),
        Code.FAILED_PRECONDITION,
        "is disabled",
    )
    await expect_error(
        registry.stub.GetChainConfig(pb.GetChainConfigRequest(caip2=chain.caip2)),
        Code.FAILED_PRECONDITION,
        "is disabled",
        "include_disabled",
    )
    assert await registry.rows(chain.caip2) == before

    # Clean-up and observations still work; a draining consumer can still read the configuration.
    health = await registry.stub.SetEndpointHealth(
        pb.SetEndpointHealthRequest(id=endpoint.id, active=True, head_block=3)
    )
    assert health.endpoint.health.head_block == 3
    assert (await registry.stub.DeleteEndpoint(pb.DeleteEndpointRequest(id=spare.id))).deleted
    draining = await registry.stub.GetChainConfig(pb.GetChainConfigRequest(caip2=chain.caip2, include_disabled=True))
    assert not draining.chain.enabled and [e.id for e in draining.endpoints] == [endpoint.id]


async def test_unknown_chain_is_not_found_and_malformed_is_invalid(registry: Registry) -> None:
    unknown = "eip155:1999999999"
    calls = [
        registry.stub.GetChain(pb.GetChainRequest(caip2=unknown)),
        registry.stub.DisableChain(pb.DisableChainRequest(caip2=unknown)),
        registry.stub.ListEndpoints(pb.ListEndpointsRequest(caip2=unknown)),
        registry.stub.ListContracts(pb.ListContractsRequest(caip2=unknown)),
        registry.stub.GetChainConfig(pb.GetChainConfigRequest(caip2=unknown)),
        registry.stub.UpsertEndpoint(
            pb.UpsertEndpointRequest(endpoint=pb.Endpoint(caip2=unknown, url="https://a.example.org"))
        ),
        registry.stub.UpsertContract(
            pb.UpsertContractRequest(contract=pb.Contract(caip2=unknown, address=ADDRESS_MIXED))
        ),
        registry.stub.UpsertGasPolicy(
            pb.UpsertGasPolicyRequest(gas_policy=pb.GasPolicy(caip2=unknown, multiplier="1"))
        ),
    ]
    for call in calls:
        await expect_error(call, Code.NOT_FOUND, f"chain {unknown} is not registered")
    assert not (
        await registry.stub.DeleteContract(pb.DeleteContractRequest(caip2=unknown, address=ADDRESS_MIXED))
    ).deleted

    for bad, fragment in [
        ("", "is required"),
        ("ethereum", "not a CAIP-2 chain id"),
        ("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "only eip155 chains"),
        ("eip155:01", "without leading zeros"),
        ("eip155:4294967296", "above 2147483647"),
    ]:
        await expect_error(registry.stub.GetChain(pb.GetChainRequest(caip2=bad)), Code.INVALID_ARGUMENT, fragment)


@pytest.mark.parametrize(
    ("chain", "fragments"),
    [
        ({"caip2": "eip155:77", "chain_numeric": 78, "name": "x"}, ["chain.chain_numeric: 78 contradicts"]),
        ({"caip2": "eip155:77", "name": " "}, ["chain.name: is required"]),
        ({"caip2": "eip155:77", "name": "x", "explorer_url": "ftp://e"}, ["chain.explorer_url"]),
        ({"caip2": "eip155:77", "name": "x", "features": ["Bad Flag"]}, ["chain.features[0]"]),
        ({"caip2": "eip155:77", "name": "x", "decimals": 300}, ["chain.decimals"]),
        ({"caip2": "bitcoin", "name": ""}, ["chain.caip2", "chain.name"]),  # every problem at once
    ],
)
async def test_invalid_chains_are_refused_and_store_nothing(
    registry: Registry, chain: dict[str, Any], fragments: list[str]
) -> None:
    before = await registry.rows("eip155:77")
    await expect_error(
        registry.stub.UpsertChain(pb.UpsertChainRequest(chain=pb.Chain(**chain))), Code.INVALID_ARGUMENT, *fragments
    )
    assert await registry.rows("eip155:77") == before


# ------------------------------------------------------------------------------------------------- ABIs


async def test_abi_is_content_addressed(registry: Registry) -> None:
    tag = uuid.uuid4().hex[:12]
    fragments = erc721_abi(tag)
    stored = await registry.put_abi(fragments, source="solc", compiler="solc 0.8.30", contract_name="Genesis")
    canonical = json.dumps(fragments, sort_keys=True, separators=(",", ":"))
    assert stored.sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    assert stored.size_bytes == len(canonical.encode()) and stored.abi_json == ""  # body omitted on PutAbi
    assert stored.standard == common_pb2.TOKEN_STANDARD_ERC721  # detected from the Transfer event

    # Same ABI, other key order and whitespace: same hash, nothing new stored.
    shuffled = [dict(reversed(list(f.items()))) for f in fragments]
    same = await registry.stub.PutAbi(
        pb.PutAbiRequest(abi_json=json.dumps(shuffled, indent=4), sha256=stored.sha256.upper())
    )
    assert same.abi.sha256 == stored.sha256 and not same.created
    assert same.abi.source == "solc"  # first writer's metadata is kept
    count = await registry.pg.fetchval("SELECT count(*) FROM chain_registry.abi_blobs WHERE sha256 = $1", stored.sha256)
    assert count == 1

    different = await registry.put_abi(erc1155_abi(tag))
    assert different.sha256 != stored.sha256 and different.standard == common_pb2.TOKEN_STANDARD_ERC1155

    got = (await registry.stub.GetAbi(pb.GetAbiRequest(sha256=stored.sha256))).abi
    assert got.abi_json == canonical and hashlib.sha256(got.abi_json.encode()).hexdigest() == stored.sha256
    assert (got.compiler, got.contract_name) == ("solc 0.8.30", "Genesis")

    other = erc721_abi(uuid.uuid4().hex[:12])
    other_sha = hashlib.sha256(json.dumps(other, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    await expect_error(
        registry.stub.PutAbi(pb.PutAbiRequest(abi_json=json.dumps(other), sha256="ab" * 32)),
        Code.INVALID_ARGUMENT,
        "sha256",
        other_sha,
    )
    assert await registry.pg.fetchval("SELECT count(*) FROM chain_registry.abi_blobs WHERE sha256 = $1", other_sha) == 0
    for bad, fragment in [
        ("", "abi_json: is required"),
        ("{not json", "not valid JSON"),
        ('{"type": "event"}', "JSON array"),
        ('[{"type": "event", "name": "X", "inputs": [{"name": "a"}]}]', 'string "type"'),
        ('[{"type": "banana"}]', "unknown type"),
        ('[{"type": "function", "name": "f", "inputs": [], "gas": 1.5}]', "non-integer number"),
    ]:
        await expect_error(registry.stub.PutAbi(pb.PutAbiRequest(abi_json=bad)), Code.INVALID_ARGUMENT, fragment)
    await expect_error(registry.stub.GetAbi(pb.GetAbiRequest(sha256="cd" * 32)), Code.NOT_FOUND, "is not stored")
    await expect_error(registry.stub.GetAbi(pb.GetAbiRequest(sha256="xyz")), Code.INVALID_ARGUMENT, "hex SHA-256")


# -------------------------------------------------------------------------------------------- contracts


async def test_contract_upsert_lowercases_and_checks_its_abi(registry: Registry) -> None:
    chain = await registry.new_chain()
    abi = await registry.put_abi(erc721_abi(uuid.uuid4().hex[:12]))
    request = pb.UpsertContractRequest(
        contract=pb.Contract(
            caip2=chain.caip2, address=ADDRESS_MIXED, name="Genesis", start_block=12, abi_sha256=abi.sha256
        )
    )
    first = await registry.stub.UpsertContract(request)
    assert first.created and first.contract.address == ADDRESS_MIXED.lower()
    assert first.contract.standard == common_pb2.TOKEN_STANDARD_ERC721  # inherited from the ABI
    assert first.contract.first_seen_at.seconds > 0

    upper = pb.Contract(
        caip2=chain.caip2,
        address="0x" + ADDRESS_MIXED[2:].upper(),
        name="Genesis",
        start_block=20,
        abi_sha256=abi.sha256,
        standard=common_pb2.TOKEN_STANDARD_ERC721,
    )
    second = await registry.stub.UpsertContract(pb.UpsertContractRequest(contract=upper))
    assert not second.created and second.contract.id == first.contract.id and second.contract.start_block == 20
    assert second.contract.first_seen_at == first.contract.first_seen_at
    stored = await registry.pg.fetch(
        "SELECT address FROM chain_registry.chain_contracts k JOIN chain_registry.chains c ON c.id = k.chain_id "
        "WHERE c.caip2 = $1",
        chain.caip2,
    )
    assert [r["address"] for r in stored] == [ADDRESS_MIXED.lower()]

    before = await registry.rows(chain.caip2)
    await expect_error(
        registry.stub.UpsertContract(
            pb.UpsertContractRequest(contract=pb.Contract(caip2=chain.caip2, address=ADDRESS_BAD_CHECKSUM))
        ),
        Code.INVALID_ARGUMENT,
        "invalid EIP-55 checksum",
    )
    await expect_error(
        registry.stub.UpsertContract(
            pb.UpsertContractRequest(contract=pb.Contract(caip2=chain.caip2, address="0x1234"))
        ),
        Code.INVALID_ARGUMENT,
        "not a 0x-prefixed 20-byte hex address",
    )
    await expect_error(
        registry.stub.UpsertContract(
            pb.UpsertContractRequest(contract=pb.Contract(caip2=chain.caip2, address="0x" + "0" * 40))
        ),
        Code.INVALID_ARGUMENT,
        "zero address",
    )
    await expect_error(
        registry.stub.UpsertContract(
            pb.UpsertContractRequest(
                contract=pb.Contract(caip2=chain.caip2, address=ADDRESS_MIXED, abi_sha256="ef" * 32)
            )
        ),
        Code.FAILED_PRECONDITION,
        "never stored",
        "PutAbi",
    )
    await expect_error(
        registry.stub.UpsertContract(
            pb.UpsertContractRequest(
                contract=pb.Contract(
                    caip2=chain.caip2,
                    address=ADDRESS_MIXED,
                    abi_sha256=abi.sha256,
                    standard=common_pb2.TOKEN_STANDARD_ERC1155,
                )
            )
        ),
        Code.INVALID_ARGUMENT,
        "contradicts abi",
    )
    await expect_error(
        registry.stub.UpsertContract(
            pb.UpsertContractRequest(contract=pb.Contract(caip2=chain.caip2, address=ADDRESS_MIXED, start_block=2**40))
        ),
        Code.INVALID_ARGUMENT,
        "contract.start_block",
    )
    assert await registry.rows(chain.caip2) == before

    assert (
        await registry.stub.DeleteContract(pb.DeleteContractRequest(caip2=chain.caip2, address=ADDRESS_MIXED))
    ).deleted
    assert not (
        await registry.stub.DeleteContract(pb.DeleteContractRequest(caip2=chain.caip2, address=ADDRESS_MIXED))
    ).deleted


async def test_list_contracts_filters_and_pages(registry: Registry) -> None:
    chain = await registry.new_chain()
    erc721 = await registry.put_abi(erc721_abi(uuid.uuid4().hex[:12]))
    erc1155 = await registry.put_abi(erc1155_abi(uuid.uuid4().hex[:12]))
    addresses = ["0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8] for _ in range(5)]
    for index, address in enumerate(addresses):
        abi = erc721 if index % 2 == 0 else erc1155
        await registry.stub.UpsertContract(
            pb.UpsertContractRequest(contract=pb.Contract(caip2=chain.caip2, address=address, abi_sha256=abi.sha256))
        )

    seen: list[str] = []
    token = ""
    while True:
        page = await registry.stub.ListContracts(
            pb.ListContractsRequest(
                caip2=chain.caip2,
                standard=common_pb2.TOKEN_STANDARD_ERC721,
                page=common_pb2.PageRequest(page_size=2, page_token=token),
            )
        )
        assert page.page.total_size == 3
        seen += [c.address for c in page.contracts]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == [addresses[0], addresses[2], addresses[4]]

    picked = await registry.stub.ListContracts(
        pb.ListContractsRequest(caip2=chain.caip2, addresses=[addresses[1].upper().replace("0X", "0x"), addresses[3]])
    )
    assert [c.address for c in picked.contracts] == [addresses[1], addresses[3]]

    first = await registry.stub.ListContracts(
        pb.ListContractsRequest(
            caip2=chain.caip2, standard=common_pb2.TOKEN_STANDARD_ERC721, page=common_pb2.PageRequest(page_size=1)
        )
    )
    await expect_error(
        registry.stub.ListContracts(
            pb.ListContractsRequest(
                caip2=chain.caip2, page=common_pb2.PageRequest(page_token=first.page.next_page_token)
            )
        ),
        Code.INVALID_ARGUMENT,
        "page.page_token",
        "different request parameters",
    )


# ------------------------------------------------------------------------------------------- gas policy


async def test_gas_policy_field_mask_partial_update(registry: Registry) -> None:
    chain = await registry.new_chain()
    created = await registry.stub.UpsertGasPolicy(
        pb.UpsertGasPolicyRequest(
            gas_policy=pb.GasPolicy(caip2=chain.caip2, max_fee_gwei="150", priority_fee_gwei="1.50", multiplier="2")
        )
    )
    policy = created.gas_policy
    assert (policy.max_fee_gwei, policy.priority_fee_gwei, policy.multiplier) == ("150", "1.5", "2")
    assert policy.last_observed_base_fee_gwei == ""

    observed = await registry.stub.UpsertGasPolicy(
        pb.UpsertGasPolicyRequest(
            gas_policy=pb.GasPolicy(caip2=chain.caip2, last_observed_base_fee_gwei="12.345678901", max_fee_gwei="1"),
            update_mask=FieldMask(paths=["last_observed_base_fee_gwei"]),
        )
    )
    after = observed.gas_policy
    assert after.last_observed_base_fee_gwei == "12.345678901"
    assert (after.max_fee_gwei, after.priority_fee_gwei, after.multiplier) == ("150", "1.5", "2"), "unmasked kept"
    assert after.updated_at.ToNanoseconds() >= policy.updated_at.ToNanoseconds()

    cleared = await registry.stub.UpsertGasPolicy(
        pb.UpsertGasPolicyRequest(
            gas_policy=pb.GasPolicy(caip2=chain.caip2), update_mask=FieldMask(paths=["max_fee_gwei"])
        )
    )
    assert cleared.gas_policy.max_fee_gwei == "" and cleared.gas_policy.priority_fee_gwei == "1.5"

    config = await registry.stub.GetChainConfig(pb.GetChainConfigRequest(caip2=chain.caip2))
    assert config.gas_policy == cleared.gas_policy

    before = await registry.rows(chain.caip2)
    for mask, values, code, fragment in [
        (["gas_limit"], {}, Code.INVALID_ARGUMENT, "unknown or read-only path 'gas_limit'"),
        (["caip2"], {}, Code.INVALID_ARGUMENT, "read-only"),
        (["multiplier"], {"multiplier": "0"}, Code.INVALID_ARGUMENT, "greater than 0"),
        (["multiplier"], {}, Code.INVALID_ARGUMENT, "multiplier: is required"),
        (["max_fee_gwei"], {"max_fee_gwei": "-1"}, Code.INVALID_ARGUMENT, "non-negative decimal"),
        (["max_fee_gwei"], {"max_fee_gwei": "1.0000000001"}, Code.INVALID_ARGUMENT, "9 decimal places"),
        (
            ["max_fee_gwei", "priority_fee_gwei"],
            {"max_fee_gwei": "1", "priority_fee_gwei": "2"},
            Code.INVALID_ARGUMENT,
            "priority_fee_gwei would exceed max_fee_gwei",
        ),
    ]:
        await expect_error(
            registry.stub.UpsertGasPolicy(
                pb.UpsertGasPolicyRequest(
                    gas_policy=pb.GasPolicy(caip2=chain.caip2, **values), update_mask=FieldMask(paths=mask)
                )
            ),
            code,
            fragment,
        )
    assert await registry.rows(chain.caip2) == before


# ------------------------------------------------------------------------------------------ chain config


async def test_get_chain_config_is_one_query_whatever_the_size(registry: Registry) -> None:
    chain = await registry.new_chain()
    abi = await registry.put_abi(erc721_abi(uuid.uuid4().hex[:12]))
    await registry.stub.UpsertGasPolicy(
        pb.UpsertGasPolicyRequest(
            gas_policy=pb.GasPolicy(caip2=chain.caip2, max_fee_gwei="100", priority_fee_gwei="2", multiplier="1.5")
        )
    )

    async def measured() -> tuple[pb.GetChainConfigResponse, dict[str, float]]:
        before = round_trips()
        config = await registry.stub.GetChainConfig(pb.GetChainConfigRequest(caip2=chain.caip2))
        return config, delta(before, round_trips())

    await registry.new_endpoint(chain.caip2)
    small, small_queries = await measured()
    assert len(small.endpoints) == 1 and small_queries == {"get_chain_config": 1}

    for priority in range(4):
        await registry.new_endpoint(chain.caip2, priority=priority + 1, weight=priority)
    for index in range(50):
        await registry.stub.UpsertContract(
            pb.UpsertContractRequest(
                contract=pb.Contract(
                    caip2=chain.caip2,
                    address="0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8],
                    start_block=index,
                    abi_sha256=abi.sha256,
                    name=f"c{index}",
                )
            )
        )
    large, large_queries = await measured()
    assert len(large.endpoints) == 5 and len(large.contracts) == 50
    assert large_queries == {"get_chain_config": 1}, "GetChainConfig must not issue a query per endpoint/contract"
    assert [c.start_block for c in large.contracts] == list(range(50))
    assert all(c.abi_sha256 == abi.sha256 and c.standard == common_pb2.TOKEN_STANDARD_ERC721 for c in large.contracts)
    assert large.gas_policy.multiplier == "1.5" and large.gas_policy.caip2 == chain.caip2
    assert [e.priority for e in large.endpoints] == [0, 1, 2, 3, 4]


async def test_a_lost_database_connection_is_unavailable_not_internal(registry: Registry) -> None:
    """A dropped connection (failover, restart) must tell callers to retry: UNAVAILABLE, never INTERNAL."""
    settings = ServiceSettings(grpc_port=0, pg_pool_min=1, pg_pool_max=1)
    resources = await Resources.open(settings, NEEDS, name="chain-registry-outage-test")
    try:
        repository = Repository(resources.pg, health_window=timedelta(minutes=5))
        unknown = "eip155:1999999998"
        with pytest.raises(ChainNotFound):  # prepares the statement on the pool's only connection
            await repository.get_chain(unknown)
        pid = await resources.pg.fetchval("SELECT pg_backend_pid()")
        # The connection must die while a call is using it: an idle dead connection is replaced by the pool on
        # acquire (fine for callers, but then nothing is tested). So the call is held on a table lock first.
        async with registry.pg.acquire() as locker, locker.transaction():
            await locker.execute("LOCK TABLE chain_registry.chains IN ACCESS EXCLUSIVE MODE")
            call = asyncio.create_task(repository.get_chain(unknown))
            for _ in range(200):
                if await registry.pg.fetchval(
                        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid):
                    break
                await asyncio.sleep(0.02)
            assert await registry.pg.fetchval("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(Unavailable, match="retry"):
                await call
        # The pool replaces the dead connection: calls are served again (as a retrying caller would see).
        outcome: Exception | None = None
        for _ in range(50):
            await asyncio.sleep(0.1)
            try:
                await repository.get_chain(unknown)
            except (Unavailable, ChainNotFound) as exc:
                outcome = exc
                if isinstance(exc, ChainNotFound):
                    break
        assert isinstance(outcome, ChainNotFound), outcome
    finally:
        await resources.close()

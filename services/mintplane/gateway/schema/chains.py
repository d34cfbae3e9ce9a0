"""Chains: the networks the platform knows (from the chain registry), with the best-known head block.

Endpoints themselves (URLs, credentials' whereabouts) stay private to the platform: only the head their
probes reported is shown.
"""

# strawberry.field/mutation(...) with keyword arguments are typed as Any (they double as field specs).
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import re

import strawberry

from mintplane.api.chain_registry.v1 import chain_registry_pb2
from mintplane.gateway.context import Info
from mintplane.gateway.errors import BadUserInput, NotFound
from mintplane.gateway.pagination import page_window, paginate
from mintplane.gateway.schema.common import PageInfo, or_none

_CAIP2 = re.compile(r"^eip155:[1-9][0-9]{0,18}$")
INT32_MAX = 2**31 - 1


def check_caip2(value: str, what: str = "chain") -> str:
    """A CAIP-2 EVM chain id (`eip155:<n>`), or BAD_USER_INPUT naming the argument."""
    text = value.strip()
    if not _CAIP2.match(text):
        raise BadUserInput(f"`{what}` must be a CAIP-2 chain id like eip155:1.")
    return text


@strawberry.type(description="A blockchain network served by the platform.")
class Chain:
    caip2: str = strawberry.field(description="CAIP-2 id, e.g. eip155:1.")
    chain_id: int | None = strawberry.field(
        description="Numeric EIP-155 chain id; null when it does not fit a GraphQL Int (use caip2)."
    )
    name: str
    native_symbol: str = strawberry.field(description="Native currency symbol, e.g. ETH.")
    decimals: int = strawberry.field(description="Decimals of the native currency.")
    explorer_url: str | None = strawberry.field(description="Block explorer base URL.")
    enabled: bool = strawberry.field(description="Disabled chains are kept for history but not indexed.")
    features: list[str] = strawberry.field(description="Feature flags, e.g. eip1559, eip1271.")

    @classmethod
    def from_proto(cls, chain: chain_registry_pb2.Chain) -> Chain:
        numeric = chain.chain_numeric
        return cls(
            caip2=chain.caip2, chain_id=numeric if 0 < numeric <= INT32_MAX else None, name=chain.name,
            native_symbol=chain.native_symbol, decimals=chain.decimals, explorer_url=or_none(chain.explorer_url),
            enabled=chain.enabled, features=list(chain.features),
        )

    @strawberry.field(description=(
        "Best-known head block: the highest block a healthy RPC endpoint reported at its last probe (any "
        "probed endpoint when none is healthy); null before the first probe."
    ))
    async def head(self, info: Info) -> int | None:
        head = await info.context.loaders.chain_heads.load(self.caip2)
        return head if head is not None and head <= INT32_MAX else None


@strawberry.type
class ChainEdge:
    cursor: str
    node: Chain


@strawberry.type(description="A page of chains (Relay cursor connection), by numeric chain id.")
class ChainConnection:
    edges: list[ChainEdge]
    page_info: PageInfo
    total_count: int


async def load_chain(info: Info, caip2: str) -> Chain | None:
    chain = await info.context.loaders.chains.load(caip2)
    return Chain.from_proto(chain) if chain is not None else None


@strawberry.type
class ChainQuery:
    @strawberry.field(description="Chains by numeric chain id; disabled ones only with includeDisabled.")
    async def chains(
        self, info: Info, include_disabled: bool = False, first: int = 20, after: str | None = None
    ) -> ChainConnection:
        window = page_window(first, after)
        reply = await info.context.clients.chain_registry.list_chains(
            chain_registry_pb2.ListChainsRequest(include_disabled=include_disabled, page=window.request)
        )
        for chain in reply.chains:
            info.context.loaders.chains.prime(chain.caip2, chain)
        cut = paginate(window, list(reply.chains), reply.page)
        return ChainConnection(
            edges=[ChainEdge(cursor=cursor, node=Chain.from_proto(chain)) for cursor, chain in cut.items],
            page_info=PageInfo.of(cut), total_count=cut.total_count,
        )

    @strawberry.field(description="One chain by CAIP-2 id; null (with a NOT_FOUND error) when unknown.")
    async def chain(self, info: Info, caip2: str) -> Chain | None:
        chain = await load_chain(info, check_caip2(caip2, "caip2"))
        if chain is None:
            raise NotFound("No such chain.")
        return chain

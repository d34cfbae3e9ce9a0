"""gRPC servicer of the chain-registry service: thin, it parses requests, calls the repository and builds
responses. Rules live in `requests`/`validation`, SQL in `repository`, wire conventions in `messages`."""

from __future__ import annotations

from typing import Any

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.api.chain_registry.v1 import chain_registry_pb2_grpc
from mintplane.api.common.v1 import common_pb2
from mintplane.chain_registry import messages, paging, requests
from mintplane.chain_registry.repository import Repository
from mintplane.common.log import get_logger

Context = Any  # grpc.aio.ServicerContext; the handlers never touch it (errors travel as DomainError)
# One line per configuration change: who changed the registry is in the caller's logs, what changed is here.
log = get_logger(__name__)


def _page(scope: str, params: object, after: int | None, total: int) -> common_pb2.PageResponse:
    token = paging.encode(scope, params, after) if after is not None else ""
    return common_pb2.PageResponse(next_page_token=token, total_size=total)


class ChainRegistryServicer(chain_registry_pb2_grpc.ChainRegistryServiceServicer):
    def __init__(self, repository: Repository, *, max_abi_bytes: int) -> None:
        self._repo = repository
        self._max_abi_bytes = max_abi_bytes

    # chains

    async def UpsertChain(self, request: pb.UpsertChainRequest, context: Context) -> pb.UpsertChainResponse:
        row, created = await self._repo.upsert_chain(requests.chain_spec(request.chain))
        log.info("chain upserted", caip2=row.caip2, chain_id=row.id, created=created, enabled=row.enabled)
        return pb.UpsertChainResponse(chain=messages.chain(row), created=created)

    async def GetChain(self, request: pb.GetChainRequest, context: Context) -> pb.GetChainResponse:
        row = await self._repo.get_chain(requests.caip2_only("caip2", request.caip2))
        return pb.GetChainResponse(chain=messages.chain(row))

    async def ListChains(self, request: pb.ListChainsRequest, context: Context) -> pb.ListChainsResponse:
        after, size = requests.chain_page(request)
        page = await self._repo.list_chains(include_disabled=request.include_disabled, after=after, limit=size)
        return pb.ListChainsResponse(
            chains=[messages.chain(row) for row in page.items],
            page=_page("chains", [request.include_disabled], page.next_after, page.total),
        )

    async def DisableChain(self, request: pb.DisableChainRequest, context: Context) -> pb.DisableChainResponse:
        row = await self._repo.disable_chain(requests.caip2_only("caip2", request.caip2))
        log.info("chain disabled", caip2=row.caip2, chain_id=row.id)
        return pb.DisableChainResponse(chain=messages.chain(row))

    # endpoints

    async def UpsertEndpoint(self, request: pb.UpsertEndpointRequest, context: Context) -> pb.UpsertEndpointResponse:
        spec = requests.endpoint_spec(request.endpoint)
        row, created = await self._repo.upsert_endpoint(spec)
        log.info("endpoint upserted", caip2=spec.caip2, endpoint_id=row.id, url=row.url, created=created)
        return pb.UpsertEndpointResponse(endpoint=messages.endpoint(spec.caip2, row), created=created)

    async def ListEndpoints(self, request: pb.ListEndpointsRequest, context: Context) -> pb.ListEndpointsResponse:
        caip2 = requests.caip2_only("caip2", request.caip2)
        rows = await self._repo.list_endpoints(caip2, include_inactive=request.include_inactive)
        return pb.ListEndpointsResponse(endpoints=[messages.endpoint(caip2, row) for row in rows])

    async def DeleteEndpoint(self, request: pb.DeleteEndpointRequest, context: Context) -> pb.DeleteEndpointResponse:
        deleted = await self._repo.delete_endpoint(requests.endpoint_id("id", request.id))
        log.info("endpoint deleted", endpoint_id=request.id, deleted=deleted)
        return pb.DeleteEndpointResponse(deleted=deleted)

    async def SetEndpointHealth(
        self, request: pb.SetEndpointHealthRequest, context: Context
    ) -> pb.SetEndpointHealthResponse:
        caip2, row = await self._repo.set_endpoint_health(requests.health_report(request))
        return pb.SetEndpointHealthResponse(endpoint=messages.endpoint(caip2, row))

    # ABIs

    async def PutAbi(self, request: pb.PutAbiRequest, context: Context) -> pb.PutAbiResponse:
        row, created = await self._repo.put_abi(requests.abi_spec(request, max_bytes=self._max_abi_bytes))
        if created:
            log.info("abi stored", sha256=row.sha256, size_bytes=row.size_bytes, standard=row.standard)
        return pb.PutAbiResponse(abi=messages.abi_blob(row), created=created)

    async def GetAbi(self, request: pb.GetAbiRequest, context: Context) -> pb.GetAbiResponse:
        row = await self._repo.get_abi(requests.sha256_only("sha256", request.sha256))
        return pb.GetAbiResponse(abi=messages.abi_blob(row))

    # contracts

    async def UpsertContract(self, request: pb.UpsertContractRequest, context: Context) -> pb.UpsertContractResponse:
        spec = requests.contract_spec(request.contract)
        row, created = await self._repo.upsert_contract(spec)
        log.info("contract upserted", caip2=spec.caip2, address=row.address, contract_id=row.id, created=created)
        return pb.UpsertContractResponse(contract=messages.contract(spec.caip2, row), created=created)

    async def ListContracts(self, request: pb.ListContractsRequest, context: Context) -> pb.ListContractsResponse:
        where, after, size = requests.contract_filter(request)
        page = await self._repo.list_contracts(where, after=after, limit=size)
        return pb.ListContractsResponse(
            contracts=[messages.contract(where.caip2, row) for row in page.items],
            page=_page("contracts", requests.contract_page_params(where), page.next_after, page.total),
        )

    async def DeleteContract(self, request: pb.DeleteContractRequest, context: Context) -> pb.DeleteContractResponse:
        caip2, address = requests.contract_key(request)
        deleted = await self._repo.delete_contract(caip2, address)
        log.info("contract deleted", caip2=caip2, address=address, deleted=deleted)
        return pb.DeleteContractResponse(deleted=deleted)

    # gas policy

    async def UpsertGasPolicy(
        self, request: pb.UpsertGasPolicyRequest, context: Context
    ) -> pb.UpsertGasPolicyResponse:
        patch = requests.gas_patch(request)
        row = await self._repo.upsert_gas_policy(patch)
        # Consumers report the base fee often; only policy changes are worth an info line.
        observed_only = set(patch.values) == {"last_observed_base_fee_gwei"}
        emit = log.debug if observed_only else log.info
        emit("gas policy upserted", caip2=patch.caip2, fields=sorted(patch.values))
        return pb.UpsertGasPolicyResponse(gas_policy=messages.gas_policy(patch.caip2, row))

    # consumers

    async def GetChainConfig(self, request: pb.GetChainConfigRequest, context: Context) -> pb.GetChainConfigResponse:
        caip2 = requests.caip2_only("caip2", request.caip2)
        config = await self._repo.get_chain_config(caip2, include_disabled=request.include_disabled)
        return messages.chain_config(config)

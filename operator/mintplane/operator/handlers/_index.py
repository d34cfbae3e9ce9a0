"""Reading Kopf indexes, which Kopf passes to every handler as keyword arguments named after the index.

A key maps to a store of values (one per object that produced the key). The handlers' declared
signatures stay those of Kopf's callback protocols; the indexes are read from ``**kwargs`` here, typed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar, cast

import kopf

from mintplane.operator.specs import ChainRef
from mintplane.operator.views import DeploymentView, EndpointView, JobView

V = TypeVar("V")


def one(index: kopf.Index[Any, V], key: Hashable) -> V | None:
    store = index.get(key)
    return next(iter(store), None) if store else None


def every(index: kopf.Index[Any, V], key: Hashable) -> list[V]:
    store = index.get(key)
    return list(store) if store else []


def chain_of(kwargs: Mapping[str, Any], namespace: str, chain_name: Any) -> ChainRef | None:
    return one(cast(kopf.Index[Any, ChainRef], kwargs["chain_refs"]), (namespace, chain_name))


def endpoints_of(kwargs: Mapping[str, Any], namespace: str, chain_name: Any) -> list[EndpointView]:
    return every(cast(kopf.Index[Any, EndpointView], kwargs["endpoint_views"]), (namespace, chain_name))


def deployment_of(kwargs: Mapping[str, Any], namespace: str, chain_name: str) -> DeploymentView | None:
    return one(cast(kopf.Index[Any, DeploymentView], kwargs["indexer_deployments"]), (namespace, chain_name))


def job_of(kwargs: Mapping[str, Any], namespace: str, job_name: str) -> JobView | None:
    return one(cast(kopf.Index[Any, JobView], kwargs["backfill_jobs"]), (namespace, job_name))


async def registered_chain(kwargs: Mapping[str, Any], namespace: str, chain_name: Any,
                           *, wait: float = 5.0) -> ChainRef | None:
    """The referenced Chain, waiting briefly for its first registry sync when both were applied together.

    Without the wait, a ChainEndpoint handled a moment before its Chain fails its first registry write and
    backs off; with it, the common ``kubectl apply -f chain-and-endpoints.yaml`` converges in one pass.
    """
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        chain = chain_of(kwargs, namespace, chain_name)
        if chain is None or chain.registered or asyncio.get_running_loop().time() >= deadline:
            return chain
        await asyncio.sleep(0.1)

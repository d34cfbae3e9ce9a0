"""Endpoint choice, failover, cool-downs and rate limits, on a fake clock (no network)."""

from __future__ import annotations

import random

import pytest

from mintplane.common.jsonrpc import EndpointFailure
from mintplane.indexer.endpoints import (
    AllEndpointsDown,
    EndpointPool,
    EndpointSpec,
    RateLimitedClient,
    TokenBucket,
    display_url,
)
from mintplane.indexer.registry import EndpointConfig, resolve_endpoint, secret_env_name

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pool(clock: Clock, *specs: EndpointSpec) -> EndpointPool:
    pool = EndpointPool(session=None, timeout=1.0, base_cooldown=1.0, max_cooldown=8.0,  # type: ignore[arg-type]
                        rng=random.Random(1), clock=clock)
    pool.configure(specs)
    return pool


def test_priority_first_weight_shares_and_standby_last() -> None:
    clock = Clock()
    pool = _pool(clock, EndpointSpec(1, "http://a", 0, 3, 0), EndpointSpec(2, "http://b", 0, 1, 0),
                 EndpointSpec(3, "http://standby", 0, 0, 0), EndpointSpec(4, "http://backup", 1, 5, 0))
    firsts = [pool.candidates()[0].spec.id for _ in range(400)]
    assert set(firsts) == {1, 2} and 240 < firsts.count(1) < 360  # about 3:1
    assert [e.spec.id for e in pool.candidates()][2:] == [3, 4]


async def test_fails_over_cools_down_and_reports_all_down() -> None:
    clock = Clock()
    pool = _pool(clock, EndpointSpec(1, "http://user:secret@a:1/key", 0, 1, 0), EndpointSpec(2, "http://b:2", 1, 1, 0))
    down = {1}
    seen: list[int] = []

    async def work(client: RateLimitedClient) -> int:
        seen.append(client.endpoint_id)
        if client.endpoint_id in down:
            raise EndpointFailure("connection refused")
        return client.endpoint_id

    assert await pool.run(work) == 2 and seen == [1, 2]
    assert "secret" not in pool.last_error and pool.last_error.startswith("http://a:1/key")
    seen.clear()
    assert await pool.run(work) == 2 and seen == [2]  # the failed endpoint is cooling down
    clock.now += 2.0
    down = {1, 2}
    with pytest.raises(AllEndpointsDown) as error:
        await pool.run(work)
    assert 0 < error.value.retry_after <= 1.5
    clock.now += 20
    down = set()
    assert await pool.run(work) == 1  # back to the preferred endpoint once its cool-down passed


async def test_token_bucket_limits_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, clock=clock)
    assert bucket.delay_for(10) == 0
    await bucket.acquire(10)
    assert bucket.delay_for(1) == pytest.approx(0.1)
    assert bucket.delay_for(5) == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.delay_for(5) == 0


def test_credentials_come_from_the_environment_never_the_registry() -> None:
    endpoint = EndpointConfig(id=7, url="https://rpc.example/v2", priority=0, weight=1, rate_limit=0,
                              auth_type="api_key_path", auth_secret_ref="secret://mintplane/alchemy/api-key")
    variable = secret_env_name(endpoint.auth_secret_ref)
    assert variable == "MINTPLANE_RPC_SECRET_ALCHEMY_API_KEY"
    spec = resolve_endpoint(endpoint, {variable: "s3cr3t"})
    assert spec.url == "https://rpc.example/v2/s3cr3t" and spec.display == "https://rpc.example/v2"
    bearer = resolve_endpoint(EndpointConfig(8, "https://x", 0, 1, 0, "bearer", "secret://ns/n/k"),
                              {"MINTPLANE_RPC_SECRET_N_K": "t"})
    assert bearer.headers == (("Authorization", "Bearer t"),) and bearer.url == "https://x"
    with pytest.raises(ValueError, match="is not set"):
        resolve_endpoint(endpoint, {})
    assert display_url("https://u:p@host:8545/path?key=1") == "https://host:8545/path"

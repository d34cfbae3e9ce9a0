"""The one way an endpoint's key is attached (mintplane.common.endpoint_auth), as the indexer resolves
registry endpoints with it, and the indexer's guarantees that the key never shows in status, errors or
reprs. Requests go to a small aiohttp server started by the test, so what is checked is what arrives."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mintplane.api.chain_registry.v1 import chain_registry_pb2 as pb
from mintplane.common.endpoint_auth import (
    AuthType,
    Credential,
    check_shape,
    redact,
    request_target,
    secret_forms,
)
from mintplane.common.jsonrpc import EndpointFailure, JsonRpcClient, RpcError
from mintplane.common.registry_client import EndpointConfig, config_from_proto
from mintplane.indexer.endpoints import AllEndpointsDown, EndpointPool
from mintplane.indexer.registry import resolve_endpoint

pytestmark = pytest.mark.unit

SECRET = "sk_live_9f8e7d6c5b4a/SECRET+key"  # "/" and "+" must be quoted in a path or a query
REF = "secret://mintplane/eth-rpc/apiKey"
VARIABLE = "MINTPLANE_RPC_SECRET_ETH_RPC_APIKEY"


class Recorder:
    """Answers JSON-RPC with a fixed result and keeps the requests; ``reply`` overrides the answer."""

    def __init__(self) -> None:
        self.seen: list[web.Request] = []
        self.reply: web.StreamResponse | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        if self.reply is not None:
            return self.reply
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": "0x2a"})


@pytest.fixture
async def server() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield recorder, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def _send(session: aiohttp.ClientSession, url: str, credential: Credential | None) -> None:
    target, headers = request_target(url, credential)
    async with session.post(target, json={}, headers=headers) as response:
        assert response.status == 200


# ------------------------------------------------------------------------------------ request_target


@pytest.mark.parametrize(
    ("credential", "path", "query", "header"),
    [
        (None, "/v1", {"network": "main"}, ("Authorization", None)),
        (Credential(AuthType.NONE, SECRET), "/v1", {"network": "main"}, ("Authorization", None)),
        (Credential(AuthType.BEARER, SECRET), "/v1", {"network": "main"}, ("Authorization", f"Bearer {SECRET}")),
        (Credential(AuthType.API_KEY_HEADER, SECRET, "X-Api-Key"), "/v1", {"network": "main"}, ("x-api-key", SECRET)),
        (Credential(AuthType.API_KEY_QUERY, SECRET, "apikey"), "/v1", {"network": "main", "apikey": SECRET},
         ("Authorization", None)),
        (Credential(AuthType.API_KEY_PATH, SECRET), f"/v1/{SECRET}", {"network": "main"}, ("Authorization", None)),
    ],
    ids=["no-credential", "none", "bearer", "header", "query", "path"],
)
async def test_each_auth_type_arrives_where_the_provider_reads_it(
    server: tuple[Recorder, str], session: aiohttp.ClientSession, credential: Credential | None, path: str,
    query: dict[str, str], header: tuple[str, str | None],
) -> None:
    recorder, base = server
    await _send(session, f"{base}/v1?network=main", credential)
    seen = recorder.seen[-1]
    assert (seen.path, dict(seen.query)) == (path, query)
    assert seen.headers.get(header[0]) == header[1]


async def test_basic_auth_sends_user_and_password(server: tuple[Recorder, str],
                                                  session: aiohttp.ClientSession) -> None:
    recorder, base = server
    await _send(session, base, Credential(AuthType.BASIC, f"rpc-user:{SECRET}"))
    await _send(session, base, Credential(AuthType.BASIC, "only-a-user"))
    sent = [r.headers["Authorization"] for r in recorder.seen]
    assert [base64.b64decode(h.removeprefix("Basic ")).decode() for h in sent] == [
        f"rpc-user:{SECRET}", "only-a-user:"]


def test_query_key_goes_after_the_urls_parameters_and_before_the_fragment() -> None:
    credential = Credential(AuthType.API_KEY_QUERY, "k&y=1 2", "api-key")
    assert request_target("https://rpc.example/v1?a=1#frag", credential) == (
        "https://rpc.example/v1?a=1&api-key=k%26y%3D1+2#frag", {})
    assert request_target("wss://rpc.example/ws", credential)[0] == "wss://rpc.example/ws?api-key=k%26y%3D1+2"


def test_path_key_is_one_quoted_segment_even_when_the_url_has_a_query() -> None:
    credential = Credential(AuthType.API_KEY_PATH, "a/b?c")
    assert request_target("https://eth.example/v2/", credential) == ("https://eth.example/v2/a%2Fb%3Fc", {})
    assert request_target("https://eth.example/v2?chain=1", credential) == (
        "https://eth.example/v2/a%2Fb%3Fc?chain=1", {})


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        (Credential(AuthType.API_KEY_HEADER, SECRET), "auth type api_key_header needs auth_param"),
        (Credential(AuthType.API_KEY_QUERY, SECRET), "the name of the query parameter that carries the key"),
        (Credential(AuthType.API_KEY_HEADER, SECRET, "x api key"), "'x api key' is not a valid header name"),
        (Credential("header", SECRET), "unknown auth type 'header'"),  # type: ignore[arg-type]  # a CRD name
        (Credential(AuthType.BEARER, ""), "needs a key, and the key is empty"),
        (Credential(AuthType.API_KEY_HEADER, SECRET + "\n", "x-api-key"), "trailing newline"),
        (Credential(AuthType.API_KEY_PATH, SECRET + "\r\n"), "control character"),
    ],
)
def test_a_credential_that_cannot_be_sent_is_refused_without_quoting_the_key(credential: Credential,
                                                                             message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        request_target("https://rpc.example/", credential)
    assert SECRET not in str(refused.value)


def test_the_shape_is_checked_without_a_key() -> None:
    check_shape(AuthType.API_KEY_QUERY, "apikey")
    check_shape(AuthType.BEARER, "")
    with pytest.raises(ValueError, match="needs auth_param"):
        check_shape(AuthType.API_KEY_HEADER, "")


def test_every_wire_form_of_the_key_is_redacted() -> None:
    credential = Credential(AuthType.BASIC, f"user:{SECRET}")
    url, _ = request_target("https://rpc.example/", Credential(AuthType.API_KEY_QUERY, SECRET, "k"))
    path_url, _ = request_target("https://rpc.example/", Credential(AuthType.API_KEY_PATH, SECRET))
    _, basic_headers = request_target("https://rpc.example/", credential)
    text = f"failed: {url} {path_url} {basic_headers['Authorization']} raw {SECRET}"
    masked = redact(text, secret_forms(credential))
    assert masked == "failed: https://rpc.example/?k=*** https://rpc.example/*** Basic *** raw ***"
    assert secret_forms(None) == () and secret_forms(Credential(AuthType.NONE, "x")) == ()
    assert SECRET not in repr(credential)


# ------------------------------------------------------------------------- the indexer's resolution


def _endpoint(auth_type: str, auth_param: str = "", url: str = "https://rpc.example/v1?chain=1") -> EndpointConfig:
    return EndpointConfig(id=11, url=url, priority=0, weight=1, rate_limit=5, auth_type=auth_type,
                          auth_secret_ref=REF, auth_param=auth_param)


def test_query_keyed_endpoint_gets_its_key_but_never_shows_it() -> None:
    spec = resolve_endpoint(_endpoint(AuthType.API_KEY_QUERY, "apikey"), {VARIABLE: SECRET})
    assert spec.url == "https://rpc.example/v1?chain=1&apikey=sk_live_9f8e7d6c5b4a%2FSECRET%2Bkey"
    assert spec.headers == ()
    assert spec.shown_as == "https://rpc.example/v1?chain=1" and spec.display == "https://rpc.example/v1"
    assert SECRET not in repr(spec) and "%2FSECRET" not in repr(spec)


def test_header_keyed_endpoint_uses_the_registrys_header_name() -> None:
    spec = resolve_endpoint(_endpoint(AuthType.API_KEY_HEADER, "x-goog-api-key"), {VARIABLE: SECRET})
    assert spec.headers == (("x-goog-api-key", SECRET),)
    assert spec.url == spec.shown_as == "https://rpc.example/v1?chain=1"
    assert SECRET not in repr(spec)


def test_missing_secret_names_the_variable_and_no_value() -> None:
    other = {"MINTPLANE_RPC_SECRET_OTHER_APIKEY": SECRET}
    with pytest.raises(ValueError) as missing:
        resolve_endpoint(_endpoint(AuthType.API_KEY_QUERY, "apikey"), other)
    assert str(missing.value) == (f"endpoint 11 (https://rpc.example/v1): credential {VARIABLE} is not set "
                                  f"(the key of {REF})")


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (_endpoint(AuthType.API_KEY_HEADER), "endpoint 11 .*: auth type api_key_header needs auth_param"),
        (_endpoint(AuthType.API_KEY_QUERY), "the name of the query parameter that carries the key"),
        (_endpoint("EndpointAuthType=9"), "unknown auth type 'EndpointAuthType=9'"),
    ],
)
def test_endpoint_the_registry_describes_badly_is_refused_before_the_env_is_read(endpoint: EndpointConfig,
                                                                                 message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        resolve_endpoint(endpoint, {})  # no variable set: the shape problem is what gets reported
    assert VARIABLE not in str(refused.value)


def test_registry_response_keeps_query_auth_and_its_param() -> None:
    response = pb.GetChainConfigResponse(
        chain=pb.Chain(caip2="eip155:1", chain_numeric=1, enabled=True),
        endpoints=[
            pb.Endpoint(id=1, url="https://a.example", auth_type=pb.ENDPOINT_AUTH_TYPE_API_KEY_QUERY,
                        auth_secret_ref=REF, auth_param="apikey", active=True),
            pb.Endpoint(id=2, url="https://b.example", auth_type=pb.ENDPOINT_AUTH_TYPE_API_KEY_HEADER,
                        auth_secret_ref=REF, auth_param="x-api-key"),
            pb.Endpoint(id=3, url="https://c.example", auth_type=pb.ENDPOINT_AUTH_TYPE_UNSPECIFIED),
            pb.Endpoint(id=4, url="https://d.example", auth_type=99),  # type: ignore[arg-type]  # newer registry
        ],
    )
    endpoints = config_from_proto(response).endpoints
    assert [(e.auth_type, e.auth_param) for e in endpoints] == [
        ("api_key_query", "apikey"), ("api_key_header", "x-api-key"), ("none", ""), ("EndpointAuthType=99", "")]


# ------------------------------------------------------------------- nothing the indexer shows leaks


@pytest.mark.parametrize("url", ["http:///rpc?chain=1", "http://127.0.0.1:1/rpc?chain=1"],
                         ids=["aiohttp-quotes-the-url", "connection-refused"])
async def test_pool_status_and_transport_errors_never_carry_the_key(session: aiohttp.ClientSession,
                                                                    url: str) -> None:
    spec = resolve_endpoint(_endpoint(AuthType.API_KEY_QUERY, "apikey", url=url), {VARIABLE: SECRET})
    pool = EndpointPool(session, timeout=2, base_cooldown=0.01)
    pool.configure([spec])

    async def head(client: Any) -> Any:
        return await client.call("eth_blockNumber", [])

    with pytest.raises(AllEndpointsDown, match="every RPC endpoint is failing") as down:
        await pool.run(head)
    described = pool.describe()
    assert described[0]["url"] == url.removesuffix("?chain=1") and described[0]["failures"] == 1
    for text in (repr(described), str(down.value), pool.last_error):
        assert "SECRET" not in text and "apikey" not in text  # in no encoding, not even the parameter


async def test_node_errors_that_echo_the_url_are_masked(server: tuple[Recorder, str],
                                                        session: aiohttp.ClientSession) -> None:
    recorder, base = server
    spec = resolve_endpoint(_endpoint(AuthType.API_KEY_QUERY, "apikey", url=f"{base}/rpc"), {VARIABLE: SECRET})
    client = JsonRpcClient(session, spec.url, timeout=2, headers=dict(spec.headers), masks=spec.masks)
    recorder.reply = web.json_response(
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": f"rate limit for {spec.url}"}})
    with pytest.raises(RpcError) as echoed:
        await client.call("eth_blockNumber", [])
    assert echoed.value.message == f"rate limit for {base}/rpc?apikey=***"
    assert recorder.seen[-1].query["apikey"] == SECRET


async def test_redirects_are_refused_so_the_key_is_not_carried_elsewhere(server: tuple[Recorder, str],
                                                                        session: aiohttp.ClientSession) -> None:
    recorder, base = server
    spec = resolve_endpoint(_endpoint(AuthType.API_KEY_HEADER, "x-api-key", url=f"{base}/rpc"), {VARIABLE: SECRET})
    client = JsonRpcClient(session, spec.url, timeout=2, headers=dict(spec.headers), masks=spec.masks)
    recorder.reply = web.Response(status=307, headers={"Location": f"{base}/elsewhere"})
    with pytest.raises(EndpointFailure, match="HTTP 307: the endpoint redirects"):
        await client.call("eth_blockNumber", [])
    assert [r.path for r in recorder.seen] == ["/rpc"]

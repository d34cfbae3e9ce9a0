"""Adaptive getLogs ranges and JSON-RPC error classification."""

from __future__ import annotations

import pytest

from mintplane.common.jsonrpc import RangeTooLarge, RpcError, classify_error
from mintplane.indexer.ranges import AdaptiveRange, RangeCannotShrink

pytestmark = pytest.mark.unit


def test_grows_while_quiet_and_steers_toward_the_log_target() -> None:
    sizes = AdaptiveRange(size=10, maximum=1000, target_logs=1000)
    sizes.on_success(blocks=10, logs=5)
    assert sizes.size == 20
    for _ in range(10):
        sizes.on_success(blocks=sizes.size, logs=0)
    assert sizes.size == 1000
    sizes.on_success(blocks=1000, logs=4000)  # four times the target: a quarter of the range next time
    assert sizes.size == 250
    sizes.on_success(blocks=5, logs=1)  # capped by the head: says nothing about the right size
    assert sizes.size == 250


def test_splits_on_refusal_using_the_providers_hint() -> None:
    sizes = AdaptiveRange(size=2000)
    sizes.on_too_large(2000, hint=(0x100, 0x17F))
    assert sizes.size == 128
    sizes.on_too_large(128)
    assert sizes.size == 64
    single = AdaptiveRange(size=1)
    with pytest.raises(RangeCannotShrink):
        single.on_too_large(1)


@pytest.mark.parametrize("error", [
    {"code": -32005, "message": "query returned more than 10000 results"},
    {"code": -32602, "message": "Log response size exceeded. You can make eth_getLogs requests with up to a 2K "
                                "block range ... this block range should work: [0x10, 0x50]"},
    {"code": -32000, "message": "block range is too wide"},
    {"code": -32000, "message": "exceed maximum block range: 5000"},
])
def test_provider_size_refusals_are_range_errors(error: dict) -> None:
    classified = classify_error(error)
    assert isinstance(classified, RangeTooLarge)
    if "should work" in error["message"]:
        assert classified.hint == (0x10, 0x50)


def test_other_errors_stay_plain() -> None:
    classified = classify_error({"code": -32601, "message": "the method eth_foo does not exist"})
    assert type(classified) is RpcError and classified.code == -32601

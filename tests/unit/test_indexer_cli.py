"""The command line the operator's Deployments and Jobs run."""

from __future__ import annotations

import pytest

from mintplane.indexer.cli import parse
from mintplane.indexer.repository import backfill_scope

pytestmark = pytest.mark.unit


def test_follow_and_status_modes() -> None:
    assert parse(["--chain", "eip155:1"]).chain == "eip155:1"
    assert parse([]).chain is None and parse([]).mode == "follow"


def test_backfill_mode_as_the_operator_writes_it() -> None:
    args = parse(["backfill", "--chain", "eip155:137", "--from-block", "10", "--to-block", "20",
                  "--contract", "0x" + "AB" * 20, "--contract", "0x" + "cd" * 20, "--batch-size", "50"])
    assert (args.mode, args.chain, args.from_block, args.to_block, args.batch_size) == ("backfill", "eip155:137",
                                                                                        10, 20, 50)
    assert args.contract == ["0x" + "ab" * 20, "0x" + "cd" * 20]


@pytest.mark.parametrize("argv", [
    ["backfill", "--chain", "eip155:1", "--from-block", "20", "--to-block", "10"],
    ["backfill", "--chain", "ethereum", "--from-block", "1", "--to-block", "2"],
    ["backfill", "--chain", "eip155:1", "--from-block", "-1", "--to-block", "2"],
    ["backfill", "--chain", "eip155:1", "--from-block", "1", "--to-block", "2", "--contract", "0x12"],
    ["--chain", "solana:mainnet"],
])
def test_bad_arguments_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as error:
        parse(argv)
    assert error.value.code == 2


def test_backfill_scopes_are_stable_and_distinct() -> None:
    one = backfill_scope("eip155:1", 10, 20, ["0xB", "0xa"])
    assert one == backfill_scope("eip155:1", 10, 20, ["0xa", "0xb"]) and one.startswith("eip155:1@backfill:")
    assert one != backfill_scope("eip155:1", 10, 21, ["0xa", "0xb"])

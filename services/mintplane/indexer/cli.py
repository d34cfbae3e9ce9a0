"""Command line of ``python -m mintplane.indexer``.

- no chain: the gRPC status server only (what the dev stack runs on 50058); GetStatus answers from the
  stored checkpoints;
- ``--chain <caip2>`` (or MINTPLANE_INDEXER_CHAIN): follow that chain, serving the gRPC API on the port;
- ``backfill --chain <caip2> --from-block N --to-block M [--contract 0x..]... [--batch-size K]``: index
  that range (of the given tracked contracts, or all), publish its events, exit 0 when done.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence

from mintplane.common.log import configure_logging
from mintplane.common.service import main as serve_status
from mintplane.indexer.lane import LaneSpec
from mintplane.indexer.repository import backfill_scope
from mintplane.indexer.runner import run_lane
from mintplane.indexer.server import NEEDS, build_server
from mintplane.indexer.settings import IndexerSettings

_CAIP2 = re.compile(r"^eip155:[1-9][0-9]*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _caip2(value: str) -> str:
    if not _CAIP2.match(value):
        raise argparse.ArgumentTypeError(f"not a CAIP-2 EVM chain id (eip155:<n>): {value!r}")
    return value


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise argparse.ArgumentTypeError(f"not a 0x-prefixed 20-byte address: {value!r}")
    return value.lower()


def _block(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("block numbers are >= 0")
    return number


def parse(argv: Sequence[str]) -> argparse.Namespace:
    if argv and argv[0] == "backfill":
        parser = argparse.ArgumentParser(prog="python -m mintplane.indexer backfill",
                                         description="Index a block range once, then exit.")
        parser.add_argument("--chain", type=_caip2, required=True)
        parser.add_argument("--from-block", type=_block, required=True)
        parser.add_argument("--to-block", type=_block, required=True)
        parser.add_argument("--contract", type=_address, action="append", default=[],
                            help="tracked contract to index (repeatable); all tracked contracts when omitted")
        parser.add_argument("--batch-size", type=int, default=None, help="first getLogs range (adapts)")
        args = parser.parse_args(argv[1:])
        if args.to_block < args.from_block:
            parser.error("--to-block must be >= --from-block")
        args.mode = "backfill"
        return args
    parser = argparse.ArgumentParser(prog="python -m mintplane.indexer",
                                     description="Follow a chain (--chain), or serve indexer status only.")
    parser.add_argument("--chain", type=_caip2, default=None)
    args = parser.parse_args(argv)
    args.mode = "follow"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    settings = IndexerSettings()
    if args.mode == "backfill":
        if args.batch_size:
            settings.indexer_batch_size = args.batch_size
        contracts = sorted(set(args.contract))
        spec = LaneSpec(
            chain=args.chain, scope=backfill_scope(args.chain, args.from_block, args.to_block, contracts),
            confirmations=settings.indexer_confirmations, first_block=args.from_block,
            target_block=args.to_block, contracts=tuple(contracts) if contracts else None,
        )
        configure_logging(settings.log_level, json=settings.log_json, service="indexer-backfill")
        return asyncio.run(run_lane(settings, spec, serve=False))
    chain = args.chain or settings.indexer_chain
    if not chain:
        serve_status("indexer", IndexerSettings, NEEDS, build_server)
        return 0
    _caip2(chain)
    spec = LaneSpec(chain=chain, scope=chain, confirmations=settings.indexer_confirmations,
                    first_block=settings.indexer_start_block)
    configure_logging(settings.log_level, json=settings.log_json, service="indexer")
    return asyncio.run(run_lane(settings, spec, serve=True))

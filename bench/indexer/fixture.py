"""Build the indexer benchmark chains once, save them as anvil state dumps, and write their ground truth.

    .venv/bin/python bench/indexer/fixture.py [dense|sparse|all] [--force]

Two layouts of the same mix (>200,000 ERC-721 transfers plus ERC-1155 TransferBatch/TransferSingle):

- dense: ~1,000 mints per block (one ``mintBatch`` each), then blocks of plain transfers: few blocks, many
  logs per block (what a popular mint looks like);
- sparse: 50 mints per block, an empty block after each, ERC-1155 batches every tenth: 20x fewer logs
  per block and more blocks (what a quieter collection's history looks like).

Dumps go to ``~/.cache/mintplane/fixtures/indexer-<layout>-v1/state.json`` (never committed: hundreds of
MB), with ``truth.json`` beside it: chain id, contracts, block range, counts per standard, and a SHA-256
over the canonical transfer list (computed with an independent decoder from ``eth_getLogs``).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "indexer"))
import chainkit as ck
import pipeline as pl

CACHE = Path.home() / ".cache" / "mintplane" / "fixtures"
VERSION = "v1"
CHAIN_IDS = {"dense": 7_770_001, "sparse": 7_770_002}


def fixture_dir(layout: str) -> Path:
    return CACHE / f"indexer-{layout}-{VERSION}"


class Rpc:
    """One keep-alive connection: building 20,000 blocks one call at a time needs it."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self._id = 0

    def __call__(self, method: str, *params: Any) -> Any:
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)})
        self._conn.request("POST", "/", body, {"Content-Type": "application/json"})
        answer = json.loads(self._conn.getresponse().read())
        if answer.get("error"):
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]


def _send(rpc: Rpc, tx: dict[str, Any]) -> None:
    tx_hash = rpc("eth_sendTransaction", tx)
    for _ in range(2000):  # automine answers before the block is sealed: poll the receipt
        receipt = rpc("eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            break
        time.sleep(0.002)
    if receipt is None or receipt["status"] != "0x1":
        raise RuntimeError(f"transaction {tx_hash} failed: {receipt}")


def build_dense(anvil: ck.Anvil, erc721: str, erc1155: str) -> None:
    rpc = Rpc(anvil.port)
    token = 1
    holders: dict[int, str] = {}
    for block in range(200):
        owner = ck.ACCOUNTS[1 + block % 4]
        _send(rpc, ck.mint_721_tx(erc721, owner, token, 1000))
        holders.update({n: owner for n in range(token, token + 1000)})
        token += 1000
    for block in range(10):  # 300 plain transfers per block, spread over the minted range
        tokens = [1 + (block * 300 + k) * 61 % 200_000 for k in range(300)]
        ck.mine_block_with(anvil, [ck.transfer_721_tx(erc721, holders[n], ck.ACCOUNTS[5 + n % 5], n) for n in tokens])
        holders.update({n: ck.ACCOUNTS[5 + n % 5] for n in tokens})
    for block in range(40):  # 5 TransferBatch logs of 50 ids per block
        txs = [ck.mint_1155_tx(erc1155, ck.ACCOUNTS[1 + k], range(block * 250 + k * 50 + 1, block * 250 + k * 50 + 51),
                               [7] * 50) for k in range(5)]
        ck.mine_block_with(anvil, txs)
    for block in range(20):  # TransferSingle
        txs = [ck.transfer_1155_tx(erc1155, ck.ACCOUNTS[1 + k % 5], ck.ACCOUNTS[9], block * 250 + (k % 5) * 50 + 1 +
                                   k // 5, 3) for k in range(100)]
        ck.mine_block_with(anvil, txs)


def build_sparse(anvil: ck.Anvil, erc721: str, erc1155: str) -> None:
    # anvil seals every block with a fresh state root (~30 ms once 200k tokens exist, empty or not), so
    # "sparse" is 50 mints per event block with an empty block after each: 20x fewer logs per block than
    # dense and twice the blocks per event block.
    rpc = Rpc(anvil.port)
    token = 1
    for block in range(4_000):
        _send(rpc, ck.mint_721_tx(erc721, ck.ACCOUNTS[1 + block % 9], token, 50))
        token += 50
        if block % 10 == 0:
            _send(rpc, ck.mint_1155_tx(erc1155, ck.ACCOUNTS[2], range(block * 3 + 1, block * 3 + 31), [2] * 30))
        rpc("anvil_mine", hex(1))
        if block % 500 == 0:
            print(f"  sparse: {block} event blocks", flush=True)


def ground_truth(anvil: ck.Anvil, contracts: dict[str, str], first: int, last: int, span: int) -> dict[str, Any]:
    rows: list[tuple[Any, ...]] = []
    for start in range(first, last + 1, span):
        logs = anvil.call("eth_getLogs", {"fromBlock": hex(start), "toBlock": hex(min(last, start + span - 1)),
                                          "address": sorted(contracts)})
        rows += pl.oracle_rows(anvil.caip2, logs, contracts)
    rows.sort()
    digest = hashlib.sha256()
    for row in rows:
        digest.update("|".join(str(v) for v in row).encode() + b"\n")
    blocks_with_events = len({row[6] for row in rows})
    return {
        "transfers": len(rows),
        "erc721": sum(1 for r in rows if contracts[r[1]] == "ERC721"),
        "erc1155": sum(1 for r in rows if contracts[r[1]] == "ERC1155"),
        "blocks_with_events": blocks_with_events,
        "sha256": digest.hexdigest(),
    }


def build(layout: str, force: bool = False) -> Path:
    target = fixture_dir(layout)
    if (target / "truth.json").exists() and not force:
        print(f"{layout}: {target} exists (use --force to rebuild)")
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    started = time.monotonic()
    anvil = ck.Anvil(chain_id=CHAIN_IDS[layout], dump_state=target / "state.json",
                     extra=("--gas-limit", "30000000", "--base-fee", "0", "--balance", "10000000")).start()
    try:
        erc721, erc1155 = ck.deploy(anvil, "ERC721"), ck.deploy(anvil, "ERC1155")
        first = anvil.head() + 1
        (build_dense if layout == "dense" else build_sparse)(anvil, erc721, erc1155)
        last = anvil.head()
        truth = ground_truth(anvil, {erc721: "ERC721", erc1155: "ERC1155"}, first, last,
                             span=20 if layout == "dense" else 400)
    finally:
        anvil.stop()  # SIGINT: anvil writes the dump on the way out
    info = {"layout": layout, "chain_id": CHAIN_IDS[layout], "contracts": {"ERC721": erc721, "ERC1155": erc1155},
            "first_block": first, "last_block": last, "blocks": last - first + 1, **truth,
            "build_seconds": round(time.monotonic() - started, 1),
            "dump_bytes": (target / "state.json").stat().st_size}
    (target / "truth.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("layout", choices=["dense", "sparse", "all"], nargs="?", default="all")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    for layout in ("dense", "sparse") if args.layout == "all" else (args.layout,):
        build(layout, force=args.force)


if __name__ == "__main__":
    main()

// Configured from the environment by bench/indexer/run.py (the fixture's chain, contracts and range).
import { createConfig } from "ponder";
import { erc1155Abi, erc721Abi } from "./abis";

const need = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through bench/indexer/run.py)`);
  return value;
};

const startBlock = Number(need("PONDER_START_BLOCK"));
const endBlock = Number(need("PONDER_END_BLOCK"));

export default createConfig({
  chains: {
    bench: { id: Number(need("PONDER_CHAIN_ID")), rpc: need("PONDER_RPC_URL"), disableCache: true },
  },
  contracts: {
    Nft: { chain: "bench", abi: erc721Abi, address: need("PONDER_ERC721") as `0x${string}`, startBlock, endBlock },
    Multi: { chain: "bench", abi: erc1155Abi, address: need("PONDER_ERC1155") as `0x${string}`, startBlock, endBlock },
  },
});

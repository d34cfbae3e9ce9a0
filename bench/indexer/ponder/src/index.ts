import { ponder } from "ponder:registry";
import { balance, transfer } from "ponder:schema";

const ZERO = "0x0000000000000000000000000000000000000000";

type Db = Parameters<Parameters<typeof ponder.on<"Nft:Transfer">>[1]>[0]["context"]["db"];

async function move(db: Db, contract: `0x${string}`, tokenId: bigint, from: `0x${string}`, to: `0x${string}`,
                    quantity: bigint): Promise<void> {
  if (to !== ZERO) {
    await db.insert(balance).values({ contract, tokenId, owner: to, quantity })
      .onConflictDoUpdate((row) => ({ quantity: row.quantity + quantity }));
  }
  if (from !== ZERO) {
    await db.update(balance, { contract, tokenId, owner: from }).set((row) => ({ quantity: row.quantity - quantity }));
  }
}

ponder.on("Nft:Transfer", async ({ event, context }) => {
  const { from, to, tokenId } = event.args;
  await context.db.insert(transfer).values({
    id: event.id, contract: event.log.address, tokenId, from, to, quantity: 1n, blockNumber: event.block.number,
    txHash: event.transaction.hash,
  });
  await move(context.db, event.log.address, tokenId, from, to, 1n);
});

ponder.on("Multi:TransferSingle", async ({ event, context }) => {
  const { from, to, id, value } = event.args;
  await context.db.insert(transfer).values({
    id: event.id, contract: event.log.address, tokenId: id, from, to, quantity: value,
    blockNumber: event.block.number, txHash: event.transaction.hash,
  });
  await move(context.db, event.log.address, id, from, to, value);
});

ponder.on("Multi:TransferBatch", async ({ event, context }) => {
  const { from, to, ids, values } = event.args;
  for (let i = 0; i < ids.length; i++) {
    const tokenId = ids[i]!;
    const quantity = values[i]!;
    await context.db.insert(transfer).values({
      id: `${event.id}-${i}`, contract: event.log.address, tokenId, from, to, quantity,
      blockNumber: event.block.number, txHash: event.transaction.hash,
    });
    await move(context.db, event.log.address, tokenId, from, to, quantity);
  }
});

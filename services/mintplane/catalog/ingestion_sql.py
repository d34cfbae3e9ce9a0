"""SQL of catalog ingestion: one statement per step, each over the whole batch (no per-row round trips)."""

LOCK_STATES = """
SELECT event_id, epoch, applied FROM catalog.processed_events WHERE event_id = ANY($1::text[]) ORDER BY event_id
FOR UPDATE
"""

# Contracts seen for the first time become "discovered" collections; RegisterCollection adopts them later.
DISCOVER_COLLECTIONS = """
INSERT INTO catalog.collections (slug, name, chain_id, contract_address, collection_type, status, registration,
                                 live_at)
SELECT replace(c.chain_id, ':', '-') || '-' || c.contract, c.contract, c.chain_id, c.contract, c.standard, 'live',
       'discovered', now()
  FROM unnest($1::text[], $2::text[], $3::text[]) AS c(chain_id, contract, standard)
ON CONFLICT DO NOTHING
"""

COLLECTION_IDS = """
SELECT c.id, c.chain_id, c.contract_address, c.status
  FROM catalog.collections c
  JOIN unnest($1::text[], $2::text[]) AS k(chain_id, contract)
    ON c.chain_id = k.chain_id AND c.contract_address = k.contract
"""

# A transfer proves the contract is deployed: a pending collection becomes live.
MARK_LIVE = """
UPDATE catalog.collections SET status = 'live', live_at = coalesce(live_at, now()), updated_at = now()
 WHERE id = ANY($1::uuid[]) AND status = 'pending'
"""

ENSURE_TOKENS = """
INSERT INTO catalog.tokens (collection_id, chain_id, contract_address, token_number, token_standard)
SELECT DISTINCT t.collection_id, t.chain_id, t.contract, t.token_number, t.standard
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
       AS t(collection_id, chain_id, contract, token_number, standard)
ON CONFLICT (collection_id, token_number) DO NOTHING
"""

NFT_IDS = """
SELECT t.id, t.collection_id, t.token_number
  FROM catalog.tokens t
  JOIN unnest($1::uuid[], $2::text[]) AS k(collection_id, token_number)
    ON t.collection_id = k.collection_id AND t.token_number = k.token_number
"""

INSERT_ACTIVITIES = """
INSERT INTO catalog.activities (token_id, collection_id, type, from_address, to_address, tx_hash, "timestamp",
                                event_id, block_number, log_index, batch_index, quantity)
SELECT a.token_id, a.collection_id, a.type, a.from_address, a.to_address, a.tx_hash, a.ts, a.event_id,
       a.block_number, a.log_index, a.batch_index, a.quantity
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
              $8::text[], $9::bigint[], $10::int[], $11::int[], $12::numeric[])
       AS a(token_id, collection_id, type, from_address, to_address, tx_hash, ts, event_id, block_number,
            log_index, batch_index, quantity)
"""

DELETE_ACTIVITIES = """
DELETE FROM catalog.activities WHERE event_id = ANY($1::text[]) RETURNING token_id, collection_id
"""

SAVE_STATES = """
INSERT INTO catalog.processed_events (event_id, epoch, applied)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::boolean[])
ON CONFLICT (event_id) DO UPDATE SET epoch = excluded.epoch, applied = excluded.applied, processed_at = now()
"""

# Owner, burned, minted_at and last_transfer_at of the touched tokens, from their remaining on-chain
# activities by chain position: the same answer whatever order the events arrived in, and a retracted
# transfer (reorg) hands last_transfer_at back to the latest transfer still on the canonical chain.
RECOMPUTE_TOKENS = """
WITH touched AS (SELECT unnest($1::uuid[]) AS id),
latest AS (
    SELECT DISTINCT ON (a.token_id) a.token_id, a.type, a.to_address, a."timestamp"
      FROM catalog.activities a JOIN touched ON a.token_id = touched.id
     WHERE a.block_number IS NOT NULL
     ORDER BY a.token_id, a.block_number DESC, a.log_index DESC, a.batch_index DESC
),
supply AS (
    SELECT a.token_id,
           sum(CASE WHEN a.type = 'mint' THEN a.quantity WHEN a.type = 'burn' THEN -a.quantity ELSE 0 END) AS units,
           bool_or(a.type = 'burn') AS any_burn,
           min(a."timestamp") FILTER (WHERE a.type = 'mint') AS minted_at
      FROM catalog.activities a JOIN touched ON a.token_id = touched.id
     WHERE a.block_number IS NOT NULL
     GROUP BY a.token_id
)
UPDATE catalog.tokens t
   SET owner_address = CASE WHEN t.token_standard = 'ERC1155' OR l.type = 'burn' THEN NULL ELSE l.to_address END,
       burned = CASE WHEN t.token_standard = 'ERC1155' THEN s.any_burn AND s.units <= 0 ELSE l.type = 'burn' END,
       minted_at = s.minted_at, last_transfer_at = l."timestamp"
  FROM latest l JOIN supply s ON s.token_id = l.token_id
 WHERE t.id = l.token_id
"""

# Tokens whose every on-chain activity was retracted never existed on the canonical chain.
DROP_EMPTY_TOKENS = """
DELETE FROM catalog.tokens t
 WHERE t.id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM catalog.activities a WHERE a.token_id = t.id)
"""

RECOMPUTE_STATS = """
WITH touched AS (
    SELECT c.id, c.collection_type FROM catalog.collections c WHERE c.id = ANY($1::uuid[]) ORDER BY c.id
),
counts AS (
    SELECT touched.id,
           (SELECT count(*) FROM catalog.tokens t WHERE t.collection_id = touched.id AND NOT t.burned) AS items,
           CASE WHEN touched.collection_type = 'ERC1155' THEN (
               SELECT count(*) FROM (
                   SELECT holder FROM (
                       SELECT a.to_address AS holder, a.quantity AS units FROM catalog.activities a
                        WHERE a.collection_id = touched.id AND a.to_address IS NOT NULL
                       UNION ALL
                       SELECT a.from_address, -a.quantity FROM catalog.activities a
                        WHERE a.collection_id = touched.id AND a.from_address IS NOT NULL) AS moves
                    GROUP BY holder HAVING sum(units) > 0) AS holders)
           ELSE (SELECT count(DISTINCT t.owner_address) FROM catalog.tokens t
                  WHERE t.collection_id = touched.id AND NOT t.burned AND t.owner_address IS NOT NULL)
           END AS owners
      FROM touched
),
stats AS (
    INSERT INTO catalog.collection_stats (collection_id, items_count, owners_count, updated_at)
    SELECT id, items, owners, now() FROM counts
    ON CONFLICT (collection_id) DO UPDATE
        SET items_count = excluded.items_count, owners_count = excluded.owners_count, updated_at = now()
)
UPDATE catalog.collections c SET total_supply = counts.items::text, updated_at = now()
  FROM counts WHERE c.id = counts.id
"""

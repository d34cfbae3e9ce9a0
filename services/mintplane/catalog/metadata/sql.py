"""SQL of metadata ingestion and refresh: each statement covers a whole batch (arrays in, no per-row round trips)."""

# Due pending tokens, claimed with a lease: the claim commits at once (SKIP LOCKED lets several workers
# claim side by side), the lease keeps others off while the batch is fetched, and a crashed worker's
# tokens come back when it expires. The lease time is the claim's identity: results are only written
# while it is unchanged (a refresh in the meantime resets it, and the stale result is dropped).
CLAIM = """
WITH due AS (
    SELECT t.id FROM catalog.tokens t
     WHERE t.metadata_status = 'pending'
       AND (t.metadata_next_attempt_at IS NULL OR t.metadata_next_attempt_at <= now())
       AND ($2::text[] IS NULL OR t.chain_id = ANY($2::text[]))
     ORDER BY t.metadata_next_attempt_at NULLS FIRST
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
UPDATE catalog.tokens t
   SET metadata_next_attempt_at = clock_timestamp() + make_interval(secs => $3)
  FROM due
 WHERE t.id = due.id
RETURNING t.id, t.collection_id, t.chain_id, t.contract_address, t.token_number, t.token_standard,
          t.metadata_attempts, t.metadata_next_attempt_at AS lease
"""

# Which claimed tokens are still ours (not refreshed or re-claimed since): read before the trait writes,
# which must take the collection lock before any token row is locked.
STILL_CLAIMED = """
SELECT t.id FROM catalog.tokens t JOIN unnest($1::uuid[], $2::timestamptz[]) AS c(id, lease) ON t.id = c.id
 WHERE t.metadata_status = 'pending' AND t.metadata_next_attempt_at = c.lease
"""

# Every outcome of a batch in one statement. ok: the document's fields; pending: a transient failure
# waiting for its retry (the last reason kept for operators); failed: the reason. A failure keeps the
# fields of an earlier successful fetch (a refresh that fails does not blank a token).
SAVE = """
UPDATE catalog.tokens t
   SET metadata_status = r.status,
       metadata_url = coalesce(r.url, t.metadata_url),
       name = CASE WHEN r.status = 'ok' THEN r.name ELSE t.name END,
       description = CASE WHEN r.status = 'ok' THEN r.description ELSE t.description END,
       image_url = CASE WHEN r.status = 'ok' THEN r.image_url ELSE t.image_url END,
       animation_url = CASE WHEN r.status = 'ok' THEN r.animation_url ELSE t.animation_url END,
       external_url = CASE WHEN r.status = 'ok' THEN r.external_url ELSE t.external_url END,
       metadata = CASE WHEN r.status = 'ok' THEN r.document::jsonb ELSE t.metadata END,
       metadata_error = r.error,
       metadata_attempts = r.attempts,
       metadata_fetched_at = now(),
       metadata_next_attempt_at = now() + make_interval(secs => r.retry_in)  -- NULL unless pending
  FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
              $8::text[], $9::text[], $10::text[], $11::text[], $12::int[], $13::float8[])
       AS r(id, lease, status, url, name, description, image_url, animation_url, external_url, document, error,
            attempts, retry_in)
 WHERE t.id = r.id AND t.metadata_status = 'pending' AND t.metadata_next_attempt_at = r.lease
RETURNING t.id, t.collection_id
"""

# Metadata progress of collections, counted exactly. The caller holds the collections' stats rows
# (LOCK_STATS, or ingestion's own stats upsert) so this statement, started after the lock, sees every
# committed change: concurrent ingestion, workers and refreshes cannot leave a stale count behind.
LOCK_STATS = """
SELECT collection_id FROM catalog.collection_stats WHERE collection_id = ANY($1::uuid[])
 ORDER BY collection_id FOR UPDATE
"""

RECOUNT = """
INSERT INTO catalog.collection_stats (collection_id, metadata_pending, metadata_ok, metadata_failed)
SELECT c.id,
       count(t.id) FILTER (WHERE t.metadata_status = 'pending'),
       count(t.id) FILTER (WHERE t.metadata_status = 'ok'),
       count(t.id) FILTER (WHERE t.metadata_status = 'failed')
  FROM catalog.collections c LEFT JOIN catalog.tokens t ON t.collection_id = c.id
 WHERE c.id = ANY($1::uuid[])
 GROUP BY c.id
 ORDER BY c.id
ON CONFLICT (collection_id) DO UPDATE
   SET metadata_pending = excluded.metadata_pending, metadata_ok = excluded.metadata_ok,
       metadata_failed = excluded.metadata_failed
"""

ROW_BY_ID = """
SELECT t.id, t.collection_id, t.metadata_status, t.metadata_fetched_at, t.metadata_next_attempt_at, now() AS now
  FROM catalog.tokens t WHERE t.id = $1
"""

ROW_BY_KEY = """
SELECT t.id, t.collection_id, t.metadata_status, t.metadata_fetched_at, t.metadata_next_attempt_at, now() AS now
  FROM catalog.tokens t JOIN catalog.collections c ON c.id = t.collection_id
 WHERE c.chain_id = $1 AND c.contract_address = $2 AND t.token_number = $3
"""

# Back to pending, due now, a fresh round of attempts. The row lock orders it against a worker's save.
REQUEUE_ONE = """
UPDATE catalog.tokens
   SET metadata_status = 'pending', metadata_next_attempt_at = NULL, metadata_attempts = 0
 WHERE id = $1
"""

# The collection's last refresh (read under the collection's lock, so two refreshes take turns).
COLLECTION_REFRESH_CLOCK = """
SELECT (SELECT metadata_refresh_requested_at FROM catalog.collection_stats WHERE collection_id = $1) AS last,
       now() AS now
"""

REQUEUE_COLLECTION = """
UPDATE catalog.tokens
   SET metadata_status = 'pending', metadata_next_attempt_at = NULL, metadata_attempts = 0
 WHERE collection_id = $1
"""

STAMP_COLLECTION_REFRESH = """
INSERT INTO catalog.collection_stats (collection_id, metadata_refresh_requested_at) VALUES ($1, now())
ON CONFLICT (collection_id) DO UPDATE SET metadata_refresh_requested_at = now()
"""

"""Indexer and catalog ingestion: exactly-once bookkeeping, reorg retractions, and the read paths.

Why each change:

indexer
- ``indexer_checkpoints.reorg_epoch``: bumped by every reorg rollback, in the rollback's transaction. Every
  event the indexer publishes carries the epoch it was indexed (or retracted) in, so consumers can tell a
  late duplicate of an old transfer from the same log re-adopted after a reorg flip-flop, whatever order
  messages arrive in (several consumers, requeues);
- ``indexer_checkpoints.pending_retractions``: the orphaned transfers a rollback deleted, written in the
  rollback's transaction and cleared once their retraction messages are in the outbox. A crash between
  the two leaves them here and the next start re-announces them: no retraction is ever lost;
- ``indexer_checkpoints.first_block`` / ``target_block`` / ``contracts``: a backfill keeps its own checkpoint
  row (key ``<caip2>@backfill:<digest>``) so a restarted Job resumes where it stopped; these say which
  range and contracts the row covers (the follower's row has ``target_block`` NULL and all contracts);

catalog
- ``processed_events`` (new table): the consumer's exactly-once ledger, one row per event id with the
  epoch it was last applied or retracted at and whether it is applied, inserted/updated in the same
  transaction as the rows the event produced; redeliveries and reordered retractions are decided here;
- ``collections.registration`` / ``deploy_block`` / ``live_at``: how the collection entered the catalog
  (``created`` by the orchestrator, ``registered`` through RegisterCollection, ``discovered`` from the
  first transfer of a tracked contract the catalog did not know yet), where indexing starts, when it
  went live; ``ux_collections_chain_id_contract_address`` replaces the plain index: one collection per
  contract, so registration and discovery are idempotent;
- ``activities.event_id`` (+ unique index), ``collection_id``, ``block_number``, ``log_index``,
  ``batch_index``, ``quantity``: the activity an event produced is found by its event id (retractions
  delete exactly it), the owner is the recipient of the latest activity by chain position (not by
  arrival order), collection feeds page without joining tokens, ERC-1155 amounts are kept;
- ``collection_stats.updated_at``: when the stats were last recomputed;
- token listing indexes on ``(length(token_number), token_number)``: token numbers are decimal strings,
  and that pair orders them numerically for keyset pagination.

Forward-only: ``downgrade()`` raises.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXER = """
ALTER TABLE indexer.indexer_checkpoints
    ADD COLUMN reorg_epoch         bigint NOT NULL DEFAULT 0,
    ADD COLUMN pending_retractions jsonb,
    ADD COLUMN first_block         bigint,
    ADD COLUMN target_block        bigint,
    ADD COLUMN contracts           jsonb;
ALTER TABLE indexer.indexer_checkpoints
    ADD CONSTRAINT indexer_checkpoints_reorg_epoch_check CHECK (reorg_epoch >= 0),
    ADD CONSTRAINT indexer_checkpoints_pending_retractions_is_array_check
        CHECK (pending_retractions IS NULL OR jsonb_typeof(pending_retractions) = 'array');
"""

CATALOG = """
CREATE TABLE catalog.processed_events (
    event_id     text        NOT NULL,
    epoch        bigint      NOT NULL DEFAULT 0,
    applied      boolean     NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT processed_events_pkey PRIMARY KEY (event_id),
    CONSTRAINT processed_events_epoch_check CHECK (epoch >= 0)
);

ALTER TABLE catalog.collections
    ADD COLUMN registration text NOT NULL DEFAULT 'created',
    ADD COLUMN deploy_block bigint,
    ADD COLUMN live_at      timestamptz;
ALTER TABLE catalog.collections
    ADD CONSTRAINT collections_registration_check
        CHECK (registration IN ('created', 'registered', 'discovered')),
    ADD CONSTRAINT collections_deploy_block_check CHECK (deploy_block >= 0);
DROP INDEX catalog.ix_collections_chain_id_contract_address;
CREATE UNIQUE INDEX ux_collections_chain_id_contract_address
    ON catalog.collections (chain_id, contract_address) WHERE contract_address IS NOT NULL;

-- ListTokens: numeric token order inside a collection, and an owner's tokens across collections.
CREATE INDEX ix_tokens_collection_id_token_order
    ON catalog.tokens (collection_id, length(token_number), token_number);
DROP INDEX catalog.ix_tokens_owner_address;
CREATE INDEX ix_tokens_owner_address_token_order
    ON catalog.tokens (owner_address, collection_id, length(token_number), token_number);

ALTER TABLE catalog.activities
    ADD COLUMN event_id      text,
    ADD COLUMN collection_id uuid,
    ADD COLUMN block_number  bigint,
    ADD COLUMN log_index     integer,
    ADD COLUMN batch_index   integer,
    ADD COLUMN quantity      numeric NOT NULL DEFAULT 1;
ALTER TABLE catalog.activities
    ADD CONSTRAINT activities_collection_id_fkey FOREIGN KEY (collection_id)
        REFERENCES catalog.collections (id) ON DELETE CASCADE,
    ADD CONSTRAINT activities_position_check CHECK (block_number >= 0 AND log_index >= 0 AND batch_index >= 0),
    ADD CONSTRAINT activities_quantity_check CHECK (quantity >= 0);
CREATE UNIQUE INDEX ux_activities_event_id ON catalog.activities (event_id) WHERE event_id IS NOT NULL;
-- the current owner: the latest activity of a token by chain position
CREATE INDEX ix_activities_token_id_position
    ON catalog.activities (token_id, block_number DESC, log_index DESC, batch_index DESC);
-- feeds, newest first, keyset on ("timestamp", id)
CREATE INDEX ix_activities_collection_id_timestamp ON catalog.activities (collection_id, "timestamp" DESC, id DESC);
CREATE INDEX ix_activities_from_address_timestamp ON catalog.activities (from_address, "timestamp" DESC, id DESC);
CREATE INDEX ix_activities_to_address_timestamp ON catalog.activities (to_address, "timestamp" DESC, id DESC);

ALTER TABLE catalog.collection_stats
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
"""


def upgrade() -> None:
    op.execute(INDEXER)
    op.execute(CATALOG)


def downgrade() -> None:
    raise RuntimeError("mintplane migrations are forward-only: write a new revision instead of downgrading")

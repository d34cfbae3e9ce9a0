"""Catalog: token metadata with its fetch status, normalised traits, explainable rarity, browse indexes.

Why each change:
tokens
- ``description`` / ``animation_url`` / ``external_url`` / ``metadata``: what a token's metadata document
  says, kept so the API never refetches to answer (``metadata`` is the parsed document, size-capped);
- ``metadata_status`` (pending | ok | failed), ``metadata_error``, ``metadata_attempts``,
  ``metadata_fetched_at``, ``metadata_next_attempt_at``: the fetch state the API shows per token; a
  transient failure stays pending with a backoff time, a permanent one is failed with its reason;
- ``rarity_score`` / ``rarity_rank``: the token's OpenRarity information-content score and rank in its
  collection, written by the set-based recompute (never summed at read time);
- ``last_transfer_at``: when the token last moved, for the "recently transferred" sort;
- indexes: due metadata work, rarity order, mint and transfer recency inside a collection (keyset pages),
  metadata counts per collection;
collections / collection_stats
- one index per ListCollections sort (newest, name, traded volume, items, owners, floor), keyset-paged;
traits / trait_values
- ``traits.is_meta``: the trait-count trait OpenRarity adds (``meta_trait:trait_count``), stored like any
  other so it filters and explains the same way; ``traits.null_occurrences`` / ``null_rarity_score``:
  tokens lacking the trait count as its "null" value, whose contribution the explanation shows;
- one trait per (collection, normalized_name), one value per (trait, normalized_value): ingestion upserts;
- ``ix_trait_values_trait_id_value_number``: numeric range filters;
collection_stats
- ``metadata_pending`` / ``metadata_ok`` / ``metadata_failed``: metadata progress per collection (API and the
  Collection resource's status); ``metadata_refresh_requested_at``: the refresh rate limit's clock;
- ``rarity_entropy`` / ``rarity_computed_at`` / ``rarity_dirty``: the normaliser of the last recompute,
  when it ran, and whether traits changed since (the recompute picks dirty collections).

Forward-only: ``downgrade()`` raises.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = """
ALTER TABLE catalog.tokens
    ADD COLUMN description              text,
    ADD COLUMN animation_url            text,
    ADD COLUMN external_url             text,
    ADD COLUMN metadata                 jsonb,
    ADD COLUMN metadata_status          text    NOT NULL DEFAULT 'pending',
    ADD COLUMN metadata_error           text,
    ADD COLUMN metadata_attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN metadata_fetched_at      timestamptz,
    ADD COLUMN metadata_next_attempt_at timestamptz,
    ADD COLUMN rarity_score             numeric,
    ADD COLUMN rarity_rank              integer,
    ADD COLUMN last_transfer_at         timestamptz;
ALTER TABLE catalog.tokens
    ADD CONSTRAINT tokens_metadata_status_check CHECK (metadata_status IN ('pending', 'ok', 'failed')),
    ADD CONSTRAINT tokens_metadata_attempts_check CHECK (metadata_attempts >= 0),
    ADD CONSTRAINT tokens_rarity_check CHECK (rarity_score >= 0 AND rarity_rank >= 1);

-- the metadata worker: pending tokens, soonest due first
CREATE INDEX ix_tokens_metadata_due ON catalog.tokens (metadata_next_attempt_at NULLS FIRST)
    WHERE metadata_status = 'pending';
CREATE INDEX ix_tokens_collection_id_metadata_status ON catalog.tokens (collection_id, metadata_status);
-- ListTokens sorted by rarity (rank, then token number) and by last transfer, keyset-paged
CREATE INDEX ix_tokens_collection_id_rarity
    ON catalog.tokens (collection_id, rarity_rank, length(token_number), token_number);
CREATE INDEX ix_tokens_collection_id_last_transfer
    ON catalog.tokens (collection_id, last_transfer_at DESC NULLS LAST, id DESC);
CREATE INDEX ix_tokens_collection_id_minted
    ON catalog.tokens (collection_id, minted_at DESC NULLS LAST, id DESC);
-- exact filtered totals: a filter's matches less the (few) burned tokens among them
CREATE INDEX ix_tokens_collection_id_burned ON catalog.tokens (collection_id) WHERE burned;
-- ListTokens' query: a name substring (trigrams; pg_trgm is a trusted extension the database owner may add)
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX ix_tokens_name_trgm ON catalog.tokens USING gin (name gin_trgm_ops);
-- ListCollections: one index per sort (newest, name, volume; items, owners and floor from the stats)
CREATE INDEX ix_collections_created_at ON catalog.collections (created_at DESC, id DESC);
CREATE INDEX ix_collections_name ON catalog.collections (name, id);
CREATE INDEX ix_collections_volume
    ON catalog.collections (((coalesce(volume_traded, '0'))::numeric) DESC, id DESC);
CREATE INDEX ix_collection_stats_items ON catalog.collection_stats (items_count DESC, collection_id DESC);
CREATE INDEX ix_collection_stats_owners ON catalog.collection_stats (owners_count DESC, collection_id DESC);
CREATE INDEX ix_collection_stats_floor ON catalog.collection_stats (floor_price_native, collection_id)
    WHERE floor_price_native IS NOT NULL;

ALTER TABLE catalog.traits
    ADD COLUMN is_meta           boolean NOT NULL DEFAULT false,
    ADD COLUMN null_occurrences  integer NOT NULL DEFAULT 0,
    ADD COLUMN null_rarity_score numeric;
ALTER TABLE catalog.traits
    ADD CONSTRAINT traits_null_check CHECK (null_occurrences >= 0 AND null_rarity_score >= 0);
CREATE UNIQUE INDEX ux_traits_collection_id_normalized_name ON catalog.traits (collection_id, normalized_name);
CREATE UNIQUE INDEX ux_trait_values_trait_id_normalized_value
    ON catalog.trait_values (trait_id, normalized_value);
CREATE INDEX ix_trait_values_trait_id_value_number ON catalog.trait_values (trait_id, value_number)
    WHERE value_number IS NOT NULL;

ALTER TABLE catalog.collection_stats
    ADD COLUMN metadata_pending              integer NOT NULL DEFAULT 0,
    ADD COLUMN metadata_ok                   integer NOT NULL DEFAULT 0,
    ADD COLUMN metadata_failed               integer NOT NULL DEFAULT 0,
    ADD COLUMN metadata_refresh_requested_at timestamptz,
    ADD COLUMN rarity_entropy                numeric,
    ADD COLUMN rarity_computed_at            timestamptz,
    ADD COLUMN rarity_dirty                  boolean NOT NULL DEFAULT false;
ALTER TABLE catalog.collection_stats
    ADD CONSTRAINT collection_stats_metadata_check
        CHECK (metadata_pending >= 0 AND metadata_ok >= 0 AND metadata_failed >= 0);
CREATE INDEX ix_collection_stats_rarity_dirty ON catalog.collection_stats (collection_id) WHERE rarity_dirty;
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise RuntimeError("mintplane migrations are forward-only: write a new revision instead of downgrading")

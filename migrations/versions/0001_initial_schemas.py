"""Initial schemas: one PostgreSQL schema per owning service.

Source of record: the per-service typed erDiagrams of ``seeds/000_91e01461766db08c.txt`` (Auth, User,
Wallet, Catalog core, Catalog marketplace, Chain Registry, Orchestrator); ``collection_stats``,
``token_balances``, ``ownership_transfers`` and ``indexer_checkpoints`` come from its overview diagram.
Every column that is not in the seed is listed with ``origin: added`` and a reason in
``migrations/manifest.yaml``.

Rules applied throughout:
- each service owns one schema; foreign keys stay inside a schema. Cross-service links (a session's
  ``user_id``, a wallet's ``user_id``, an intent's ``created_by``...) are logical ids, not constraints;
- uuid keys default to ``gen_random_uuid()`` (built into PostgreSQL 13+), audit timestamps to ``now()``;
- counters are ``NOT NULL DEFAULT 0`` and checked non-negative, amounts are checked non-negative;
- addresses, hashes and token ids are stored as the seed types them; services normalise EVM addresses
  (lowercase) before writing, because uniqueness is byte-exact.

Forward-only: ``downgrade()`` raises. Fix a bad migration with a new revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


AUTH = """
CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE auth.auth_nonces (
    nonce       varchar(64)  NOT NULL,
    account_id  varchar(42)  NOT NULL,
    domain      varchar(255) NOT NULL,
    chain_id    varchar(32)  NOT NULL,
    issued_at   timestamptz  NOT NULL DEFAULT now(),
    expires_at  timestamptz  NOT NULL,
    used        boolean      NOT NULL DEFAULT false,
    used_at     timestamptz,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT auth_nonces_pkey PRIMARY KEY (nonce)
);
CREATE INDEX ix_auth_nonces_expires_at ON auth.auth_nonces (expires_at);

CREATE TABLE auth.sessions (
    session_id                uuid         NOT NULL DEFAULT gen_random_uuid(),
    user_id                   uuid         NOT NULL,
    device_id                 uuid,
    refresh_hash              varchar(128) NOT NULL,
    ip_address                inet,
    user_agent                text,
    created_at                timestamptz  NOT NULL DEFAULT now(),
    expires_at                timestamptz  NOT NULL,
    revoked_at                timestamptz,
    last_used_at              timestamptz,
    collection_intent_context jsonb,
    CONSTRAINT sessions_pkey PRIMARY KEY (session_id),
    CONSTRAINT sessions_refresh_hash_key UNIQUE (refresh_hash)
);
CREATE INDEX ix_sessions_user_id ON auth.sessions (user_id);

CREATE TABLE auth.login_events (
    id            uuid         NOT NULL DEFAULT gen_random_uuid(),
    user_id       uuid,
    account_id    varchar(42),
    ip_address    inet,
    user_agent    text,
    result        varchar(32)  NOT NULL,
    error_message text,
    chain_id      varchar(32),
    domain        varchar(255),
    "timestamp"   timestamptz  NOT NULL DEFAULT now(),
    session_id    uuid,
    nonce         varchar(64),
    CONSTRAINT login_events_pkey PRIMARY KEY (id),
    CONSTRAINT login_events_session_id_fkey FOREIGN KEY (session_id)
        REFERENCES auth.sessions (session_id) ON DELETE SET NULL,
    CONSTRAINT login_events_nonce_fkey FOREIGN KEY (nonce)
        REFERENCES auth.auth_nonces (nonce) ON DELETE SET NULL
);
CREATE INDEX ix_login_events_account_id_timestamp ON auth.login_events (account_id, "timestamp" DESC);
CREATE INDEX ix_login_events_user_id_timestamp ON auth.login_events (user_id, "timestamp" DESC);
CREATE INDEX ix_login_events_session_id ON auth.login_events (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX ix_login_events_nonce ON auth.login_events (nonce) WHERE nonce IS NOT NULL;
"""

USERS = """
CREATE SCHEMA IF NOT EXISTS users;

CREATE TABLE users.users (
    user_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
    status     varchar(32) NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (user_id)
);

CREATE TABLE users.profiles (
    user_id      uuid        NOT NULL,
    username     varchar(30),
    display_name varchar(50),
    avatar_url   text,
    banner_url   text,
    bio          text,
    locale       varchar(10),
    timezone     varchar(50),
    socials_json jsonb,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT profiles_pkey PRIMARY KEY (user_id),
    CONSTRAINT profiles_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users.users (user_id) ON DELETE CASCADE
);
-- usernames are unique case-insensitively ("Alice" and "alice" are the same handle)
CREATE UNIQUE INDEX ux_profiles_username_lower ON users.profiles (lower(username));

CREATE TABLE users.user_preferences (
    user_id             uuid        NOT NULL,
    email_notifications boolean     NOT NULL DEFAULT true,
    push_notifications  boolean     NOT NULL DEFAULT true,
    marketing_emails    boolean     NOT NULL DEFAULT false,
    language            varchar(10),
    currency            varchar(10),
    theme               varchar(20),
    privacy_level       varchar(20),
    show_activity       boolean     NOT NULL DEFAULT true,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_preferences_pkey PRIMARY KEY (user_id),
    CONSTRAINT user_preferences_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users.users (user_id) ON DELETE CASCADE
);

CREATE TABLE users.user_stats (
    user_id           uuid        NOT NULL,
    collections_count integer     NOT NULL DEFAULT 0,
    items_count       integer     NOT NULL DEFAULT 0,
    listings_count    integer     NOT NULL DEFAULT 0,
    sales_count       integer     NOT NULL DEFAULT 0,
    purchases_count   integer     NOT NULL DEFAULT 0,
    volume_sold       numeric     NOT NULL DEFAULT 0,
    volume_purchased  numeric     NOT NULL DEFAULT 0,
    followers_count   integer     NOT NULL DEFAULT 0,
    following_count   integer     NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_stats_pkey PRIMARY KEY (user_id),
    CONSTRAINT user_stats_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users.users (user_id) ON DELETE CASCADE,
    CONSTRAINT user_stats_non_negative_check CHECK (
        collections_count >= 0 AND items_count >= 0 AND listings_count >= 0 AND sales_count >= 0
        AND purchases_count >= 0 AND volume_sold >= 0 AND volume_purchased >= 0
        AND followers_count >= 0 AND following_count >= 0
    )
);

CREATE TABLE users.user_follows (
    follower_id  uuid        NOT NULL,
    following_id uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_follows_pkey PRIMARY KEY (follower_id, following_id),
    CONSTRAINT user_follows_follower_id_fkey FOREIGN KEY (follower_id)
        REFERENCES users.users (user_id) ON DELETE CASCADE,
    CONSTRAINT user_follows_following_id_fkey FOREIGN KEY (following_id)
        REFERENCES users.users (user_id) ON DELETE CASCADE,
    CONSTRAINT user_follows_no_self_follow_check CHECK (follower_id <> following_id)
);
-- followers of X / followed by X, newest first, keyset-paginated on (created_at, other id)
CREATE INDEX ix_user_follows_following_id_created_at
    ON users.user_follows (following_id, created_at DESC, follower_id DESC);
CREATE INDEX ix_user_follows_follower_id_created_at
    ON users.user_follows (follower_id, created_at DESC, following_id DESC);
"""

WALLET = """
CREATE SCHEMA IF NOT EXISTS wallet;

CREATE TABLE wallet.wallet_links (
    wallet_id   uuid         NOT NULL DEFAULT gen_random_uuid(),
    user_id     uuid         NOT NULL,
    account_id  varchar(255),
    address     varchar(42)  NOT NULL,
    chain_id    varchar(32)  NOT NULL,
    is_primary  boolean      NOT NULL DEFAULT false,
    type        varchar(20),
    connector   varchar(50),
    label       varchar(100),
    verified_at timestamptz,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT wallet_links_pkey PRIMARY KEY (wallet_id),
    CONSTRAINT wallet_links_address_chain_id_key UNIQUE (address, chain_id)
);
CREATE INDEX ix_wallet_links_user_id ON wallet.wallet_links (user_id);
-- at most one primary wallet per user
CREATE UNIQUE INDEX ux_wallet_links_primary_per_user ON wallet.wallet_links (user_id) WHERE is_primary;

CREATE TABLE wallet.wallet_activity (
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    wallet_id  uuid        NOT NULL,
    user_id    uuid,
    action     varchar(50) NOT NULL,
    metadata   jsonb,
    ip_address inet,
    user_agent text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wallet_activity_pkey PRIMARY KEY (id),
    CONSTRAINT wallet_activity_wallet_id_fkey FOREIGN KEY (wallet_id)
        REFERENCES wallet.wallet_links (wallet_id) ON DELETE CASCADE
);
CREATE INDEX ix_wallet_activity_wallet_id_created_at ON wallet.wallet_activity (wallet_id, created_at DESC);

CREATE TABLE wallet.wallet_verifications (
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    wallet_id         uuid        NOT NULL,
    verification_type varchar(50) NOT NULL,
    verification_data jsonb,
    status            varchar(20) NOT NULL DEFAULT 'pending',
    verified_at       timestamptz,
    expires_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wallet_verifications_pkey PRIMARY KEY (id),
    CONSTRAINT wallet_verifications_wallet_id_fkey FOREIGN KEY (wallet_id)
        REFERENCES wallet.wallet_links (wallet_id) ON DELETE CASCADE
);
CREATE INDEX ix_wallet_verifications_wallet_id ON wallet.wallet_verifications (wallet_id);
"""

ORCHESTRATOR = """
CREATE SCHEMA IF NOT EXISTS orchestrator;

CREATE TABLE orchestrator.tx_intents (
    intent_id        uuid         NOT NULL DEFAULT gen_random_uuid(),
    kind             text         NOT NULL,
    chain_id         text         NOT NULL,
    preview_address  text,
    tx_hash          text,
    status           text         NOT NULL DEFAULT 'pending',
    created_by       uuid         NOT NULL,
    req_payload_json jsonb,
    error            text,
    auth_session_id  varchar(255),
    deadline_at      timestamptz,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT tx_intents_pkey PRIMARY KEY (intent_id)
);
CREATE INDEX ix_tx_intents_created_by_created_at ON orchestrator.tx_intents (created_by, created_at DESC);
CREATE INDEX ix_tx_intents_status ON orchestrator.tx_intents (status);
-- the indexer reports confirmations by transaction hash
CREATE INDEX ix_tx_intents_chain_id_tx_hash ON orchestrator.tx_intents (chain_id, tx_hash)
    WHERE tx_hash IS NOT NULL;

CREATE TABLE orchestrator.session_intent_audit (
    audit_id              uuid         NOT NULL DEFAULT gen_random_uuid(),
    session_id            varchar(255) NOT NULL,
    intent_id             uuid         NOT NULL,
    user_id               uuid,
    correlation_timestamp timestamptz  NOT NULL DEFAULT now(),
    audit_data            jsonb,
    created_at            timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT session_intent_audit_pkey PRIMARY KEY (audit_id),
    CONSTRAINT session_intent_audit_intent_id_fkey FOREIGN KEY (intent_id)
        REFERENCES orchestrator.tx_intents (intent_id) ON DELETE CASCADE
);
CREATE INDEX ix_session_intent_audit_intent_id ON orchestrator.session_intent_audit (intent_id);
CREATE INDEX ix_session_intent_audit_session_id ON orchestrator.session_intent_audit (session_id);
"""

CHAIN_REGISTRY = """
CREATE SCHEMA IF NOT EXISTS chain_registry;

CREATE TABLE chain_registry.chains (
    id            integer GENERATED BY DEFAULT AS IDENTITY,
    caip2         text    NOT NULL,
    chain_numeric integer NOT NULL,
    name          text    NOT NULL,
    native_symbol text,
    decimals      integer NOT NULL DEFAULT 18,
    explorer_url  text,
    enabled       boolean NOT NULL DEFAULT true,
    features_json jsonb,
    CONSTRAINT chains_pkey PRIMARY KEY (id),
    CONSTRAINT chains_caip2_key UNIQUE (caip2),
    CONSTRAINT chains_chain_numeric_key UNIQUE (chain_numeric),
    CONSTRAINT chains_chain_numeric_check CHECK (chain_numeric > 0),
    CONSTRAINT chains_decimals_check CHECK (decimals >= 0)
);

CREATE TABLE chain_registry.chain_endpoints (
    id         integer GENERATED BY DEFAULT AS IDENTITY,
    chain_id   integer NOT NULL,
    url        text    NOT NULL,
    priority   integer NOT NULL DEFAULT 0,
    weight     integer NOT NULL DEFAULT 1,
    auth_type  text,
    rate_limit integer,
    active     boolean NOT NULL DEFAULT true,
    CONSTRAINT chain_endpoints_pkey PRIMARY KEY (id),
    CONSTRAINT chain_endpoints_chain_id_fkey FOREIGN KEY (chain_id)
        REFERENCES chain_registry.chains (id) ON DELETE CASCADE,
    CONSTRAINT chain_endpoints_chain_id_url_key UNIQUE (chain_id, url),
    CONSTRAINT chain_endpoints_priority_check CHECK (priority >= 0),
    CONSTRAINT chain_endpoints_weight_check CHECK (weight >= 0),
    CONSTRAINT chain_endpoints_rate_limit_check CHECK (rate_limit >= 0)
);
-- endpoint selection: by chain, lowest priority number first, weighted within a priority
CREATE INDEX ix_chain_endpoints_chain_id_priority_weight
    ON chain_registry.chain_endpoints (chain_id, priority, weight);

CREATE TABLE chain_registry.abi_blobs (
    sha256        varchar     NOT NULL,
    size_bytes    integer,
    source        text,
    compiler      text,
    contract_name text,
    standard      text,
    abi_json      jsonb       NOT NULL,
    s3_key        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT abi_blobs_pkey PRIMARY KEY (sha256),
    CONSTRAINT abi_blobs_size_bytes_check CHECK (size_bytes >= 0)
);

CREATE TABLE chain_registry.chain_contracts (
    id            bigint GENERATED BY DEFAULT AS IDENTITY,
    chain_id      integer     NOT NULL,
    name          text,
    address       text        NOT NULL,
    start_block   integer,
    abi_sha256    varchar,
    impl_address  text,
    standard      text,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chain_contracts_pkey PRIMARY KEY (id),
    CONSTRAINT chain_contracts_chain_id_fkey FOREIGN KEY (chain_id)
        REFERENCES chain_registry.chains (id),
    CONSTRAINT chain_contracts_abi_sha256_fkey FOREIGN KEY (abi_sha256)
        REFERENCES chain_registry.abi_blobs (sha256),
    CONSTRAINT chain_contracts_chain_id_address_key UNIQUE (chain_id, address),
    CONSTRAINT chain_contracts_start_block_check CHECK (start_block >= 0)
);
CREATE INDEX ix_chain_contracts_abi_sha256 ON chain_registry.chain_contracts (abi_sha256);

CREATE TABLE chain_registry.chain_gas_policy (
    chain_id                    integer     NOT NULL,
    max_fee_gwei                numeric,
    priority_fee_gwei           numeric,
    multiplier                  numeric     NOT NULL DEFAULT 1,
    last_observed_base_fee_gwei numeric,
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chain_gas_policy_pkey PRIMARY KEY (chain_id),
    CONSTRAINT chain_gas_policy_chain_id_fkey FOREIGN KEY (chain_id)
        REFERENCES chain_registry.chains (id) ON DELETE CASCADE,
    CONSTRAINT chain_gas_policy_non_negative_check CHECK (
        max_fee_gwei >= 0 AND priority_fee_gwei >= 0 AND last_observed_base_fee_gwei >= 0
    ),
    CONSTRAINT chain_gas_policy_multiplier_check CHECK (multiplier > 0)
);
"""

CATALOG = """
CREATE SCHEMA IF NOT EXISTS catalog;

CREATE TABLE catalog.collections (
    id                 uuid        NOT NULL DEFAULT gen_random_uuid(),
    slug               text        NOT NULL,
    name               text        NOT NULL,
    description        text,
    chain_id           text        NOT NULL,
    contract_address   text,
    creator            text,
    owner              text,
    collection_type    text,
    max_supply         text,
    total_supply       text,
    royalty_percentage integer,
    mint_price         text,
    floor_price        text,
    volume_traded      text,
    is_verified        boolean     NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    status             text        NOT NULL DEFAULT 'pending',
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT collections_pkey PRIMARY KEY (id),
    CONSTRAINT collections_slug_key UNIQUE (slug),
    CONSTRAINT collections_royalty_percentage_check CHECK (royalty_percentage BETWEEN 0 AND 100)
);
CREATE INDEX ix_collections_chain_id_contract_address ON catalog.collections (chain_id, contract_address);

CREATE TABLE catalog.tokens (
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    collection_id    uuid        NOT NULL,
    chain_id         text,
    contract_address text,
    token_number     text        NOT NULL,
    token_standard   text,
    name             text,
    image_url        text,
    metadata_url     text,
    owner_address    text,
    burned           boolean     NOT NULL DEFAULT false,
    minted_at        timestamptz,
    CONSTRAINT tokens_pkey PRIMARY KEY (id),
    CONSTRAINT tokens_collection_id_fkey FOREIGN KEY (collection_id)
        REFERENCES catalog.collections (id) ON DELETE CASCADE,
    CONSTRAINT tokens_collection_id_token_number_key UNIQUE (collection_id, token_number)
);
CREATE INDEX ix_tokens_collection_id_owner_address ON catalog.tokens (collection_id, owner_address);
CREATE INDEX ix_tokens_owner_address ON catalog.tokens (owner_address);

CREATE TABLE catalog.traits (
    id              uuid    NOT NULL DEFAULT gen_random_uuid(),
    collection_id   uuid    NOT NULL,
    name            text    NOT NULL,
    normalized_name text,
    value_type      text,
    display_type    text,
    sort_order      integer,
    CONSTRAINT traits_pkey PRIMARY KEY (id),
    CONSTRAINT traits_collection_id_fkey FOREIGN KEY (collection_id)
        REFERENCES catalog.collections (id) ON DELETE CASCADE
);
CREATE INDEX ix_traits_collection_id ON catalog.traits (collection_id);

CREATE TABLE catalog.trait_values (
    id               uuid    NOT NULL DEFAULT gen_random_uuid(),
    trait_id         uuid    NOT NULL,
    value_string     text,
    value_number     numeric,
    normalized_value text,
    occurrences      integer NOT NULL DEFAULT 0,
    rarity_score     numeric,
    CONSTRAINT trait_values_pkey PRIMARY KEY (id),
    CONSTRAINT trait_values_trait_id_fkey FOREIGN KEY (trait_id)
        REFERENCES catalog.traits (id) ON DELETE CASCADE,
    CONSTRAINT trait_values_occurrences_check CHECK (occurrences >= 0),
    CONSTRAINT trait_values_rarity_score_check CHECK (rarity_score >= 0)
);
CREATE INDEX ix_trait_values_trait_id ON catalog.trait_values (trait_id);

CREATE TABLE catalog.token_trait_links (
    token_id       uuid NOT NULL,
    trait_id       uuid NOT NULL,
    trait_value_id uuid NOT NULL,
    CONSTRAINT token_trait_links_pkey PRIMARY KEY (token_id, trait_id, trait_value_id),
    CONSTRAINT token_trait_links_token_id_fkey FOREIGN KEY (token_id)
        REFERENCES catalog.tokens (id) ON DELETE CASCADE,
    CONSTRAINT token_trait_links_trait_id_fkey FOREIGN KEY (trait_id)
        REFERENCES catalog.traits (id) ON DELETE CASCADE,
    CONSTRAINT token_trait_links_trait_value_id_fkey FOREIGN KEY (trait_value_id)
        REFERENCES catalog.trait_values (id) ON DELETE CASCADE
);
-- trait filters: tokens having a given trait value
CREATE INDEX ix_token_trait_links_trait_value_id ON catalog.token_trait_links (trait_value_id, token_id);
CREATE INDEX ix_token_trait_links_trait_id ON catalog.token_trait_links (trait_id);

CREATE TABLE catalog.marketplaces (
    id   uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    CONSTRAINT marketplaces_pkey PRIMARY KEY (id),
    CONSTRAINT marketplaces_name_key UNIQUE (name)
);

CREATE TABLE catalog.listings (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    token_id        uuid        NOT NULL,
    marketplace_id  uuid,
    price_native    numeric     NOT NULL,
    currency_symbol text,
    is_active       boolean     NOT NULL DEFAULT true,
    seller_address  text,
    listed_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    tx_hash         text,
    CONSTRAINT listings_pkey PRIMARY KEY (id),
    CONSTRAINT listings_token_id_fkey FOREIGN KEY (token_id)
        REFERENCES catalog.tokens (id) ON DELETE CASCADE,
    CONSTRAINT listings_marketplace_id_fkey FOREIGN KEY (marketplace_id)
        REFERENCES catalog.marketplaces (id),
    CONSTRAINT listings_price_native_check CHECK (price_native >= 0)
);
CREATE INDEX ix_listings_token_id ON catalog.listings (token_id);
-- active listings of a token, cheapest first
CREATE INDEX ix_listings_active_token_id_price ON catalog.listings (token_id, price_native) WHERE is_active;

CREATE TABLE catalog.offers (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    token_id        uuid        NOT NULL,
    marketplace_id  uuid,
    price_native    numeric     NOT NULL,
    currency_symbol text,
    from_address    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    tx_hash         text,
    CONSTRAINT offers_pkey PRIMARY KEY (id),
    CONSTRAINT offers_token_id_fkey FOREIGN KEY (token_id)
        REFERENCES catalog.tokens (id) ON DELETE CASCADE,
    CONSTRAINT offers_marketplace_id_fkey FOREIGN KEY (marketplace_id)
        REFERENCES catalog.marketplaces (id),
    CONSTRAINT offers_price_native_check CHECK (price_native >= 0)
);
CREATE INDEX ix_offers_token_id_price ON catalog.offers (token_id, price_native DESC);

CREATE TABLE catalog.sales (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    token_id        uuid        NOT NULL,
    marketplace_id  uuid,
    price_native    numeric     NOT NULL,
    currency_symbol text,
    tx_hash         text,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sales_pkey PRIMARY KEY (id),
    CONSTRAINT sales_token_id_fkey FOREIGN KEY (token_id)
        REFERENCES catalog.tokens (id) ON DELETE CASCADE,
    CONSTRAINT sales_marketplace_id_fkey FOREIGN KEY (marketplace_id)
        REFERENCES catalog.marketplaces (id),
    CONSTRAINT sales_price_native_check CHECK (price_native >= 0)
);
CREATE INDEX ix_sales_token_id_occurred_at ON catalog.sales (token_id, occurred_at DESC);

CREATE TABLE catalog.activities (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    token_id        uuid        NOT NULL,
    type            text        NOT NULL,
    from_address    text,
    to_address      text,
    price_native    numeric,
    currency_symbol text,
    tx_hash         text,
    "timestamp"     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT activities_pkey PRIMARY KEY (id),
    CONSTRAINT activities_token_id_fkey FOREIGN KEY (token_id)
        REFERENCES catalog.tokens (id) ON DELETE CASCADE,
    CONSTRAINT activities_price_native_check CHECK (price_native >= 0)
);
CREATE INDEX ix_activities_token_id_timestamp ON catalog.activities (token_id, "timestamp" DESC);

CREATE TABLE catalog.collection_stats (
    collection_id      uuid    NOT NULL,
    items_count        integer NOT NULL DEFAULT 0,
    owners_count       integer NOT NULL DEFAULT 0,
    floor_price_native numeric,
    CONSTRAINT collection_stats_pkey PRIMARY KEY (collection_id),
    CONSTRAINT collection_stats_collection_id_fkey FOREIGN KEY (collection_id)
        REFERENCES catalog.collections (id) ON DELETE CASCADE,
    CONSTRAINT collection_stats_non_negative_check CHECK (
        items_count >= 0 AND owners_count >= 0 AND floor_price_native >= 0
    )
);
"""

INDEXER = """
CREATE SCHEMA IF NOT EXISTS indexer;

CREATE TABLE indexer.indexer_checkpoints (
    chain_id        text        NOT NULL,
    last_block      bigint      NOT NULL,
    last_block_hash text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT indexer_checkpoints_pkey PRIMARY KEY (chain_id),
    CONSTRAINT indexer_checkpoints_last_block_check CHECK (last_block >= 0)
);

CREATE TABLE indexer.token_balances (
    chain_id text    NOT NULL,
    contract text    NOT NULL,
    token_id text    NOT NULL,
    owner    text    NOT NULL,
    quantity numeric NOT NULL,
    CONSTRAINT token_balances_pkey PRIMARY KEY (chain_id, contract, token_id, owner),
    CONSTRAINT token_balances_quantity_check CHECK (quantity >= 0)
);
CREATE INDEX ix_token_balances_chain_id_owner ON indexer.token_balances (chain_id, owner);

-- One row per transferred (token id, amount) pair. A log is identified by (block_hash, log_index);
-- an ERC-1155 TransferBatch log carries several pairs, told apart by batch_index (0 otherwise).
-- block_hash in the key keeps replays idempotent and lets a reorg delete exactly the orphaned rows.
CREATE TABLE indexer.ownership_transfers (
    chain_id     text        NOT NULL,
    contract     text        NOT NULL,
    token_id     text        NOT NULL,
    from_addr    text        NOT NULL,
    to_addr      text        NOT NULL,
    tx_hash      text        NOT NULL,
    block_number bigint      NOT NULL,
    block_hash   text        NOT NULL,
    log_index    integer     NOT NULL,
    batch_index  integer     NOT NULL DEFAULT 0,
    quantity     numeric     NOT NULL DEFAULT 1,
    "timestamp"  timestamptz,
    CONSTRAINT ownership_transfers_pkey PRIMARY KEY (chain_id, block_hash, log_index, batch_index),
    CONSTRAINT ownership_transfers_non_negative_check CHECK (
        block_number >= 0 AND log_index >= 0 AND batch_index >= 0 AND quantity >= 0
    )
);
CREATE INDEX ix_ownership_transfers_token
    ON indexer.ownership_transfers (chain_id, contract, token_id, block_number, log_index);
CREATE INDEX ix_ownership_transfers_chain_id_block_number
    ON indexer.ownership_transfers (chain_id, block_number);
"""

SCHEMAS: tuple[str, ...] = (AUTH, USERS, WALLET, ORCHESTRATOR, CHAIN_REGISTRY, CATALOG, INDEXER)


def upgrade() -> None:
    for ddl in SCHEMAS:
        op.execute(ddl)


def downgrade() -> None:
    raise RuntimeError("mintplane migrations are forward-only: write a new revision instead of downgrading")

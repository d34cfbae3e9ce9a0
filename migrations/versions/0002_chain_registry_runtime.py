"""Chain registry at run time: endpoint health and credential references, change timestamps, guard rails.

Why each change:
- ``chains.created_at`` / ``updated_at`` / ``disabled_at``: DisableChain keeps the row for history, so
  *when* a chain was disabled (and last changed) is part of that history; ``disabled_at`` is set exactly
  while ``enabled`` is false (existing disabled rows are back-filled with the migration time);
- ``chain_endpoints.auth_secret_ref``: an endpoint that needs an API key names where the key lives
  (``secret://<namespace>/<name>/<key>``, a Kubernetes Secret the operator holds) instead of carrying it:
  the registry never stores a credential, and a URL with ``user:password@`` is refused by a check;
- ``chain_endpoints.latency_ms`` / ``head_block`` / ``blocks_behind`` / ``last_error`` / ``checked_at``:
  what the operator's periodic probe (eth_chainId, eth_blockNumber) last saw, written by
  SetEndpointHealth; ``blocks_behind`` is computed against the chain's other fresh probes;
- ``chain_endpoints.created_at`` / ``updated_at``, ``chain_contracts.updated_at``: audit of config edits;
- checks on the registry's own formats (CAIP-2 agrees with chain_numeric, lowercase 0x addresses,
  lowercase hex SHA-256, the auth_type and standard vocabularies, non-negative probe numbers, priority fee
  not above the max fee) so a bad row cannot enter even by hand. They are added ``NOT VALID`` where old
  rows might not satisfy them: new and updated rows are checked, existing rows are left alone;
- ``ix_chain_contracts_chain_id_id``: ListContracts pages a chain's contracts by id.

Forward-only: ``downgrade()`` raises.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = r"""
ALTER TABLE chain_registry.chains
    ADD COLUMN created_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN disabled_at timestamptz;
UPDATE chain_registry.chains SET disabled_at = now() WHERE NOT enabled AND disabled_at IS NULL;
ALTER TABLE chain_registry.chains
    ADD CONSTRAINT chains_disabled_at_check CHECK (enabled = (disabled_at IS NULL)),
    ADD CONSTRAINT chains_caip2_matches_chain_numeric_check
        CHECK (caip2 = 'eip155:' || chain_numeric::text) NOT VALID;

ALTER TABLE chain_registry.chain_endpoints
    ADD COLUMN auth_secret_ref text,
    ADD COLUMN latency_ms      integer,
    ADD COLUMN head_block      bigint,
    ADD COLUMN blocks_behind   bigint,
    ADD COLUMN last_error      text,
    ADD COLUMN checked_at      timestamptz,
    ADD COLUMN created_at      timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now();
ALTER TABLE chain_registry.chain_endpoints
    ADD CONSTRAINT chain_endpoints_auth_type_check
        CHECK (auth_type IN ('none', 'api_key_path', 'api_key_header', 'bearer', 'basic')) NOT VALID,
    ADD CONSTRAINT chain_endpoints_auth_secret_ref_check
        CHECK (auth_secret_ref IS NULL OR auth_secret_ref ~ '^secret://[^/]+/[^/]+/[^/]+$') NOT VALID,
    ADD CONSTRAINT chain_endpoints_url_without_credentials_check
        CHECK (url !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@') NOT VALID,
    ADD CONSTRAINT chain_endpoints_probe_non_negative_check
        CHECK (latency_ms >= 0 AND head_block >= 0 AND blocks_behind >= 0);

ALTER TABLE chain_registry.abi_blobs
    ADD CONSTRAINT abi_blobs_sha256_format_check CHECK (sha256 ~ '^[0-9a-f]{64}$') NOT VALID,
    ADD CONSTRAINT abi_blobs_abi_json_is_array_check CHECK (jsonb_typeof(abi_json) = 'array') NOT VALID,
    ADD CONSTRAINT abi_blobs_standard_check
        CHECK (standard IN ('ERC721', 'ERC1155', 'ERC20', 'OTHER')) NOT VALID;

ALTER TABLE chain_registry.chain_contracts
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE chain_registry.chain_contracts
    ADD CONSTRAINT chain_contracts_address_format_check CHECK (address ~ '^0x[0-9a-f]{40}$') NOT VALID,
    ADD CONSTRAINT chain_contracts_impl_address_format_check
        CHECK (impl_address ~ '^0x[0-9a-f]{40}$') NOT VALID,
    ADD CONSTRAINT chain_contracts_standard_check
        CHECK (standard IN ('ERC721', 'ERC1155', 'ERC20', 'OTHER')) NOT VALID;
CREATE INDEX ix_chain_contracts_chain_id_id ON chain_registry.chain_contracts (chain_id, id);

ALTER TABLE chain_registry.chain_gas_policy
    ADD CONSTRAINT chain_gas_policy_priority_fee_within_max_check
        CHECK (priority_fee_gwei <= max_fee_gwei) NOT VALID;
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise RuntimeError("mintplane migrations are forward-only: write a new revision instead of downgrading")

"""Chain endpoints name where their API key goes: header name or query parameter (``auth_param``).

Why each change:
- ``chain_endpoints.auth_param``: a ChainEndpoint with ``authType: header`` or ``query`` names the header
  (``x-api-key``) or query parameter (``apikey``) that carries its key; consumers (indexer, orchestrator,
  auth's EIP-1271 calls) cannot attach the key without it. Nullable: only those two auth types have one;
- ``chain_endpoints_auth_type_check`` is widened to ``api_key_query`` (key sent as a query parameter). It
  stays ``NOT VALID`` like the 0002 original: rows older than 0002 are not re-checked;
- ``chain_endpoints_auth_param_format_check``: an HTTP token of 1-64 characters (RFC 9110 field-name
  syntax), which is also a safe query parameter name. Validated: the column is new, every row is NULL;
- ``chain_endpoints_auth_param_check``: ``auth_param`` is set exactly when ``auth_type`` is
  ``api_key_header`` or ``api_key_query``. Rows that existed before this revision are exempt from the
  "required" half through a ``created_at`` cutoff taken once the table is locked: ``api_key_header`` rows
  were written without a header name (the API had no field for it), and a ``NOT VALID`` constraint would
  not help, because PostgreSQL re-checks every *updated* row, so the next probe result (or the lag
  recomputation touching every endpoint of the chain) would fail. The exemption only lets such a row keep
  its NULL; the service refuses any write without a name, so the row gets one on its next upsert (the
  operator re-upserts every endpoint when it starts). Rows created after this revision are held exactly.

Forward-only: ``downgrade()`` raises.

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = r"""
-- ADD COLUMN takes the table's ACCESS EXCLUSIVE lock: no row is written between it and the cutoff below.
ALTER TABLE chain_registry.chain_endpoints ADD COLUMN auth_param text;

ALTER TABLE chain_registry.chain_endpoints
    DROP CONSTRAINT chain_endpoints_auth_type_check,
    ADD CONSTRAINT chain_endpoints_auth_type_check
        CHECK (auth_type IN ('none', 'api_key_path', 'api_key_header', 'api_key_query', 'bearer', 'basic'))
        NOT VALID,
    ADD CONSTRAINT chain_endpoints_auth_param_format_check
        CHECK (auth_param ~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]{1,64}$');

-- The cutoff is a constant in the constraint (CHECK expressions must be immutable), taken from the clock now.
DO $do$
BEGIN
    EXECUTE format($ddl$
        ALTER TABLE chain_registry.chain_endpoints
            ADD CONSTRAINT chain_endpoints_auth_param_check CHECK (
                CASE WHEN auth_type IN ('api_key_header', 'api_key_query')
                     THEN auth_param IS NOT NULL OR created_at < %L
                     ELSE auth_param IS NULL
                END)$ddl$, clock_timestamp());
END
$do$;
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise RuntimeError("mintplane migrations are forward-only: write a new revision instead of downgrading")

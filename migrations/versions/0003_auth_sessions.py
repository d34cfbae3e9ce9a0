"""Auth sessions: who signed in, refresh-token history for reuse detection, and listing indexes.

Why each change:
- ``sessions.address`` / ``sessions.chain_id``: a session is opened by one signed EIP-4361 message; the
  address and CAIP-2 chain of that message are part of the session the API returns (``Session.address``,
  ``Session.chain``) and of every access token, and must survive without asking the wallet service;
- ``sessions.previous_refresh_hashes``: refresh tokens rotate on every use; presenting an *old* one means
  it was copied, so the whole session is revoked (RFC 9700 section 4.14.2). Detecting that needs the
  hashes of rotated tokens. A bounded jsonb array (newest first, capped by the service) rather than a
  table keeps one row per session; a GIN ``jsonb_path_ops`` index serves the ``@>`` reuse lookup;
- ``sessions.revoked_reason``: why a session ended (sign_out, revoked, refresh_reuse, user_blocked), for
  the account-security page and audits;
- ``ix_sessions_user_id_created_at`` replaces ``ix_sessions_user_id``: ListSessions pages a user's
  sessions newest first with a (created_at, session_id) keyset.

Columns are nullable where rows may already exist (forward-only migrations must apply to any database).

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = """
ALTER TABLE auth.sessions
    ADD COLUMN address                 varchar(42),
    ADD COLUMN chain_id                varchar(32),
    ADD COLUMN previous_refresh_hashes jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN revoked_reason          varchar(32);

ALTER TABLE auth.sessions
    ADD CONSTRAINT sessions_previous_refresh_hashes_is_array_check
        CHECK (jsonb_typeof(previous_refresh_hashes) = 'array');

CREATE INDEX ix_sessions_user_id_created_at ON auth.sessions (user_id, created_at DESC, session_id DESC);
DROP INDEX auth.ix_sessions_user_id;
CREATE INDEX ix_sessions_previous_refresh_hashes
    ON auth.sessions USING gin (previous_refresh_hashes jsonb_path_ops);

-- ListLoginEvents pages newest first with a ("timestamp", id) keyset, by user or by address.
DROP INDEX auth.ix_login_events_account_id_timestamp;
DROP INDEX auth.ix_login_events_user_id_timestamp;
CREATE INDEX ix_login_events_account_id_timestamp ON auth.login_events (account_id, "timestamp" DESC, id DESC);
CREATE INDEX ix_login_events_user_id_timestamp ON auth.login_events (user_id, "timestamp" DESC, id DESC);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise RuntimeError("mintplane migrations are forward-only: write a new revision instead of downgrading")

"""Wallet: keep the proof log and the activity log when a wallet is unlinked; one canonical address form.

Why each change:
- ``wallet_verifications.wallet_id`` and ``wallet_activity.wallet_id`` become nullable with
  ``ON DELETE SET NULL`` (were ``NOT NULL ... ON DELETE CASCADE``): every link *attempt* is recorded,
  including failed ones for which no wallet exists, and unlinking a wallet (deleting its row) must not
  erase the audit trail nor the record that a nonce was consumed (otherwise a captured proof could be
  replayed after an unlink). The foreign keys stay: history points at a wallet while it exists;
- ``wallet_verifications.user_id`` / ``address`` / ``nonce``: who attempted, for which address, with which
  EIP-4361 nonce. ``ux_wallet_verifications_address_nonce`` (partial, ``status = 'verified'``) makes a
  nonce single-use per address in the database itself, so two concurrent replays cannot both succeed;
- ``wallet_links_address_canonical_check``: addresses are stored in one form, lowercase 0x-hex (the
  platform-wide convention of ``common.proto``), so the seed's ``UNIQUE (address, chain_id)`` makes case
  variants of one address collide;
- ``ix_wallet_activity_user_id_created_at`` and ``ix_wallet_verifications_user_id_created_at``:
  ListWalletActivity pages a user's log newest first with a (created_at, id) keyset; attempts are looked
  up by user for audits.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = """
ALTER TABLE wallet.wallet_verifications
    ALTER COLUMN wallet_id DROP NOT NULL,
    DROP CONSTRAINT wallet_verifications_wallet_id_fkey,
    ADD CONSTRAINT wallet_verifications_wallet_id_fkey FOREIGN KEY (wallet_id)
        REFERENCES wallet.wallet_links (wallet_id) ON DELETE SET NULL,
    ADD COLUMN user_id uuid,
    ADD COLUMN address varchar(42),
    ADD COLUMN nonce   varchar(128);
CREATE UNIQUE INDEX ux_wallet_verifications_address_nonce
    ON wallet.wallet_verifications (address, nonce) WHERE status = 'verified';
CREATE INDEX ix_wallet_verifications_user_id_created_at
    ON wallet.wallet_verifications (user_id, created_at DESC, id DESC);

ALTER TABLE wallet.wallet_activity
    ALTER COLUMN wallet_id DROP NOT NULL,
    DROP CONSTRAINT wallet_activity_wallet_id_fkey,
    ADD CONSTRAINT wallet_activity_wallet_id_fkey FOREIGN KEY (wallet_id)
        REFERENCES wallet.wallet_links (wallet_id) ON DELETE SET NULL;
CREATE INDEX ix_wallet_activity_user_id_created_at
    ON wallet.wallet_activity (user_id, created_at DESC, id DESC);

ALTER TABLE wallet.wallet_links
    ADD CONSTRAINT wallet_links_address_canonical_check CHECK (address ~ '^0x[0-9a-f]{40}$');
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    raise RuntimeError("mintplane migrations are forward-only: write a new revision instead of downgrading")

"""Alembic environment for mintplane.

Two ways in:
- ``mintplane.common.migrate.upgrade_to_head`` (the normal path: Helm hook, dev stack, tests) opens the
  connection, takes the migration advisory lock, creates the ``mintplane_meta`` schema and hands the
  connection over in ``config.attributes["connection"]``;
- the plain ``alembic -c migrations/alembic.ini ...`` CLI, where this file builds the connection from
  ``MINTPLANE_PG_DSN`` and takes the same lock itself.

There are no SQLAlchemy models: revisions are hand-written DDL, so there is no autogenerate target.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from mintplane.common.migrate import (
    ATTR_APPLIED,
    ATTR_CONNECTION,
    VERSION_TABLE,
    VERSION_TABLE_SCHEMA,
    advisory_lock,
    ensure_version_schema,
    sqlalchemy_url,
)

config = context.config


def _record_applied(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Alembic ``on_version_apply`` hook: collect the revisions this run really applied."""
    applied = config.attributes.get(ATTR_APPLIED)
    if applied is not None and step.is_upgrade:
        applied.append(step.up_revision_id)


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=VERSION_TABLE,
        version_table_schema=VERSION_TABLE_SCHEMA,
        on_version_apply=_record_applied,
    )
    # One transaction for the whole upgrade (PostgreSQL has transactional DDL): all or nothing.
    with context.begin_transaction():
        context.run_migrations()


def _dsn_from_environment() -> str:
    from mintplane.common.settings import InfraSettings

    return InfraSettings().pg_dsn.get_secret_value()


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: print the DDL instead of running it."""
    context.configure(
        url=sqlalchemy_url(_dsn_from_environment()),
        target_metadata=None,
        literal_binds=True,
        version_table=VERSION_TABLE,
        version_table_schema=VERSION_TABLE_SCHEMA,
    )
    with context.begin_transaction():
        context.execute(f"CREATE SCHEMA IF NOT EXISTS {VERSION_TABLE_SCHEMA}")
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get(ATTR_CONNECTION)
    if connection is not None:
        # The runner already holds the advisory lock on this connection.
        _configure_and_run(connection)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = create_engine(sqlalchemy_url(_dsn_from_environment()), poolclass=NullPool)
    try:
        with engine.connect() as conn, advisory_lock(conn):
            ensure_version_schema(conn)
            _configure_and_run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

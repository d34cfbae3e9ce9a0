"""Bring a PostgreSQL database to the latest mintplane schema, safely from several processes at once.

Why this module exists rather than "run ``alembic upgrade head``":

- the chart runs migrations as a Helm hook, and the dev stack and tests run them too; two migrators can
  start at the same moment (two hook pods, a retried Job, a test and the dev stack). Each run therefore
  holds a PostgreSQL *session* advisory lock (:data:`ADVISORY_LOCK_KEY`) for its whole duration and reads
  the current revision only once it holds the lock: the second migrator waits, then finds nothing to do;
- services are configured with asyncpg-style DSNs (``postgresql://user:pass@host:port/db``) while
  Alembic runs on SQLAlchemy with the synchronous psycopg 3 driver (``postgresql+psycopg://``); the
  conversion lives here, once, and the password never reaches a log line or Alembic's ini options;
- the Alembic version table lives in its own schema, ``mintplane_meta``, so no service schema holds
  bookkeeping that belongs to nobody;
- callers (the Helm hook entry point, the dev stack, tests) need to know what was applied, so
  :func:`upgrade_to_head` returns exactly the revisions this call applied, recorded by Alembic's
  ``on_version_apply`` hook while the lock is held (not computed from a racy before/after comparison).

Migrations are forward-only: every revision's ``downgrade()`` raises.

Run from a shell or a Kubernetes Job: ``python -m mintplane.common.migrate [upgrade|current|heads]``
(DSN from ``MINTPLANE_PG_DSN``, see :class:`mintplane.common.settings.InfraSettings`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

MIGRATIONS_DIR_ENV = "MINTPLANE_MIGRATIONS_DIR"
"""Environment variable naming the folder that holds ``alembic.ini`` (needed where the repo is absent)."""

VERSION_TABLE_SCHEMA = "mintplane_meta"
VERSION_TABLE = "alembic_version"

ADVISORY_LOCK_KEY = 0x6D696E74706C616E
"""Key of the session advisory lock every migrator holds: the bytes of ``"mintplan"`` as a bigint."""

# Alembic config attributes shared with migrations/env.py.
ATTR_CONNECTION = "connection"
ATTR_APPLIED = "mintplane_applied_revisions"

_ACCEPTED_DRIVERS = frozenset(
    {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}
)


def sqlalchemy_url(dsn: str) -> URL:
    """Turn an asyncpg/libpq-style DSN into a SQLAlchemy URL for the psycopg 3 driver.

    ``postgresql://``, ``postgres://`` and ``postgresql+<driver>://`` are accepted; user, password
    (percent-encoded or not), host, port, database and query parameters are kept as they are.
    """
    try:
        url = make_url(dsn)
    except Exception:
        # SQLAlchemy's message quotes the whole string, password included: drop it from the chain.
        raise ValueError("the PostgreSQL DSN could not be parsed") from None
    if url.drivername not in _ACCEPTED_DRIVERS:
        raise ValueError(f"not a PostgreSQL DSN (scheme {url.drivername!r})")
    return url.set(drivername="postgresql+psycopg")


def redacted(dsn: str) -> str:
    """The DSN with its password masked, for log lines and error messages."""
    try:
        return sqlalchemy_url(dsn).render_as_string(hide_password=True)
    except ValueError:
        return "<unparseable DSN>"


def find_migrations_dir() -> Path:
    """The folder holding ``alembic.ini``, ``env.py`` and ``versions/``.

    ``$MINTPLANE_MIGRATIONS_DIR`` wins (container images install the package without the repository);
    otherwise walk up from this file to the first folder that contains ``migrations/alembic.ini``.
    """
    configured = os.environ.get(MIGRATIONS_DIR_ENV)
    if configured:
        path = Path(configured).expanduser().resolve()
        if not (path / "alembic.ini").is_file():
            raise FileNotFoundError(f"{MIGRATIONS_DIR_ENV}={configured} holds no alembic.ini")
        return path
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "migrations"
        if (candidate / "alembic.ini").is_file():
            return candidate
    raise FileNotFoundError(f"no migrations/alembic.ini above {Path(__file__).resolve()}; set {MIGRATIONS_DIR_ENV}")


def alembic_config(migrations_dir: Path | None = None) -> Config:
    """An Alembic config for the migrations folder. It never carries the DSN (see module docstring)."""
    folder = migrations_dir or find_migrations_dir()
    cfg = Config(str(folder / "alembic.ini"))
    cfg.set_main_option("script_location", str(folder).replace("%", "%%"))
    return cfg


def head_revisions(migrations_dir: Path | None = None) -> tuple[str, ...]:
    """The head revisions in the migrations folder, sorted (no database needed).

    Each service's schema changes may form their own branch off a common base, so there can be several
    heads; `upgrade_to_head` applies all of them.
    """
    return tuple(sorted(ScriptDirectory.from_config(alembic_config(migrations_dir)).get_heads()))


@contextmanager
def advisory_lock(conn: Connection) -> Iterator[None]:
    """Hold the migration advisory lock on ``conn`` for the duration of the block.

    A *session* lock (not a transaction lock) so it spans every transaction Alembic opens on this
    connection. It is released explicitly at the end, and by PostgreSQL if the connection dies.
    """
    log.info("waiting for the migration advisory lock %d", ADVISORY_LOCK_KEY)
    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    conn.commit()
    log.info("holding the migration advisory lock")
    try:
        yield
    finally:
        try:
            if conn.in_transaction():
                conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
            conn.commit()
        except SQLAlchemyError:
            log.warning("could not release the migration advisory lock; closing the connection frees it")


def ensure_version_schema(conn: Connection) -> None:
    """Create the ``mintplane_meta`` schema for Alembic's version table (call with the lock held)."""
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {VERSION_TABLE_SCHEMA}"))
    conn.commit()


def upgrade_to_head(dsn: str) -> list[str]:
    """Apply every pending revision, under the advisory lock; return the revisions applied, in order.

    Returns an empty list when the database is already at head (including when a concurrent migrator
    applied the revisions while this call waited for the lock).
    """
    cfg = alembic_config()
    applied: list[str] = []
    engine = create_engine(sqlalchemy_url(dsn), poolclass=NullPool)
    log.info("migrating %s", redacted(dsn))
    try:
        with engine.connect() as conn, advisory_lock(conn):
            ensure_version_schema(conn)
            cfg.attributes[ATTR_CONNECTION] = conn
            cfg.attributes[ATTR_APPLIED] = applied
            command.upgrade(cfg, "heads")
    finally:
        engine.dispose()
    log.info("applied %d revision(s): %s", len(applied), ", ".join(applied) or "none")
    return applied


def current_revisions(dsn: str) -> tuple[str, ...]:
    """The revisions the database is at, sorted; empty when no migration has ever run on it."""
    engine = create_engine(sqlalchemy_url(dsn), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"version_table_schema": VERSION_TABLE_SCHEMA, "version_table": VERSION_TABLE}
            )
            return tuple(sorted(ctx.get_current_heads()))
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the Helm hook / dev stack: ``python -m mintplane.common.migrate [upgrade|current|heads]``."""
    from mintplane.common.settings import InfraSettings

    args = list(sys.argv[1:] if argv is None else argv)
    action = args[0] if args else "upgrade"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if action == "heads":
        print(" ".join(head_revisions()))
        return 0
    dsn = InfraSettings().pg_dsn.get_secret_value()
    if action == "upgrade":
        applied = upgrade_to_head(dsn)
        print(" ".join(applied) if applied else "nothing to apply")
        return 0
    if action == "current":
        print(" ".join(current_revisions(dsn)))
        return 0
    print(f"unknown action {action!r}; use upgrade, current or heads", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

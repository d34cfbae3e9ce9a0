"""Migrations against a real PostgreSQL: the live catalog matches migrations/manifest.yaml exactly.

Runs ``upgrade_to_head`` against ``MINTPLANE_PG_DSN`` (fallback: ``InfraSettings().pg_dsn``), then checks
tables, columns (type, length, nullability, default, identity), primary keys, foreign keys and unique
constraints against the manifest; that no foreign key crosses a schema; that a second upgrade applies
nothing and changes nothing; that the advisory lock serialises migrators; and that the constraints
really refuse bad rows. Rows written by the behaviour tests live in a transaction that is rolled back.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from alembic.script import ScriptDirectory
from psycopg import errors, sql
from sqlalchemy.engine import make_url

from mintplane.common.migrate import (
    ADVISORY_LOCK_KEY,
    VERSION_TABLE_SCHEMA,
    alembic_config,
    current_revisions,
    head_revisions,
    upgrade_to_head,
)
from mintplane.common.settings import InfraSettings

pytestmark = pytest.mark.integration

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "migrations" / "manifest.yaml"
SCHEMAS = ["auth", "users", "wallet", "orchestrator", "chain_registry", "catalog", "indexer"]
DELETE_RULES = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}


@pytest.fixture(scope="module")
def dsn() -> str:
    return os.environ.get("MINTPLANE_PG_DSN") or InfraSettings().pg_dsn.get_secret_value()


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def first_upgrade(dsn: str) -> list[str]:
    """The revisions the first upgrade of this module applied ([] if the database was already at head)."""
    return upgrade_to_head(dsn)


@pytest.fixture
def db(dsn: str, first_upgrade: list[str]) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection for read-only catalog queries."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def tx(dsn: str, first_upgrade: list[str]) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection inside one transaction that is always rolled back: nothing written survives."""
    conn = psycopg.connect(dsn, autocommit=False)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def _rows(conn: psycopg.Connection[tuple[Any, ...]], query: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def _all_revisions() -> list[str]:
    """Every revision, oldest first."""
    directory = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(directory.walk_revisions()))]


# --------------------------------------------------------------------------------------------- state


def test_upgrade_reaches_head(dsn: str, db: psycopg.Connection[tuple[Any, ...]], first_upgrade: list[str]) -> None:
    heads = head_revisions()
    assert heads
    assert current_revisions(dsn) == heads
    # either this run applied every revision (fresh database) or nothing (already migrated)
    assert first_upgrade == [] or sorted(first_upgrade) == sorted(_all_revisions())
    versions = _rows(db, f"SELECT version_num FROM {VERSION_TABLE_SCHEMA}.alembic_version")  # noqa: S608
    assert tuple(sorted(row[0] for row in versions)) == heads


def test_tables_match_manifest(db: psycopg.Connection[tuple[Any, ...]], manifest: dict[str, Any]) -> None:
    live = set(
        _rows(
            db,
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY(%s)",
            SCHEMAS,
        )
    )
    expected = {(schema, table) for schema, tables in manifest["schemas"].items() for table in tables}
    assert set(manifest["schemas"]) == set(SCHEMAS)
    assert live - expected == set(), "tables in the database but not in the manifest"
    assert expected - live == set(), "tables in the manifest but not in the database"


def test_columns_match_manifest(db: psycopg.Connection[tuple[Any, ...]], manifest: dict[str, Any]) -> None:
    live: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for schema, table, name, data_type, max_length, nullable, default, is_identity, generation in _rows(
        db,
        """SELECT table_schema, table_name, column_name, data_type, character_maximum_length, is_nullable,
                  column_default, is_identity, identity_generation
             FROM information_schema.columns WHERE table_schema = ANY(%s)
            ORDER BY table_schema, table_name, ordinal_position""",
        SCHEMAS,
    ):
        col: dict[str, Any] = {"name": name, "type": data_type, "nullable": nullable == "YES"}
        if data_type == "character varying":
            col["max_length"] = max_length
        if default is not None:
            col["default"] = default
        if is_identity == "YES":
            col["identity"] = generation
        live.setdefault((schema, table), []).append(col)

    informational = {"origin", "reason", "note"}
    problems: list[str] = []
    for schema, tables in manifest["schemas"].items():
        for table, spec in tables.items():
            want = [{k: v for k, v in c.items() if k not in informational} for c in spec["columns"]]
            got = live.get((schema, table), [])
            want_by_name = {c["name"]: c for c in want}
            got_by_name = {c["name"]: c for c in got}
            for name in want_by_name.keys() - got_by_name.keys():
                problems.append(f"{schema}.{table}.{name}: in the manifest, not in the database")
            for name in got_by_name.keys() - want_by_name.keys():
                problems.append(f"{schema}.{table}.{name}: in the database, not in the manifest")
            for name in want_by_name.keys() & got_by_name.keys():
                if want_by_name[name] != got_by_name[name]:
                    problems.append(
                        f"{schema}.{table}.{name}: manifest {want_by_name[name]} != live {got_by_name[name]}"
                    )
            if not problems and [c["name"] for c in want] != [c["name"] for c in got]:
                problems.append(f"{schema}.{table}: column order differs")
    assert not problems, "\n".join(problems)


def test_primary_keys_match_manifest(db: psycopg.Connection[tuple[Any, ...]], manifest: dict[str, Any]) -> None:
    live: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in _rows(
        db,
        """SELECT tc.table_schema, tc.table_name, kcu.column_name
             FROM information_schema.table_constraints tc
             JOIN information_schema.key_column_usage kcu
               ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name
            WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = ANY(%s)
            ORDER BY tc.table_schema, tc.table_name, kcu.ordinal_position""",
        SCHEMAS,
    ):
        live.setdefault((schema, table), []).append(column)
    expected = {(s, t): spec["primary_key"] for s, tables in manifest["schemas"].items() for t, spec in tables.items()}
    assert live == expected


def test_foreign_keys_match_manifest(db: psycopg.Connection[tuple[Any, ...]], manifest: dict[str, Any]) -> None:
    live: set[tuple[str, str, tuple[str, ...], str, tuple[str, ...], str]] = set()
    for schema, table, columns, ref_table, ref_columns, delete_rule in _rows(
        db,
        """SELECT n.nspname, r.relname,
                  ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord),
                  fr.relname,
                  ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord),
                  c.confdeltype
             FROM pg_constraint c
             JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
             JOIN pg_class fr ON fr.oid = c.confrelid
            WHERE c.contype = 'f' AND n.nspname = ANY(%s)""",
        SCHEMAS,
    ):
        live.add((schema, table, tuple(columns), ref_table, tuple(ref_columns), DELETE_RULES[delete_rule]))
    expected = {
        (s, t, tuple(fk["columns"]), fk["references"], tuple(fk["ref_columns"]), fk["on_delete"])
        for s, tables in manifest["schemas"].items()
        for t, spec in tables.items()
        for fk in spec.get("foreign_keys", [])
    }
    assert live == expected


def test_unique_constraints_match_manifest(db: psycopg.Connection[tuple[Any, ...]], manifest: dict[str, Any]) -> None:
    live: set[tuple[str, str, str, tuple[str, ...], str | None]] = set()
    for schema, table, name, keys, predicate in _rows(
        db,
        """SELECT n.nspname, r.relname, ci.relname,
                  ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                          FROM generate_series(1, i.indnkeyatts) k ORDER BY k),
                  pg_get_expr(i.indpred, i.indrelid, true)
             FROM pg_index i
             JOIN pg_class ci ON ci.oid = i.indexrelid
             JOIN pg_class r ON r.oid = i.indrelid JOIN pg_namespace n ON n.oid = r.relnamespace
            WHERE i.indisunique AND NOT i.indisprimary AND n.nspname = ANY(%s)""",
        SCHEMAS,
    ):
        live.add((schema, table, name, tuple(keys), predicate))
    expected = {
        (s, t, u["name"], tuple(u["columns"]), u.get("where"))
        for s, tables in manifest["schemas"].items()
        for t, spec in tables.items()
        for u in spec.get("unique", [])
    }
    assert live == expected


def test_no_foreign_key_crosses_schemas(db: psycopg.Connection[tuple[Any, ...]]) -> None:
    crossing = _rows(
        db,
        """SELECT c.conname, n.nspname, r.relname, fn.nspname, fr.relname
             FROM pg_constraint c
             JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
             JOIN pg_class fr ON fr.oid = c.confrelid JOIN pg_namespace fn ON fn.oid = fr.relnamespace
            WHERE c.contype = 'f' AND n.nspname <> fn.nspname
              AND (n.nspname = ANY(%s) OR fn.nspname = ANY(%s))""",
        [*SCHEMAS, VERSION_TABLE_SCHEMA],
        [*SCHEMAS, VERSION_TABLE_SCHEMA],
    )
    assert crossing == []
    count = _rows(
        db,
        """SELECT count(*) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
             JOIN pg_namespace n ON n.oid = r.relnamespace WHERE c.contype = 'f' AND n.nspname = ANY(%s)""",
        SCHEMAS,
    )
    assert count[0][0] > 20  # the query really sees the foreign keys


# ---------------------------------------------------------------------------------------- idempotency


def _snapshot(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    schemas = [*SCHEMAS, VERSION_TABLE_SCHEMA]
    return {
        "schemas": _rows(conn, "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) ORDER BY 1", schemas),
        "columns": _rows(
            conn,
            """SELECT table_schema, table_name, ordinal_position, column_name, data_type,
                      character_maximum_length, numeric_precision, numeric_scale, is_nullable, column_default,
                      is_identity, identity_generation
                 FROM information_schema.columns WHERE table_schema = ANY(%s) ORDER BY 1, 2, 3""",
            schemas,
        ),
        "constraints": _rows(
            conn,
            """SELECT n.nspname, r.relname, c.conname, c.contype, pg_get_constraintdef(c.oid)
                 FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
                 JOIN pg_namespace n ON n.oid = r.relnamespace
                WHERE n.nspname = ANY(%s) ORDER BY 1, 2, 3""",
            schemas,
        ),
        "indexes": _rows(
            conn,
            "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = ANY(%s) ORDER BY 1, 2, 3",
            schemas,
        ),
        "sequences": _rows(
            conn,
            "SELECT schemaname, sequencename, data_type, start_value, increment_by FROM pg_sequences "
            "WHERE schemaname = ANY(%s) ORDER BY 1, 2",
            schemas,
        ),
        "version": _rows(conn, f"SELECT version_num FROM {VERSION_TABLE_SCHEMA}.alembic_version"),  # noqa: S608
    }


def test_second_upgrade_applies_nothing_and_changes_nothing(dsn: str, db: psycopg.Connection[tuple[Any, ...]]) -> None:
    before = _snapshot(db)
    assert before["indexes"] and before["constraints"] and before["columns"]
    assert upgrade_to_head(dsn) == []
    after = _snapshot(db)
    for part in before:
        assert after[part] == before[part], f"{part} changed on a second upgrade"


def test_migrator_waits_for_the_advisory_lock(dsn: str, db: psycopg.Connection[tuple[Any, ...]]) -> None:
    """While another migrator holds the lock, upgrade_to_head waits; then finds nothing to do."""
    result: dict[str, Any] = {}

    def migrate() -> None:
        try:
            result["applied"] = upgrade_to_head(dsn)
        except Exception as exc:  # reported by the assertions below
            result["error"] = exc

    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        worker = threading.Thread(target=migrate, daemon=True)
        try:
            worker.start()
            waiting = False
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not waiting:
                waiting = bool(_rows(db, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))
                time.sleep(0.05)
            assert waiting, "the second migrator did not queue on the advisory lock"
            assert worker.is_alive() and not result, "the second migrator ran without the lock"
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
        worker.join(timeout=60)
    assert not worker.is_alive()
    assert result == {"applied": []}


def test_concurrent_migrators_on_a_fresh_database(dsn: str) -> None:
    """Two migrators racing on an empty database: one applies everything, the other nothing, no error."""
    name = f"mintplane_migtest_{uuid.uuid4().hex[:10]}"
    # The dev stack's role has CREATEDB; a role without it fails here, loudly.
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    fresh = make_url(dsn).set(database=name).render_as_string(hide_password=False)
    try:
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def migrate() -> None:
            barrier.wait()
            try:
                results.append(upgrade_to_head(fresh))
            except Exception as exc:  # reported by the assertions below
                results.append(exc)

        workers = [threading.Thread(target=migrate, daemon=True) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        first, second = sorted(results, key=len)
        assert first == [] and sorted(second) == sorted(_all_revisions())
        assert current_revisions(fresh) == head_revisions()
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# ------------------------------------------------------------------------------- constraint behaviour


def _new_user(conn: psycopg.Connection[tuple[Any, ...]]) -> uuid.UUID:
    row = conn.execute("INSERT INTO users.users DEFAULT VALUES RETURNING user_id, status").fetchone()
    assert row is not None and row[1] == "active"
    user_id = row[0]
    assert isinstance(user_id, uuid.UUID)
    return user_id


def _address() -> str:
    return "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


def test_self_follow_is_refused(tx: psycopg.Connection[tuple[Any, ...]]) -> None:
    alice, bob = _new_user(tx), _new_user(tx)
    with pytest.raises(errors.CheckViolation), tx.transaction():
        tx.execute("INSERT INTO users.user_follows (follower_id, following_id) VALUES (%s, %s)", (alice, alice))
    tx.execute("INSERT INTO users.user_follows (follower_id, following_id) VALUES (%s, %s)", (alice, bob))
    with pytest.raises(errors.UniqueViolation), tx.transaction():
        tx.execute("INSERT INTO users.user_follows (follower_id, following_id) VALUES (%s, %s)", (alice, bob))
    with pytest.raises(errors.ForeignKeyViolation), tx.transaction():
        tx.execute("INSERT INTO users.user_follows (follower_id, following_id) VALUES (%s, %s)", (alice, uuid.uuid4()))


def test_second_primary_wallet_is_refused(tx: psycopg.Connection[tuple[Any, ...]]) -> None:
    user = uuid.uuid4()  # wallet.user_id is a logical id: no users row needed, no cross-schema key
    insert = "INSERT INTO wallet.wallet_links (user_id, address, chain_id, is_primary) VALUES (%s, %s, %s, %s)"
    tx.execute(insert, (user, _address(), "eip155:1", True))
    with pytest.raises(errors.UniqueViolation), tx.transaction():
        tx.execute(insert, (user, _address(), "eip155:1", True))
    tx.execute(insert, (user, _address(), "eip155:1", False))
    tx.execute(insert, (user, _address(), "eip155:1", False))
    shared = _address()
    tx.execute(insert, (uuid.uuid4(), shared, "eip155:1", False))
    with pytest.raises(errors.UniqueViolation), tx.transaction():
        tx.execute(insert, (uuid.uuid4(), shared, "eip155:1", False))
    tx.execute(insert, (uuid.uuid4(), shared, "eip155:10", False))  # same address, other chain: fine
    with pytest.raises(errors.ForeignKeyViolation), tx.transaction():
        tx.execute("INSERT INTO wallet.wallet_activity (wallet_id, action) VALUES (%s, 'link')", (uuid.uuid4(),))


def test_username_is_unique_ignoring_case(tx: psycopg.Connection[tuple[Any, ...]]) -> None:
    alice, mallory = _new_user(tx), _new_user(tx)
    handle = f"Alice{uuid.uuid4().hex[:8]}"
    tx.execute("INSERT INTO users.profiles (user_id, username) VALUES (%s, %s)", (alice, handle))
    with pytest.raises(errors.UniqueViolation), tx.transaction():
        tx.execute("INSERT INTO users.profiles (user_id, username) VALUES (%s, %s)", (mallory, handle.swapcase()))
    tx.execute("INSERT INTO users.profiles (user_id, username) VALUES (%s, NULL)", (mallory,))


def test_registry_and_indexer_checks(tx: psycopg.Connection[tuple[Any, ...]]) -> None:
    numeric = 2_000_000_000 + uuid.uuid4().int % 100_000_000
    row = tx.execute(
        "INSERT INTO chain_registry.chains (caip2, chain_numeric, name) VALUES (%s, %s, 'test') "
        "RETURNING id, enabled, decimals",
        (f"eip155:{numeric}", numeric),
    ).fetchone()
    assert row is not None
    chain_id, enabled, decimals = row
    assert isinstance(chain_id, int) and enabled is True and decimals == 18
    with pytest.raises(errors.CheckViolation), tx.transaction():
        tx.execute(
            "INSERT INTO chain_registry.chain_endpoints (chain_id, url, priority) VALUES (%s, 'http://a', -1)",
            (chain_id,),
        )
    tx.execute("INSERT INTO chain_registry.chain_endpoints (chain_id, url) VALUES (%s, 'http://a')", (chain_id,))
    with pytest.raises(errors.UniqueViolation), tx.transaction():
        tx.execute("INSERT INTO chain_registry.chain_endpoints (chain_id, url) VALUES (%s, 'http://a')", (chain_id,))

    caip2 = f"eip155:{numeric}"
    with pytest.raises(errors.CheckViolation), tx.transaction():
        tx.execute(
            "INSERT INTO indexer.token_balances (chain_id, contract, token_id, owner, quantity) "
            "VALUES (%s, '0xc', '1', '0xo', -1)",
            (caip2,),
        )
    transfer = (
        "INSERT INTO indexer.ownership_transfers (chain_id, contract, token_id, from_addr, to_addr, tx_hash, "
        "block_number, block_hash, log_index) VALUES (%s, '0xc', '1', '0x0', '0xo', '0xt', 7, '0xb', 3) "
        "ON CONFLICT DO NOTHING"
    )
    assert tx.execute(transfer, (caip2,)).rowcount == 1
    assert tx.execute(transfer, (caip2,)).rowcount == 0  # replaying a log is a no-op


def test_catalog_defaults_and_keys(tx: psycopg.Connection[tuple[Any, ...]]) -> None:
    slug = f"test-{uuid.uuid4().hex[:12]}"
    row = tx.execute(
        "INSERT INTO catalog.collections (slug, name, chain_id) VALUES (%s, 'Test', 'eip155:1') "
        "RETURNING id, status, is_verified",
        (slug,),
    ).fetchone()
    assert row is not None and row[1:] == ("pending", False)
    collection_id = row[0]
    with pytest.raises(errors.UniqueViolation), tx.transaction():
        tx.execute("INSERT INTO catalog.collections (slug, name, chain_id) VALUES (%s, 'x', 'eip155:1')", (slug,))
    token = tx.execute(
        "INSERT INTO catalog.tokens (collection_id, token_number) VALUES (%s, '1') RETURNING id, burned",
        (collection_id,),
    ).fetchone()
    assert token is not None and token[1] is False
    with pytest.raises(errors.UniqueViolation), tx.transaction():
        tx.execute("INSERT INTO catalog.tokens (collection_id, token_number) VALUES (%s, '1')", (collection_id,))
    with pytest.raises(errors.CheckViolation), tx.transaction():
        tx.execute("INSERT INTO catalog.listings (token_id, price_native) VALUES (%s, -1)", (token[0],))
    stats = tx.execute(
        "INSERT INTO catalog.collection_stats (collection_id) VALUES (%s) RETURNING items_count, owners_count",
        (collection_id,),
    ).fetchone()
    assert stats == (0, 0)


def test_behaviour_tests_leave_no_rows(dsn: str, first_upgrade: list[str]) -> None:
    """The transactions above were rolled back: none of their marker rows is visible."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        leftovers = _rows(
            conn,
            "SELECT (SELECT count(*) FROM catalog.collections WHERE slug LIKE 'test-%%' AND name = 'Test') "
            "+ (SELECT count(*) FROM chain_registry.chains WHERE name = 'test' AND chain_numeric >= 2000000000)",
        )
    assert leftovers == [(0,)]

"""The migrations manifest (migrations/manifest.yaml) against the schema of record, the seed file.

The seed's mermaid erDiagrams are parsed here, not copied, so a manifest (and through
tests/integration/test_migrations.py, a migration) that drifts from the seed fails:
- every table and typed column of the per-service diagrams (the sections from "## Auth Service Schema"
  on) is in the manifest, in the owning service's schema, with the seed's type (varchar lengths too),
  and marked ``origin: seed``; its primary key is the seed's;
- the four tables only the overview diagram describes (collection_stats, token_balances,
  ownership_transfers, indexer_checkpoints) are covered the same way;
- every relationship between two tables of one schema is a foreign key, and no manifest column claims
  to come from the seed when it does not (added columns carry a reason).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_PATH = REPO_ROOT / "migrations" / "manifest.yaml"
SEED_NAME = "000_91e01461766db08c.txt"

# DESIGN section 2: schema -> tables it owns.
OWNERSHIP: dict[str, set[str]] = {
    "auth": {"auth_nonces", "sessions", "login_events"},
    "users": {"users", "profiles", "user_preferences", "user_stats", "user_follows"},
    "wallet": {"wallet_links", "wallet_activity", "wallet_verifications"},
    "orchestrator": {"tx_intents", "session_intent_audit"},
    "chain_registry": {"chains", "chain_endpoints", "abi_blobs", "chain_contracts", "chain_gas_policy"},
    "catalog": {
        "collections",
        "tokens",
        "traits",
        "trait_values",
        "token_trait_links",
        "marketplaces",
        "listings",
        "offers",
        "sales",
        "activities",
        "collection_stats",
    },
    "indexer": {"indexer_checkpoints", "token_balances", "ownership_transfers"},
}
# Per-service diagram sections of the seed -> the schema they describe.
SECTION_SCHEMA: dict[str, str] = {
    "Auth Service Schema": "auth",
    "User Service Schema": "users",
    "Wallet Service Schema": "wallet",
    "Catalog Service Schema (Core Tables)": "catalog",
    "Catalog Service Schema (Marketplace)": "catalog",
    "Chain Registry Schema": "chain_registry",
    "Orchestrator Service Schema": "orchestrator",
}
OVERVIEW_SECTION = "Complete Database Schema Overview"
FIRST_SERVICE_SECTION = "Auth Service Schema"
# Tables described only by the overview diagram, and the schema that owns each.
OVERVIEW_TABLES: dict[str, str] = {
    "collection_stats": "catalog",
    "token_balances": "indexer",
    "ownership_transfers": "indexer",
    "indexer_checkpoints": "indexer",
}
# seed type -> information_schema data_type. The overview's loose `timestamp` is stored as timestamptz,
# like every per-service diagram types its timestamps.
SEED_TYPES: dict[str, str] = {
    "varchar": "character varying",
    "text": "text",
    "uuid": "uuid",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp with time zone",
    "inet": "inet",
    "jsonb": "jsonb",
    "boolean": "boolean",
    "integer": "integer",
    "bigint": "bigint",
    "numeric": "numeric",
}

_ENTITY_START = re.compile(r"^\s*(\w+)\s*\{\s*$")
_ENTITY_END = re.compile(r"^\s*\}\s*$")
_ATTRIBUTE = re.compile(
    r"^\s*(?P<type>\w+)(?:\((?P<length>\d+)\))?\s+(?P<name>\w+)"
    r"(?P<keys>(?:\s+(?:PK|FK|UK)(?:\s*,\s*(?:PK|FK|UK))*)?)\s*(?:\"(?P<comment>[^\"]*)\")?\s*$"
)
_RELATIONSHIP = re.compile(r"^\s*(\w+)\s+([|}o{]{2})--([|}o{]{2})\s+(\w+)\s*:\s*(.+?)\s*$")


@dataclass(frozen=True)
class SeedColumn:
    name: str
    seed_type: str
    length: int | None
    keys: frozenset[str]
    comment: str | None


@dataclass
class SeedSection:
    title: str
    entities: dict[str, list[SeedColumn]] = field(default_factory=dict)
    relationships: list[tuple[str, str, str, str]] = field(default_factory=list)  # left, lcard, rcard, right


def _find_seed() -> Path | None:
    candidates = []
    if os.environ.get("MINTPLANE_SEED_FILE"):
        candidates.append(Path(os.environ["MINTPLANE_SEED_FILE"]))
    candidates += [
        REPO_ROOT / "seeds" / SEED_NAME,
        REPO_ROOT.parent / "shared" / "seeds" / SEED_NAME,
        Path("/work/shared/seeds") / SEED_NAME,
    ]
    return next((path for path in candidates if path.is_file()), None)


def parse_seed(text: str) -> dict[str, SeedSection]:
    """Every ``## section`` holding a mermaid erDiagram: its entities (typed columns) and relationships."""
    sections: dict[str, SeedSection] = {}
    title: str | None = None
    in_er = False
    entity: str | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            title, in_er, entity = line[3:].strip(), False, None
            continue
        stripped = line.strip()
        if stripped.startswith("```"):
            in_er = False
            entity = None
            continue
        if stripped == "erDiagram":
            if title is None:
                raise AssertionError("an erDiagram outside any ## section")
            in_er = True
            sections.setdefault(title, SeedSection(title))
            continue
        if not in_er or title is None or not stripped:
            continue
        section = sections[title]
        if entity is not None:
            if _ENTITY_END.match(line):
                entity = None
                continue
            match = _ATTRIBUTE.match(line)
            assert match, f"unparsed attribute line in {title}/{entity}: {line!r}"
            keys = frozenset(k.strip() for k in match["keys"].replace(",", " ").split())
            length = int(match["length"]) if match["length"] else None
            section.entities[entity].append(SeedColumn(match["name"], match["type"], length, keys, match["comment"]))
            continue
        if start := _ENTITY_START.match(line):
            entity = start[1]
            assert entity not in section.entities, f"{entity} twice in {title}"
            section.entities[entity] = []
            continue
        if rel := _RELATIONSHIP.match(line):
            section.relationships.append((rel[1], rel[2], rel[3], rel[4]))
            continue
        raise AssertionError(f"unparsed erDiagram line in {title}: {line!r}")
    return sections


@pytest.fixture(scope="module")
def seed_sections() -> dict[str, SeedSection]:
    path = _find_seed()
    if path is None:
        pytest.fail(f"seed file {SEED_NAME} not found (set MINTPLANE_SEED_FILE)")
    return parse_seed(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def service_sections(seed_sections: dict[str, SeedSection]) -> dict[str, SeedSection]:
    """The per-service diagrams: the erDiagram sections from '## Auth Service Schema' on."""
    titles = list(seed_sections)
    assert FIRST_SERVICE_SECTION in titles, "the seed no longer has an Auth Service Schema section"
    return {t: seed_sections[t] for t in titles[titles.index(FIRST_SERVICE_SECTION) :]}


def _tables(manifest: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s, t): spec for s, tables in manifest["schemas"].items() for t, spec in tables.items()}


def _columns(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in spec["columns"]}


def _expected_type(col: SeedColumn) -> tuple[str, int | None]:
    assert col.seed_type in SEED_TYPES, f"seed type {col.seed_type!r} of {col.name} has no mapping"
    return SEED_TYPES[col.seed_type], col.length


def _manifest_type(col: dict[str, Any]) -> tuple[str, int | None]:
    return col["type"], col.get("max_length")


def test_seed_parses_into_the_expected_sections(
    seed_sections: dict[str, SeedSection], service_sections: dict[str, SeedSection]
) -> None:
    assert set(service_sections) == set(SECTION_SCHEMA), "per-service sections of the seed changed"
    assert OVERVIEW_SECTION in seed_sections
    overview = seed_sections[OVERVIEW_SECTION].entities
    for table in OVERVIEW_TABLES:
        assert overview.get(table), f"overview lost {table}"
    assert sum(len(s.entities) for s in service_sections.values()) == 28
    assert all(cols for s in service_sections.values() for cols in s.entities.values())


def test_manifest_tables_are_the_owned_tables(manifest: dict[str, Any]) -> None:
    """Every seed table sits in its owner's schema; a table beyond the seed is declared as added, whole."""
    assert set(manifest["schemas"]) == set(OWNERSHIP)
    assert set(manifest["owners"]) == set(OWNERSHIP)
    for schema, seed_tables in OWNERSHIP.items():
        tables = manifest["schemas"][schema]
        assert seed_tables <= set(tables), f"{schema} lost {seed_tables - set(tables)}"
        for name in set(tables) - seed_tables:
            spec = tables[name]
            assert str(spec["source"]).startswith("added"), f"{schema}.{name} is not in the seed nor marked added"
            assert spec.get("primary_key_origin") == "added", f"{schema}.{name}: its key must be marked added"
            assert all(col["origin"] == "added" and col.get("reason") for col in spec["columns"]), name


def test_every_seed_table_and_typed_column_is_in_the_manifest(
    manifest: dict[str, Any], service_sections: dict[str, SeedSection]
) -> None:
    tables = _tables(manifest)
    missing: list[str] = []
    wrong: list[str] = []
    for title, section in service_sections.items():
        schema = SECTION_SCHEMA[title]
        for table, seed_cols in section.entities.items():
            spec = tables.get((schema, table))
            if spec is None:
                missing.append(f"{schema}.{table} (whole table)")
                continue
            if spec["source"] != title:
                wrong.append(f"{schema}.{table}: source {spec['source']!r}, seed section {title!r}")
            cols = _columns(spec)
            for seed_col in seed_cols:
                col = cols.get(seed_col.name)
                if col is None:
                    missing.append(f"{schema}.{table}.{seed_col.name}")
                    continue
                if _manifest_type(col) != _expected_type(seed_col):
                    wrong.append(
                        f"{schema}.{table}.{seed_col.name}: manifest {_manifest_type(col)}, "
                        f"seed {seed_col.seed_type}{f'({seed_col.length})' if seed_col.length else ''}"
                    )
                if col["origin"] != "seed":
                    wrong.append(f"{schema}.{table}.{seed_col.name}: is in the seed but origin {col['origin']}")
            seed_pk = [c.name for c in seed_cols if "PK" in c.keys]
            if spec["primary_key"] != seed_pk:
                wrong.append(f"{schema}.{table}: primary key {spec['primary_key']} != seed {seed_pk}")
    assert not missing, f"seed columns missing from the manifest: {missing}"
    assert not wrong, "manifest differs from the seed:\n" + "\n".join(wrong)


def test_overview_only_tables_are_in_the_manifest(
    manifest: dict[str, Any], seed_sections: dict[str, SeedSection]
) -> None:
    tables = _tables(manifest)
    overview = seed_sections[OVERVIEW_SECTION].entities
    for table, schema in OVERVIEW_TABLES.items():
        spec = tables[(schema, table)]
        assert spec["source"] == OVERVIEW_SECTION
        cols = _columns(spec)
        for seed_col in overview[table]:
            assert seed_col.name in cols, f"{schema}.{table}.{seed_col.name} missing"
            assert _manifest_type(cols[seed_col.name]) == _expected_type(seed_col), (table, seed_col)
            assert cols[seed_col.name]["origin"] == "seed", (table, seed_col.name)
        seed_pk = [c.name for c in overview[table] if "PK" in c.keys]
        if seed_pk:
            assert spec["primary_key"] == seed_pk, table
        else:
            assert spec["primary_key"], f"{table} needs a primary key"
            assert spec.get("primary_key_origin") == "added" and spec.get("primary_key_reason"), table


def test_origin_claims_are_true(
    manifest: dict[str, Any],
    seed_sections: dict[str, SeedSection],
    service_sections: dict[str, SeedSection],
) -> None:
    """origin: seed only for columns the seed has for that table; origin: added always with a reason."""
    seed_columns: dict[tuple[str, str], set[str]] = {}
    for title, section in service_sections.items():
        for table, cols in section.entities.items():
            seed_columns[(SECTION_SCHEMA[title], table)] = {c.name for c in cols}
    for table, schema in OVERVIEW_TABLES.items():
        seed_columns[(schema, table)] = {c.name for c in seed_sections[OVERVIEW_SECTION].entities[table]}
    for (schema, table), spec in _tables(manifest).items():
        if (schema, table) not in seed_columns:  # a whole table beyond the seed: every column added
            assert str(spec["source"]).startswith("added"), f"{schema}.{table} is in no seed diagram"
            seed_columns[(schema, table)] = set()
        for col in spec["columns"]:
            where = f"{schema}.{table}.{col['name']}"
            if col["origin"] == "seed":
                assert col["name"] in seed_columns[(schema, table)], f"{where} claims origin seed"
            else:
                assert col["origin"] == "added", where
                assert col["name"] not in seed_columns[(schema, table)], f"{where} is in the seed"
                assert isinstance(col.get("reason"), str) and col["reason"].strip(), f"{where} needs a reason"


def test_column_entries_are_well_formed(manifest: dict[str, Any]) -> None:
    allowed = {"name", "type", "max_length", "nullable", "default", "identity", "origin", "reason", "note"}
    for (schema, table), spec in _tables(manifest).items():
        names = [c["name"] for c in spec["columns"]]
        assert len(names) == len(set(names)), f"{schema}.{table} repeats a column"
        assert set(spec["primary_key"]) <= set(names), f"{schema}.{table} key on unknown columns"
        for col in spec["columns"]:
            where = f"{schema}.{table}.{col['name']}"
            assert set(col) <= allowed, f"{where}: unknown keys {set(col) - allowed}"
            assert col["type"] in set(SEED_TYPES.values()), f"{where}: type {col['type']!r}"
            assert isinstance(col["nullable"], bool), where
            assert ("max_length" in col) == (col["type"] == "character varying"), where
            if col["name"] in spec["primary_key"]:
                assert col["nullable"] is False, f"{where} is a key column"


def test_relationships_inside_a_schema_are_foreign_keys(
    manifest: dict[str, Any], seed_sections: dict[str, SeedSection]
) -> None:
    """Each seed relationship between two tables of one schema is a foreign key child -> parent."""
    tables = _tables(manifest)
    schema_of = {table: schema for schema, owned in OWNERSHIP.items() for table in owned}
    checked = 0
    for section in seed_sections.values():
        for left, lcard, _rcard, right in section.relationships:
            if schema_of.get(left) is None or schema_of[left] != schema_of.get(right):
                continue  # cross-service: a logical id, never a constraint
            child, parent = (left, right) if ("{" in lcard or "}" in lcard) else (right, left)
            fks = tables[(schema_of[child], child)].get("foreign_keys", [])
            assert any(fk["references"] == parent for fk in fks), f"no foreign key {child} -> {parent}"
            checked += 1
    assert checked >= 30


def test_foreign_keys_stay_inside_their_schema(manifest: dict[str, Any]) -> None:
    tables = _tables(manifest)
    for (schema, table), spec in tables.items():
        cols = _columns(spec)
        for fk in spec.get("foreign_keys", []):
            target = tables.get((schema, fk["references"]))
            assert target is not None, f"{schema}.{table} references {fk['references']} outside {schema}"
            assert set(fk["columns"]) <= set(cols), (table, fk)
            assert set(fk["ref_columns"]) <= set(_columns(target)), (table, fk)
            for mine, theirs in zip(fk["columns"], fk["ref_columns"], strict=True):
                assert _manifest_type(cols[mine]) == _manifest_type(_columns(target)[theirs]), (table, fk)


def test_seed_unique_markers_are_unique_in_the_manifest(
    manifest: dict[str, Any], service_sections: dict[str, SeedSection]
) -> None:
    """A seed column marked "UNIQUE" has a one-column unique constraint or index (lower(x) counts)."""
    tables = _tables(manifest)
    checked = 0
    for title, section in service_sections.items():
        for table, cols in section.entities.items():
            spec = tables[(SECTION_SCHEMA[title], table)]
            for col in cols:
                if (col.comment or "").upper() != "UNIQUE":
                    continue
                keys = [u["columns"] for u in spec.get("unique", []) if not u.get("where")]
                pattern = re.compile(rf"^(lower\()?{col.name}(::\w+)?\)?$")
                assert any(len(k) == 1 and pattern.match(k[0]) for k in keys), f"{table}.{col.name} not unique"
                checked += 1
    assert checked == 5

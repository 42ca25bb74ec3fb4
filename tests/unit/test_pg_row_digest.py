"""The ``record-v2`` expression builder and the choice of digest method, without a database."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.backup.compare import compare_stats, recorded_digest
from migration_guard.backup.manifest import ROW_DIGEST_METHOD, Manifest, TableEntry
from migration_guard.dialects.base import TableStats
from migration_guard.dialects.mysql import MySQLDialectOps
from migration_guard.dialects.postgresql import PostgreSQLDialectOps, quote_postgresql_identifier
from migration_guard.dialects.postgresql_digest import (
    NATIVE_TYPES,
    RECORD_DIGEST,
    ROW_FIELDS,
    SPLIT_TYPES,
    TEXT_DIGEST,
    TEXT_TYPES,
    column_fields,
    digest_kind,
    record_digest_sql,
)
from migration_guard.errors import UsageError

KINDS = ["native", "int8", "timestamp", "timestamptz", "text", "io", "record"]
#: Fields per column of each kind.
WIDTH = {"native": 1, "int8": 2, "timestamp": 2, "timestamptz": 2, "text": 1, "io": 1, "record": 1}
NAMES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)
COLUMNS = st.lists(st.tuples(NAMES, st.sampled_from(KINDS)), max_size=40)


@given(columns=COLUMNS)
def test_every_column_is_hashed_in_order_quoted_and_mixed(columns: list[tuple[str, str]]) -> None:
    sql = record_digest_sql('"s"."t"', columns)
    assert sql.startswith(
        "SELECT count(*), coalesce(sum(hashtextextended(CAST(hash_record_extended("
    )
    assert sql.endswith(', 0) AS text) COLLATE "C", 0)), 0) FROM "s"."t" AS t')
    position = 0
    for name, kind in columns:
        quoted = f"t.{quote_postgresql_identifier(name)}"
        found = sql.find(quoted, position)
        assert found >= 0, (name, kind)
        position = found + len(quoted)
    fields = [f for name, kind in columns for f in column_fields(f"t.x{name!r}", kind)]
    assert len(fields) == sum(WIDTH[kind] for _, kind in columns)


def test_a_name_cannot_break_out_of_its_quotes() -> None:
    sql = record_digest_sql('"t"', [('x") FROM pg_authid --', "text")])
    assert 't."x"") FROM pg_authid --" COLLATE "C"' in sql


@given(count=st.integers(0, 3 * ROW_FIELDS + 5))
def test_long_rows_nest_in_groups_a_record_can_hold(count: int) -> None:
    sql = record_digest_sql('"t"', [(f"c{i}", "native") for i in range(count)])
    inner = re.findall(r"ROW\(([^()]*)\)", sql)
    assert all(len(group.split(", ")) <= ROW_FIELDS for group in inner if group)
    assert sql.count('t."c') == count
    assert sql.count("ROW(") == (1 if count <= ROW_FIELDS else 1 + -(-count // ROW_FIELDS))


@given(
    type_name=st.sampled_from(
        [
            *sorted(NATIVE_TYPES | TEXT_TYPES | SPLIT_TYPES),
            *["numeric", "float8", "jsonb", "json", "interval", "bpchar", "_int4", "mood"],
        ]
    ),
    builtin=st.booleans(),
    type_type=st.sampled_from(["b", "d", "e", "c", "r", "m"]),
    text_cast=st.booleans(),
)
def test_only_builtin_base_types_of_the_whitelist_hash_natively(
    type_name: str, builtin: bool, type_type: str, text_cast: bool
) -> None:
    kind = digest_kind(type_name, builtin, type_type, text_cast)
    whitelisted = type_name in NATIVE_TYPES | TEXT_TYPES | SPLIT_TYPES
    if builtin and type_type == "b" and whitelisted:
        assert kind in {"native", "text", *SPLIT_TYPES}
    elif type_type == "d" or text_cast:
        assert kind == "record"  # domains, and types whose cast to text is a function
    else:
        assert kind == "io"


def test_awkward_builtin_types_go_by_text() -> None:
    for name in ["numeric", "float4", "float8", "jsonb", "json", "interval", "money", "timetz"]:
        assert digest_kind(name, True, "b", False) == "io"
    assert digest_kind("bpchar", True, "b", True) == "record"  # its text cast trims blanks
    assert digest_kind("text", False, "b", False) == "io"  # a "text" outside pg_catalog
    assert digest_kind("int4", True, "d", False) == "record"  # a domain named like a base


def _manifest(extra: dict[str, object]) -> Manifest:
    return Manifest.from_dict(
        {
            "kind": "migration-guard-manifest",
            "schema_version": 1,
            "id": "20260101T000000Z-full-abcdef",
            "type": "full",
            "source_url": "postgresql://h/db",
            "dialect": "postgresql",
            "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:00:01Z",
            "artifact": {
                "file": "a",
                "size": 1,
                "sha256": "0" * 64,
                "compression": "zstd",
                "encryption": None,
                "stream_format": "postgresql-custom",
            },
            "backend": "pgdump",
            "tool_version": "pg_dump 15",
            "extra": extra,
        }
    )


def test_the_manifest_names_the_method_and_an_old_one_means_text() -> None:
    ops = PostgreSQLDialectOps()
    assert recorded_digest(ops, _manifest({})) == TEXT_DIGEST
    assert recorded_digest(ops, _manifest({ROW_DIGEST_METHOD: RECORD_DIGEST})) == RECORD_DIGEST
    assert recorded_digest(ops, _manifest({ROW_DIGEST_METHOD: TEXT_DIGEST})) == TEXT_DIGEST
    for unknown in ["record-v9", "", 2, ["record-v2"]]:
        with pytest.raises(UsageError, match="unknown to this migration-guard") as caught:
            recorded_digest(ops, _manifest({ROW_DIGEST_METHOD: unknown}))
        assert caught.value.exit_code == 2
        assert "20260101T000000Z-full-abcdef" in caught.value.message


def test_a_dialect_with_one_checksum_refuses_any_named_method() -> None:
    ops = MySQLDialectOps()
    assert recorded_digest(ops, _manifest({})) is None
    with pytest.raises(UsageError):
        recorded_digest(ops, _manifest({ROW_DIGEST_METHOD: RECORD_DIGEST}))


def test_a_checksum_of_another_method_is_a_mismatch_not_a_comparison() -> None:
    expected = {"t": TableEntry(rows=1, checksum="5")}
    same = {"t": TableStats(rows=1, checksum="5", size_bytes=None, digest=TEXT_DIGEST)}
    assert compare_stats(expected, same, TEXT_DIGEST) == []
    assert compare_stats(expected, same, RECORD_DIGEST) == [
        "table t: checksum measured with text-v1, the backup's with record-v2"
    ]
    plain = {"t": TableStats(rows=1, checksum="5", size_bytes=None)}
    assert compare_stats(expected, plain) == []  # dialects with one checksum name none

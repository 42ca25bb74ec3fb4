# ruff: noqa: F811  (fixtures imported from test_backup_postgresql)
"""The ``record-v2`` row digest on the real PostgreSQL server.

Attacks: values swapped between rows (a sum of linearly combined column hashes
cannot see them); values equal to PostgreSQL but different in content (numeric
1.0 and 1.00, float -0 and 0, jsonb, interval, text under a case-insensitive
ICU collation, unconstrained bpchar's trailing blanks) and values whose native
hash folds to the same 32 bits (int8, timestamps); NULL against the empty
string; enum values, whose OIDs differ in every restored database. Then the
method in the manifest: an old manifest (text method, none named) restores and
verifies, an unknown method is refused before anything is written.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from migration_guard.alembic.records import measured_as_recorded, stats_dict
from migration_guard.backup import create, keygen, restore, verify
from migration_guard.backup.backends.base import DumpResult
from migration_guard.backup.backends.pgdump import PgdumpBackend
from migration_guard.backup.catalog import Catalog
from migration_guard.backup.compare import compare_stats
from migration_guard.backup.manifest import ROW_DIGEST_METHOD
from migration_guard.cli import main
from migration_guard.config import Config
from migration_guard.dialects.postgresql import PostgreSQLDialectOps
from migration_guard.dialects.postgresql_digest import RECORD_DIGEST, TEXT_DIGEST
from migration_guard.errors import UsageError
from tests.conftest import unique_name
from tests.db.test_backup_postgresql import (  # noqa: F401  (fixtures)
    ADMIN_URL,
    new_database,
)

pytestmark = pytest.mark.postgresql

OPS = PostgreSQLDialectOps()

#: Per awkward type: the column type, a value, and a change of it that
#: PostgreSQL's own equality (and so its native hash) cannot see, or a plain one.
#: The table ``t_<name>`` holds (1, value), (2, NULL), (3, value).
AWKWARD: dict[str, tuple[str, str, str]] = {
    "enum": ("mood", "'ok'", "'sad'"),
    "numeric": ("numeric", "1.0", "1.00"),
    "float8": ("float8", "'0'", "'-0'"),
    "float4": ("float4", "'0'", "'-0'"),
    "jsonb": ("jsonb", """'{"a": 1.0}'""", """'{"a": 1.00}'"""),
    "json": ("json", """'{"a":1}'""", """'{"a": 1}'"""),
    "interval": ("interval", "'1 day'", "'24 hours'"),
    "int_array": ("int[]", "'{1,2}'", "'[0:1]={1,2}'"),
    "text_array": ("text[]", "'{a,\"\"}'", "'{a,NULL}'"),
    "domain": ("small", "5", "6"),
    "composite": ("pair", "ROW(1.0, 'x')", "ROW(1.00, 'x')"),
    "bpchar": ("bpchar", "'a'", "'a  '"),
    "char_n": ("char(3)", "'a'", "'b'"),
    "citext": ("citext", "'Abc'", "'ABC'"),
    "int8": ("int8", "0", "4294967297"),
    "timestamptz": (
        "timestamptz",
        "timestamptz '2000-01-01 00:00:00+00'",
        "timestamptz '2000-01-01 00:00:00+00' + interval '4294967297 microseconds'",
    ),
    "timestamp": (
        "timestamp",
        "timestamp '2000-01-01 00:00:00'",
        "timestamp '2000-01-01 00:00:00' + interval '4294967297 microseconds'",
    ),
    # A timestamp's native hash folds its upper half, inverted for values before 2000:
    # a value and its mirror (upper 32 bits inverted) hash alike, field by field.
    "timestamptz_mirror": (
        "timestamptz",
        "'2024-06-01 12:00:00+00'",
        "'1975-08-01 12:15:29.816576+00'",
    ),
    "timestamp_mirror": ("timestamp", "'2000-01-01 00:00:00'", "'1999-12-31 22:48:25.032704'"),
    # The first 71 minutes of the range (binning them overflowed: the backup failed).
    "timestamp_earliest": (
        "timestamp",
        "'4714-11-24 00:00:00 BC'",
        "'4714-11-24 00:00:01 BC'",
    ),
    # numeric hashes every infinity as 0: the epoch alone would not tell these apart.
    "timestamp_infinite": ("timestamptz", "'infinity'", "'-infinity'"),
    "timestamp_infinite_null": ("timestamp", "'infinity'", "NULL"),
    "time": ("time", "'00:00:00'", "'01:11:34.967297'"),
    "timetz": ("timetz", "'12:00+01'", "'11:00+00'"),
    "money": ("money", "'1.00'", "'2.00'"),
    "text": ("text", "''", "'x'"),
    "bytea": ("bytea", "'\\x00'", "'\\x0000'"),
    "uuid": ("uuid", "'00000000-0000-4000-8000-000000000000'", "gen_random_uuid()"),
    "inet": ("inet", "'10.0.0.1'", "'10.0.0.1/24'"),
}

SETUP = """
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE DOMAIN small AS int CHECK (VALUE < 100);
CREATE TYPE pair AS (n numeric, s text);
"""


def _engine(url: URL | str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def _run(url: URL | str, *statements: str) -> None:
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _measure(url: URL | str, tables: Sequence[str], digest: str | None = None) -> dict[str, Any]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return OPS.table_stats(conn, tables, digest=digest)
    finally:
        engine.dispose()


def _icu(url: URL | str) -> bool:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return bool(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_collation WHERE collprovider = 'i'"
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _load_awkward(url: str) -> list[str]:
    """The awkward tables (and, where the server has ICU, a case-insensitive text)."""
    statements = [SETUP]
    tables = []
    awkward = dict(AWKWARD)
    if _icu(url):
        statements.append(
            "CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', "
            "deterministic = false)"
        )
        awkward["nocase"] = ('text COLLATE "nocase"', "'abc'", "'ABC'")
    for name, (column, value, _) in awkward.items():
        table = f"t_{name}"
        tables.append(table)
        statements.append(f"CREATE TABLE {table} (id int, v {column})")
        statements.append(f"INSERT INTO {table} VALUES (1, {value}), (2, NULL), (3, {value})")
    # NULL against the empty string, in two columns of one row.
    statements.append("CREATE TABLE t_nulls (id int, a text, b text)")
    statements.append("INSERT INTO t_nulls VALUES (1, NULL, ''), (2, 'x', 'y')")
    tables.append("t_nulls")
    _run(url, *statements)
    return tables


def _changes(url: str) -> dict[str, str]:
    changes = {
        f"t_{name}": f"UPDATE t_{name} SET v = {changed} WHERE id = 1"
        for name, (_, _, changed) in AWKWARD.items()
    }
    if _icu(url):
        changes["t_nocase"] = "UPDATE t_nocase SET v = 'ABC' WHERE id = 1"
    changes["t_nulls"] = "UPDATE t_nulls SET a = '', b = NULL WHERE id = 1"
    return changes


def test_values_swapped_between_rows_change_the_digest(postgres_url: str) -> None:
    _run(
        postgres_url,
        "CREATE TABLE pairs (id int, name text, score bigint)",
        "INSERT INTO pairs VALUES (1, 'a', 10), (2, 'b', 20)",
    )
    before = _measure(postgres_url, ["pairs"])["pairs"]
    assert before.digest == RECORD_DIGEST
    _run(
        postgres_url,
        "UPDATE pairs SET name = CASE id WHEN 1 THEN 'b' ELSE 'a' END",
    )
    engine = _engine(postgres_url)
    try:
        with engine.connect() as conn:
            # The attack bites: without the per-row mix the sum is the same.
            linear = conn.exec_driver_sql(
                "SELECT sum(hash_record_extended(t, 0)) FROM pairs t"
            ).scalar_one()
    finally:
        engine.dispose()
    after = _measure(postgres_url, ["pairs"])["pairs"]
    assert after.rows == before.rows
    assert after.checksum != before.checksum
    _run(postgres_url, "UPDATE pairs SET name = CASE id WHEN 1 THEN 'a' ELSE 'b' END")
    engine = _engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert (
                conn.exec_driver_sql(
                    "SELECT sum(hash_record_extended(t, 0)) FROM pairs t"
                ).scalar_one()
                == linear
            )
    finally:
        engine.dispose()
    assert _measure(postgres_url, ["pairs"])["pairs"].checksum == before.checksum


def test_awkward_types_round_trip_and_every_change_is_caught(
    config: Config,
    postgres_url: str,
    new_database: Callable[[], URL],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tables = _load_awkward(postgres_url)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=postgres_url)
    assert manifest.extra[ROW_DIGEST_METHOD] == RECORD_DIGEST
    target = new_database()
    result = restore(config, manifest.id, url=target)  # enum OIDs differ in the new database
    assert result.ok, result.mismatches
    assert verify(config, manifest.id, restore_test=True).restore_test_ok is True

    # The restored database measures equal; each change, one at a time, does not.
    expected = {name: manifest.tables[name] for name in tables}
    assert compare_stats(expected, _measure(target, tables, RECORD_DIGEST), RECORD_DIGEST) == []
    missed = []
    for table, change in _changes(postgres_url).items():
        _run(target, change)
        mismatches = compare_stats(
            {table: expected[table]}, _measure(target, [table], RECORD_DIGEST), RECORD_DIGEST
        )
        if not any("checksum" in line for line in mismatches):
            missed.append(table)
    assert missed == []


def test_the_same_rows_measure_alike_in_any_database(
    postgres_url: str, new_database: Callable[[], URL], postgres_admin_engine: sa.Engine
) -> None:
    # Enums hash by label, not OID: OIDs differ between these two databases.
    tables = _load_awkward(postgres_url)
    other = new_database()
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{other.database}"')
    _run(other, "CREATE TABLE filler (a int)", "CREATE TYPE filler_t AS ENUM ('z')")
    _load_awkward(str(other))
    here = _measure(postgres_url, tables)
    there = _measure(other, tables)
    assert {t: (s.rows, s.checksum) for t, s in here.items()} == {
        t: (s.rows, s.checksum) for t, s in there.items()
    }


def test_session_settings_change_no_digest_and_stay_as_they_were(postgres_url: str) -> None:
    # Columns hashed by their text print under the session's settings; a database,
    # role or client default must not turn the same rows into a mismatch.
    tables = _load_awkward(postgres_url)
    plain = _measure(postgres_url, tables, RECORD_DIGEST)
    options = (
        "-c TimeZone=America/New_York -c DateStyle=SQL,DMY -c IntervalStyle=iso_8601 "
        "-c extra_float_digits=0 -c bytea_output=escape"
    )
    engine = sa.create_engine(
        postgres_url, poolclass=sa.pool.NullPool, connect_args={"options": options}
    )
    settings_sql = (
        "SELECT current_setting('TimeZone'), current_setting('DateStyle'), "
        "current_setting('IntervalStyle'), current_setting('extra_float_digits'), "
        "current_setting('bytea_output')"
    )
    try:
        with engine.connect() as conn:
            before = tuple(conn.exec_driver_sql(settings_sql).one())
            odd = OPS.table_stats(conn, tables, digest=RECORD_DIGEST)
            assert tuple(conn.exec_driver_sql(settings_sql).one()) == before  # put back
            assert before[0] == "America/New_York"
    finally:
        engine.dispose()
    assert {t: s.checksum for t, s in odd.items()} == {t: s.checksum for t, s in plain.items()}


def _old_style_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backups written as before methods were named: text digests, no method."""
    real = PgdumpBackend.dump
    monkeypatch.setattr(PostgreSQLDialectOps, "newest_digest", lambda self, conn: TEXT_DIGEST)

    def dump(self: PgdumpBackend, *args: Any, **kwargs: Any) -> DumpResult:
        result = real(self, *args, **kwargs)
        result.extra.pop(ROW_DIGEST_METHOD)
        assert result.extra["row_digest"] == "count(*) and sum(hashtextextended(row::text, 0))"
        return result

    monkeypatch.setattr(PgdumpBackend, "dump", dump)


def test_an_old_manifest_restores_and_verifies_with_the_text_method(
    config: Config,
    postgres_url: str,
    new_database: Callable[[], URL],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tables = _load_awkward(postgres_url)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    with monkeypatch.context() as patch:
        _old_style_dump(patch)
        manifest = create(config, url=postgres_url)
    assert ROW_DIGEST_METHOD not in manifest.extra
    text = _measure(postgres_url, tables, TEXT_DIGEST)
    assert manifest.tables["t_numeric"].checksum == text["t_numeric"].checksum
    target = new_database()
    result = restore(config, manifest.id, url=target)
    assert result.ok, result.mismatches
    assert verify(config, manifest.id, restore_test=True).restore_test_ok is True
    # Into a live database: one transaction, then measured by the same text method.
    _run(target, "UPDATE t_numeric SET v = 1.00 WHERE id = 1")
    again = restore(config, manifest.id, url=target, yes=True)
    assert again.ok, again.mismatches
    # And the old method still sees a changed row.
    _run(target, "UPDATE t_money SET v = '3.00' WHERE id = 1")
    mismatches = compare_stats(
        {"t_money": manifest.tables["t_money"]},
        _measure(target, ["t_money"], TEXT_DIGEST),
        TEXT_DIGEST,
    )
    assert mismatches and "checksum" in mismatches[0]


@pytest.fixture
def unknown_method(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Backups that name a row digest method from the future."""
    real = PgdumpBackend.dump

    def dump(self: PgdumpBackend, *args: Any, **kwargs: Any) -> DumpResult:
        result = real(self, *args, **kwargs)
        result.extra[ROW_DIGEST_METHOD] = "record-v9"
        return result

    with monkeypatch.context() as patch:
        patch.setattr(PgdumpBackend, "dump", dump)
        yield


def test_an_unknown_method_is_refused_before_anything_is_written(
    config: Config,
    postgres_url: str,
    new_database: Callable[[], URL],
    postgres_admin_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    _run(postgres_url, "CREATE TABLE one (id int)", "INSERT INTO one VALUES (1)")
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    request.getfixturevalue("unknown_method")
    manifest = create(config, url=postgres_url)
    assert Catalog.for_config(config).get(manifest.id).extra[ROW_DIGEST_METHOD] == "record-v9"
    target = new_database()
    with pytest.raises(UsageError, match=r"record-v9.*upgrade migration-guard"):
        restore(config, manifest.id, url=target)
    with postgres_admin_engine.connect() as conn:
        assert not conn.exec_driver_sql(
            "SELECT count(*) FROM pg_database WHERE datname = %(n)s",
            {"n": target.database},
        ).scalar_one()
    with pytest.raises(UsageError, match="record-v9"):
        verify(config, manifest.id, restore_test=True)
    outcome = CliRunner().invoke(
        main, ["restore", manifest.id, "--url", str(target.render_as_string(False))]
    )
    assert outcome.exit_code == 2, outcome.output
    assert "record-v9" in outcome.output and "Traceback" not in outcome.output


def test_a_run_record_is_measured_by_the_method_it_names(postgres_url: str) -> None:
    _run(postgres_url, "CREATE TABLE a (v numeric)", "INSERT INTO a VALUES (1.0)")
    engine = _engine(postgres_url)
    try:
        with engine.connect() as conn:
            new = stats_dict(OPS.table_stats(conn, ["a"])["a"])
            assert new["digest"] == RECORD_DIGEST
            old = stats_dict(OPS.table_stats(conn, ["a"], digest=TEXT_DIGEST)["a"])
            old.pop("digest")  # written by a version that named no method
            again = measured_as_recorded(OPS, conn, ["a"], {"a": new})
            assert again["a"].checksum == new["checksum"]
            again = measured_as_recorded(OPS, conn, ["a"], {"a": old})
            assert again["a"].checksum == old["checksum"] and again["a"].digest == TEXT_DIGEST
            with pytest.raises(UsageError, match="record-v9"):
                measured_as_recorded(OPS, conn, ["a"], {"a": {**new, "digest": "record-v9"}})
    finally:
        engine.dispose()


ROWS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        st.one_of(
            st.none(), st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=4)
        ),
        st.one_of(st.none(), st.sampled_from(["1", "1.0", "1.00", "0", "-1"])),
    ),
    max_size=5,
)


@pytest.fixture(scope="module")
def scratch_url(postgres_admin_engine: sa.Engine) -> Iterator[URL]:
    name = unique_name("mg_pgdig")
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield ADMIN_URL.set(database=name)
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _digest_of(url: URL, rows: list[tuple[Any, ...]]) -> tuple[int | None, str | None]:
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS rows_under_test")
            conn.exec_driver_sql("CREATE TABLE rows_under_test (a bigint, b text, c numeric)")
            for row in rows:
                conn.execute(
                    sa.text("INSERT INTO rows_under_test VALUES (:a, :b, CAST(:c AS numeric))"),
                    {"a": row[0], "b": row[1], "c": row[2]},
                )
            stats = OPS.table_stats(conn, ["rows_under_test"])["rows_under_test"]
            return stats.rows, stats.checksum
    finally:
        engine.dispose()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(first=ROWS, second=ROWS, data=st.data())
def test_row_sets_digest_alike_exactly_when_equal(
    scratch_url: URL, first: list[Any], second: list[Any], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(first))
    assert _digest_of(scratch_url, first) == _digest_of(scratch_url, list(shuffled))
    same = sorted(first, key=repr) == sorted(second, key=repr)
    assert (_digest_of(scratch_url, first) == _digest_of(scratch_url, second)) == same


def test_a_table_wider_than_one_record_is_digested_in_groups(postgres_url: str) -> None:
    columns = ", ".join(f"c{i} int8" for i in range(1500))  # 3000 fields: three groups
    _run(
        postgres_url,
        f"CREATE TABLE wide ({columns})",
        "INSERT INTO wide (c0, c1499) VALUES (1, 2), (3, 4)",
    )
    before = _measure(postgres_url, ["wide"])["wide"]
    _run(postgres_url, "UPDATE wide SET c1499 = CASE c1499 WHEN 2 THEN 4 ELSE 2 END")
    after = _measure(postgres_url, ["wide"])["wide"]
    assert (after.rows, after.digest) == (2, RECORD_DIGEST)
    assert after.checksum != before.checksum


def test_a_server_before_14_refuses_record_v2_before_loading(
    postgres_url: str,
    new_database: Callable[[], URL],
    postgres_admin_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _run(postgres_url, "CREATE TABLE one (id int)", "INSERT INTO one VALUES (1)")
    dumped = io.BytesIO()
    backend = PgdumpBackend()
    result = backend.dump(sa.make_url(postgres_url), dumped)
    dumped.seek(0)
    target = new_database()
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    monkeypatch.setattr(PostgreSQLDialectOps, "server_version_num", lambda self, conn: 130011)
    restoring = backend.digesting(result.extra[ROW_DIGEST_METHOD])
    with pytest.raises(UsageError, match="PostgreSQL 14 or later"):
        restoring.restore(target, dumped, stream_format="postgresql-custom")
    assert _measure_tables(target) == []
    # Measured there, a new backup takes the text method.
    engine = _engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert OPS.newest_digest(conn) == TEXT_DIGEST
    finally:
        engine.dispose()


def _measure_tables(url: URL) -> list[str]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return OPS.backup_tables(conn)
    finally:
        engine.dispose()


def test_a_restore_onto_a_server_before_14_is_refused_before_it_creates_anything(
    config: Config,
    postgres_url: str,
    new_database: Callable[[], URL],
    postgres_admin_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not "partly restored" after a database was created for it: refused at once.
    _run(postgres_url, "CREATE TABLE one (id int)", "INSERT INTO one VALUES (1)")
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=postgres_url)
    assert manifest.extra[ROW_DIGEST_METHOD] == RECORD_DIGEST
    target = new_database()
    monkeypatch.setattr(PostgreSQLDialectOps, "server_version_num", lambda self, conn: 130011)
    with pytest.raises(UsageError, match="PostgreSQL 14 or later") as refused:
        restore(config, manifest.id, url=target)
    assert refused.value.exit_code == 2
    with pytest.raises(UsageError, match="PostgreSQL 14 or later"):
        verify(config, manifest.id, restore_test=True)
    with postgres_admin_engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"),
                {"n": target.database},
            ).scalar_one()
            == 0
        )

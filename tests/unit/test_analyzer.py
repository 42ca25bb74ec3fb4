"""The analyzer: exemptions, schema tracking, severity by protection, never raising."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_guard.analysis.analyzer import analyze, analyze_sql, preview
from migration_guard.analysis.model import (
    ColumnDef,
    ColumnType,
    Operation,
    OpKind,
    Report,
    Severity,
    Statement,
    TableRef,
)
from migration_guard.config import ProtectedTables


def _statement(
    kind: OpKind, table: str, *, line: int, unit: str = "rev1", file: str = "r.py", **fields: object
) -> Statement:
    bare = Statement(sql=f"-- {kind.value} {table}", file=file, line=line, unit=unit)
    operation = Operation(kind, bare, table=TableRef(table), **fields)  # type: ignore[arg-type]
    return Statement(sql=bare.sql, file=file, line=line, unit=unit, known_operations=(operation,))


def _rules(report: Report) -> list[tuple[str, int]]:
    return [(finding.rule, finding.line) for finding in report.findings]


def test_exemption_applies_only_within_the_same_unit() -> None:
    statements = [
        _statement(OpKind.CREATE_TABLE, "scratch", line=1, unit="rev1"),
        _statement(OpKind.DROP_COLUMN, "scratch", line=2, unit="rev1", column="c"),
        _statement(OpKind.TRUNCATE_TABLE, "scratch", line=3, unit="rev1"),
        _statement(OpKind.DROP_TABLE, "scratch", line=1, unit="rev2", file="s.py"),
    ]
    report = analyze(statements, dialect="postgresql", protected=ProtectedTables())
    assert _rules(report) == [("drop-table", 1)]
    assert report.findings[0].file == "s.py"


def test_exemption_follows_a_table_rename() -> None:
    sql = "CREATE TABLE a (id INT);\nALTER TABLE a RENAME TO b;\nDROP TABLE b;\nDROP TABLE a;"
    report = analyze_sql(sql, dialect="postgresql")
    assert _rules(report) == [("rename-table", 2), ("drop-table", 4)]


@pytest.mark.parametrize("dialect", ["mysql", "postgresql", "sqlite"])
def test_create_if_not_exists_does_not_exempt(dialect: str) -> None:
    sql = "CREATE TABLE IF NOT EXISTS users (id INT);\nDROP TABLE users;"
    assert _rules(analyze_sql(sql, dialect=dialect)) == [("drop-table", 2)]


def test_schema_qualified_tables_are_distinct_for_the_exemption() -> None:
    report = analyze_sql("CREATE TABLE app.t (id INT);\nDROP TABLE other.t;", dialect="mysql")
    assert _rules(report) == [("drop-table", 2)]


def test_widening_with_type_known_from_create() -> None:
    sql = (
        "CREATE TABLE t (id INT, name VARCHAR(50));\n"
        "ALTER TABLE t MODIFY name VARCHAR(255);\n"
        "ALTER TABLE t MODIFY name VARCHAR(100);\n"
    )
    assert _rules(analyze_sql(sql, dialect="mysql")) == [("alter-column-type", 3)]


def test_widening_with_type_stated_by_alembic_existing_type() -> None:
    widen = _statement(
        OpKind.ALTER_COLUMN_TYPE,
        "users",
        line=4,
        column="age",
        old_type=ColumnType("SMALLINT"),
        new_type=ColumnType("INTEGER"),
    )
    narrow = _statement(
        OpKind.ALTER_COLUMN_TYPE,
        "users",
        line=9,
        column="name",
        old_type=ColumnType("VARCHAR", (100,)),
        new_type=ColumnType("VARCHAR", (20,)),
    )
    report = analyze([widen, narrow], dialect="postgresql", protected=ProtectedTables())
    assert _rules(report) == [("alter-column-type", 9)]
    assert "VARCHAR(100)" in report.findings[0].message


def test_type_known_from_add_column_operation() -> None:
    add = _statement(
        OpKind.ADD_COLUMN,
        "users",
        line=1,
        columns=(ColumnDef("code", ColumnType("CHAR", (2,))),),
    )
    alter = _statement(
        OpKind.ALTER_COLUMN_TYPE, "users", line=2, column="code", new_type=ColumnType("CHAR", (3,))
    )
    assert analyze([add, alter], dialect="mysql", protected=ProtectedTables()).findings == []


def test_error_vs_warning_by_protection() -> None:
    sql = "DROP TABLE logs;\nDROP TABLE customers;\nDROP TABLE billing.invoices;"
    protected = ProtectedTables(patterns=("cust*", "billing.*"))
    report = analyze_sql(sql, dialect="postgresql", protected=protected)
    assert [(f.table, f.severity) for f in report.findings] == [
        ("logs", Severity.WARNING),
        ("customers", Severity.ERROR),
        ("billing.invoices", Severity.ERROR),
    ]
    assert report.has_errors


def test_nothing_configured_protects_everything() -> None:
    report = analyze_sql("DROP TABLE logs;", dialect="sqlite")
    assert [f.severity for f in report.findings] == [Severity.ERROR]


@pytest.mark.parametrize("version_table", ["alembic_version", "ALEMBIC_VERSION"])
def test_version_table_is_always_protected(version_table: str) -> None:
    protected = ProtectedTables(patterns=("users",))
    report = analyze_sql(f"DELETE FROM {version_table};", dialect="mysql", protected=protected)
    assert [(f.rule, f.severity) for f in report.findings] == [
        ("delete-without-where", Severity.ERROR)
    ]


def test_custom_version_table_is_protected() -> None:
    protected = ProtectedTables(patterns=("users",), version_table="schema_history")
    report = analyze_sql("TRUNCATE TABLE schema_history;", protected=protected)
    assert [f.severity for f in report.findings] == [Severity.ERROR]


def test_findings_are_sorted_and_statements_counted() -> None:
    extra_statement = Statement(sql="DROP TABLE z", file="a.sql", line=5)
    extra = analyze_sql("DROP TABLE z;", file="a.sql").findings[0]
    report = analyze(
        [_statement(OpKind.DROP_TABLE, "b", line=3, file="b.sql")],
        dialect="mysql",
        protected=ProtectedTables(),
        extra_findings=[extra],
    )
    assert [(f.file, f.line) for f in report.findings] == [("a.sql", 1), ("b.sql", 3)]
    assert report.statements == 1
    assert report.files == ["b.sql"]
    assert extra_statement.line == 5


def test_report_counts_statements_and_files() -> None:
    report = analyze_sql("SELECT 1;\nSELECT 2;\n-- nothing\n", file="x.sql")
    assert report.statements == 2
    assert report.files == ["x.sql"]
    assert report.findings == []


def test_finding_fields_point_at_the_statement() -> None:
    sql = "SELECT 1;\n\n   DELETE FROM shop.orders -- everything\n;"
    finding = analyze_sql(sql, file="m.sql", dialect="mysql").findings[0]
    assert (finding.file, finding.line, finding.column) == ("m.sql", 3, 4)
    assert finding.table == "shop.orders"
    assert finding.statement.startswith("DELETE FROM shop.orders")
    assert finding.hint


def test_long_statements_are_truncated_in_findings() -> None:
    long_sql = "UPDATE t SET name = CONCAT(" + ", ".join(["'x'"] * 400) + ");"
    finding = analyze_sql(long_sql).findings[0]
    assert len(finding.statement) <= 500
    assert finding.statement.endswith("...")
    assert preview("  short  ") == "short"


def test_a_failing_statement_source_becomes_unanalyzable() -> None:
    def statements() -> Iterator[Statement]:
        yield _statement(OpKind.DROP_TABLE, "t", line=1)
        raise RuntimeError("boom")

    report = analyze(statements(), dialect="mysql", protected=ProtectedTables())
    assert [(f.rule, f.severity) for f in report.findings] == [
        ("drop-table", Severity.ERROR),
        ("unanalyzable", Severity.ERROR),
    ]


def test_statements_with_known_operations_skip_the_parser() -> None:
    statement = _statement(OpKind.NO_OP, "t", line=1)
    report = analyze([statement], dialect="mysql", protected=ProtectedTables())
    assert report.findings == [] and report.statements == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(max_size=400),
    dialect=st.sampled_from(["mysql", "mariadb", "postgresql", "sqlite"]),
)
def test_never_raises_over_any_text(text: str, dialect: str) -> None:
    report = analyze_sql(text, dialect=dialect)
    assert all(finding.line >= 1 for finding in report.findings)


_SQLISH = st.lists(
    st.sampled_from(
        [
            "DROP TABLE ",
            "ALTER TABLE ",
            "t",
            "`x`",
            '"y"',
            " DROP ",
            " COLUMN ",
            "CREATE ",
            "TABLE ",
            "(a INT)",
            ";",
            "'",
            "--",
            "/*",
            "*/",
            "$$",
            "\n",
            "DELIMITER //",
            "BEGIN ",
            "END",
            "MODIFY c VARCHAR(10)",
            "PREPARE s FROM @q",
            " WHERE 1=1",
            "DELETE FROM ",
            "# migration-guard: allow drop-table because: x\n",
            ",",
            "RENAME TO ",
            ".",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_SQLISH, dialect=st.sampled_from(["mysql", "postgresql", "sqlite"]))
def test_never_raises_over_sql_like_text(text: str, dialect: str) -> None:
    report = analyze_sql(text, dialect=dialect)
    lines = text.count("\n") + 1
    assert all(1 <= finding.line <= lines for finding in report.findings)


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE IF NOT EXISTS t (id INT)",
        "create table if not exists t (id int)",
        "CREATE TABLE iF nOt ExIsTs t (id INT)",
        "CREATE TABLE If\tNOT\nEXISTS t (id INT)",
        "CREATE TABLE \u0130F NOT EXISTS t (id INT)",
        "CREATE TABLE \u0131f NOT EXISTS t (id INT)",
        "CREATE TABLE diff (id INT)",
        "CREATE TABLE t (id INT)",
        "CREATE TABLE t (caf\u00e9 INT)",
    ],
)
def test_the_if_not_exists_test_reads_as_the_pattern(sql: str) -> None:
    # A CREATE TABLE that may find the table already there exempts nothing; the plain
    # test before the case-insensitive search must never answer otherwise than it.
    from migration_guard.analysis import rules

    assert rules._says_if_not_exists(sql) == (rules._IF_NOT_EXISTS.search(sql) is not None)

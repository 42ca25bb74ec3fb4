"""Issue 16: literal dynamic SQL is analysed as if it were written where its literal is."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration_guard.analysis.analyzer import analyze, analyze_sql
from migration_guard.analysis.model import Report
from migration_guard.analysis.splitter import split_sql
from migration_guard.config import ProtectedTables

# The first pattern of the issue, as written in real migrations.
IDEMPOTENT_DROP = """\
SET @preparedStatement = (SELECT IF(
    (SELECT COUNT(*) FROM INFORMATION_SCHEMA.COLUMNS
     WHERE table_name = 'TeamMembers' AND table_schema = DATABASE()
       AND column_name = 'SchemeUser') > 0,
    'ALTER TABLE TeamMembers DROP COLUMN SchemeUser;',
    'SELECT 1'
));
PREPARE alterIfExists FROM @preparedStatement;
EXECUTE alterIfExists;
DEALLOCATE PREPARE alterIfExists;
"""


def report(sql: str, dialect: str = "mysql", file: str = "m.sql") -> Report:
    return analyze_sql(sql, file=file, dialect=dialect, protected=ProtectedTables())


def active(sql: str, dialect: str = "mysql") -> list[tuple[str, str | None, int]]:
    return [(f.rule, f.table, f.line) for f in report(sql, dialect).active]


def test_the_issue_pattern_gives_the_real_rule_table_and_line() -> None:
    found = report(IDEMPOTENT_DROP).active
    assert [(f.rule, f.table, f.line, f.column) for f in found] == [
        ("drop-column", "TeamMembers", 5, 5)
    ]
    assert "inside PREPARE alterIfExists" in found[0].message
    assert found[0].statement == "ALTER TABLE TeamMembers DROP COLUMN SchemeUser"


@pytest.mark.parametrize("dialect", ["mysql", "mariadb"])
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # PREPARE FROM a literal
        (
            "SELECT 1;\nPREPARE s FROM\n  'DROP TABLE users';\nEXECUTE s;",
            [("drop-table", "users", 3)],
        ),
        # a variable set to a literal; a later SET wins
        (
            "SET @q = 'SELECT 1';\nSET @q = 'TRUNCATE TABLE orders';\nPREPARE s FROM @q;",
            [("truncate-table", "orders", 2)],
        ),
        # := and CONCAT of literals (and of a variable holding a literal)
        (
            "SET @t := 'users';\nSET @q = CONCAT('ALTER TABLE ', @t,\n ' DROP COLUMN email');\n"
            "PREPARE s FROM @q;\nEXECUTE s;",
            [("drop-column", "users", 2)],
        ),
        # IF: every branch counts
        (
            "SET @q = IF(@@version > 8, 'DROP TABLE a',\n  'DROP TABLE b');\nPREPARE s FROM @q;",
            [("drop-table", "a", 1), ("drop-table", "b", 2)],
        ),
        # CASE: every THEN and the ELSE
        (
            "SET @q = CASE WHEN 1 THEN 'DELETE FROM a'\n WHEN 2 THEN 'SELECT 1'\n"
            " ELSE CONCAT('TRUNCATE ', 'b') END;\nPREPARE s FROM @q;",
            [("delete-without-where", "a", 1), ("truncate-table", "b", 3)],
        ),
        # SELECT ... INTO
        (
            "SELECT IF(COUNT(*) > 0, 'DROP TABLE c', 'SELECT 1') INTO @q\n"
            "  FROM information_schema.tables;\nPREPARE s FROM @q;",
            [("drop-table", "c", 1)],
        ),
        # MariaDB's EXECUTE IMMEDIATE of a literal and of an expression
        ("EXECUTE IMMEDIATE 'DROP TABLE d';", [("drop-table", "d", 1)]),
        (
            "SET @x = 'e';\nEXECUTE IMMEDIATE CONCAT('DROP TABLE ', @x);",
            [("drop-table", "e", 2)],  # the line of its first literal
        ),
        # version comments hold SQL the server runs
        ("/*!50001 SET @q = 'DROP TABLE f' */;\nPREPARE s FROM @q;", [("drop-table", "f", 1)]),
    ],
)
def test_each_dynamic_form_is_resolved(
    dialect: str, sql: str, expected: list[tuple[str, str, int]]
) -> None:
    assert active(sql, dialect) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SET @q = 'SELECT 1';\nPREPARE s FROM @q;\nEXECUTE s;\nDEALLOCATE PREPARE s;",
        "SET @q = IF(1, 'SELECT 1', 'DO 0');\nPREPARE s FROM @q;\nEXECUTE s;",
        "PREPARE s FROM 'SET @a = 1';\nEXECUTE s;",
        "SET @q = NULL;\nPREPARE s FROM @q;",
    ],
)
def test_no_op_branches_add_nothing(sql: str) -> None:
    assert active(sql) == []


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("PREPARE s FROM @from_elsewhere;", "@from_elsewhere is not set in this file"),
        (
            "SET @q = (SELECT CONCAT('DROP TABLE ', table_name)\n"
            "  FROM information_schema.tables LIMIT 1);\nPREPARE s FROM @q;",
            "table_name",
        ),
        ("SET @q = CONCAT('DROP TABLE ', UUID());\nPREPARE s FROM @q;", "UUID"),
        # the variable is overwritten in a way the check does not follow
        (
            "SET @q = 'SELECT 1';\nSELECT @q := name FROM t LIMIT 1;\nPREPARE s FROM @q;",
            "not followed",
        ),
        # a procedure from outside the file may set it
        ("SET @q = 'SELECT 1';\nCALL elsewhere();\nPREPARE s FROM @q;", "CALL elsewhere"),
    ],
)
def test_what_cannot_be_known_stays_unanalyzable(sql: str, reason: str) -> None:
    found = report(sql).active
    assert [f.rule for f in found if f.rule != "unanalyzable" or "PREPARE" in f.message] == [
        "unanalyzable"
    ]
    finding = next(f for f in found if "PREPARE" in f.message)
    assert finding.line == sql.count("\n", 0, sql.index("PREPARE")) + 1
    assert reason in finding.message
    assert finding.severity.value == "error"


def test_a_partly_known_value_reports_both_parts() -> None:
    sql = "SET @q = IF(@x, 'DROP TABLE a', CONCAT('DROP TABLE ', @@hostname));\nPREPARE s FROM @q;"
    assert active(sql) == [("drop-table", "a", 1), ("unanalyzable", None, 2)]


def test_execute_of_an_unknown_statement_stays_unanalyzable() -> None:
    assert active("EXECUTE from_elsewhere;") == [("unanalyzable", None, 1)]


def test_variables_do_not_leak_from_another_file() -> None:
    first = split_sql("SET @q = 'SELECT 1';", file="a.sql", unit="a.sql")
    second = split_sql("PREPARE s FROM @q;", file="b.sql", unit="b.sql")
    result = analyze(first + second, dialect="mysql", protected=ProtectedTables())
    assert [(f.rule, f.file) for f in result.active] == [("unanalyzable", "b.sql")]


@pytest.mark.parametrize(
    "comment_line",
    [
        0,  # above the SET that holds the literal
        4,  # directly above the literal, inside the statement
        7,  # above the PREPARE
    ],
)
def test_suppressions_apply_to_resolved_findings(comment_line: int) -> None:
    lines = IDEMPOTENT_DROP.splitlines()
    lines.insert(
        comment_line, "-- migration-guard: allow drop-column because: archived in ticket 12"
    )
    result = report("\n".join(lines) + "\n")
    assert [f.rule for f in result.findings] == ["drop-column"]
    assert result.findings[0].suppressed
    assert result.findings[0].reason == "archived in ticket 12"


def test_a_suppression_elsewhere_does_not_apply() -> None:
    sql = (
        "-- migration-guard: allow drop-column because: wrong place\nSELECT 1;\n" + IDEMPOTENT_DROP
    )
    result = report(sql)
    assert [(f.rule, f.suppressed) for f in result.findings] == [
        ("unused-suppression", False),
        ("drop-column", False),
    ]


_LITERALS = st.sampled_from(
    [
        "DROP TABLE a",
        "SELECT 1",
        "TRUNCATE TABLE b",
        "DELETE FROM c",
        "DO 0",
        "ALTER TABLE d DROP COLUMN e",
    ]
)


def _expression(draw: st.DrawFn, depth: int) -> tuple[str, set[str]]:
    """A random IF/CASE/CONCAT expression and every text it can have."""
    choice = draw(st.integers(0, 3 if depth < 3 else 0))
    if choice == 0:
        text = draw(_LITERALS)
        return "'" + text + "'", {text}
    if choice == 1:
        (a, texts_a), (b, texts_b) = _expression(draw, depth + 1), _expression(draw, depth + 1)
        return f"IF(@c > 1, {a}, {b})", texts_a | texts_b
    if choice == 2:
        (a, texts_a), (b, texts_b) = _expression(draw, depth + 1), _expression(draw, depth + 1)
        return f"(SELECT CASE WHEN x THEN {a} ELSE {b} END FROM t)", texts_a | texts_b
    text = draw(_LITERALS)
    head, _, tail = text.partition(" ")
    return f"CONCAT('{head}', ' ', '{tail}')", {text}


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, set[str]]:
    return _expression(draw, 0)


_RULE_OF = {
    "DROP TABLE a": ("drop-table", "a"),
    "TRUNCATE TABLE b": ("truncate-table", "b"),
    "DELETE FROM c": ("delete-without-where", "c"),
    "ALTER TABLE d DROP COLUMN e": ("drop-column", "d"),
}


@settings(max_examples=150, deadline=None)
@given(expressions())
def test_every_branch_of_any_nesting_counts(case: tuple[str, set[str]]) -> None:
    expression, texts = case
    sql = f"SET @q = {expression};\nPREPARE s FROM @q;\nEXECUTE s;\n"
    found = {(f.rule, f.table) for f in report(sql).active}
    assert found == {_RULE_OF[text] for text in texts if text in _RULE_OF}


def test_a_text_that_doubles_again_and_again_fails_closed_without_exhausting_memory() -> None:
    sql = "SET @a = 'DROP TABLE a;';\n" + "SET @a = CONCAT(@a, @a);\n" * 60 + "PREPARE s FROM @a;\n"
    found = report(sql).active
    assert [(f.rule, f.line) for f in found] == [("unanalyzable", 62)]
    assert "too long" in found[0].message


def test_alternatives_that_multiply_fail_closed() -> None:
    sql = (
        "SET @a = IF(x, 'DROP TABLE a', 'SELECT 1');\n"
        + ("SET @a = CONCAT(IF(y, @a, ''), IF(z, @a, ' '));\n" * 8)
        + "PREPARE s FROM @a;\n"
    )
    found = report(sql).active
    assert [f.rule for f in found] == ["unanalyzable"]
    assert "too many alternatives" in found[0].message


def test_one_alternative_does_not_exempt_another() -> None:
    sql = "SET @q = IF(x, 'CREATE TABLE t (id INT)', 'DROP TABLE t');\nPREPARE s FROM @q;\n"
    assert active(sql) == [("drop-table", "t", 1)]

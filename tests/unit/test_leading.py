"""The cheap test that keeps the runtime (dynamic SQL, stored programs) out of plain runs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from migration_guard.analysis import suppress
from migration_guard.analysis.analyzer import SUPPRESSION_MARKER
from migration_guard.analysis.leading import TRIVIA, handled_keyword
from migration_guard.analysis.lexical import opens_compound

#: The single pattern the runtime used before the cheap test (the reference), with the
#: same unambiguous leading trivia (the old ``(?:\s+|--[^\n]*|...)*`` was exponential).
_REFERENCE = re.compile(
    TRIVIA
    + r"""
    (SET|SELECT|PREPARE|EXECUTE|CALL|BEGIN(?=\s+NOT\b)|DROP(?=\s+PROCEDURE\b)
    |CREATE(?=\s.{0,400}?\b(?:PROCEDURE|FUNCTION|TRIGGER|EVENT)\b))\b""",
    re.DOTALL | re.IGNORECASE | re.VERBOSE,
)


def _reference(sql: str) -> str:
    match = _REFERENCE.match(sql)
    return match.group(1).upper() if match else ""


STATEMENTS = [
    "CREATE TABLE t (id int)",
    "create procedure p() begin drop table t; end",
    "CREATE DEFINER=`root`@`%` TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET @x = 1",
    "CREATE TABLE event (id int)",
    "CREATE TABLE t (" + "c int, " * 80 + "x int) -- PROCEDURE far away",
    "CREATE " + " " * 399 + "FUNCTION f() RETURNS int RETURN 1",
    "CREATE " + " " * 400 + "FUNCTION f() RETURNS int RETURN 1",
    "CREATE TABLE t (id int) COMMENT 'pac\u212aage'",
    "CREATE OR REPLACE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t",
    "CREATE INDEX procedure_idx ON t (a)",
    "CREATE TABLE t (a int) /* functional */",
    "-- note\nSET @a = 'x'",
    "/* c */ SELECT 1 INTO @a",
    "BEGIN NOT ATOMIC DROP TABLE t; END",
    "BEGIN",
    "DROP PROCEDURE IF EXISTS p",
    "DROP TABLE t",
    "CALL p()",
    "PREPARE s FROM @q",
    "EXECUTE IMMEDIATE 'DROP TABLE t'",
    "INSERT INTO t VALUES (1)",
    "CREATEX TABLE t",
]


@pytest.mark.parametrize("sql", STATEMENTS)
def test_the_cheap_test_reads_as_the_single_pattern(sql: str) -> None:
    assert handled_keyword(sql) == _reference(sql)


_WORDS = st.sampled_from(
    ["CREATE", "create", "TABLE", "PROCEDURE", "procedure", "FUNCTION", "TRIGGER", "EVENT",
     "event", "PACKAGE", "SET", "x", "@v", "(", ")", ";", "'s'", "K", "\u212a", "AGGREGATE",
     "DEFINER", "=", "`u`@`h`", "\n", "-- c\n", "/* c */", "/*!50003", "*/", " " * 120]
)  # fmt: skip


@given(st.lists(_WORDS, max_size=12))
def test_the_cheap_tests_never_disagree_with_the_patterns(words: list[str]) -> None:
    sql = " ".join(words)
    if not re.match(r"\s*/\*.*?\*/", sql, re.DOTALL):  # leading comments: see below
        assert handled_keyword(sql) == _reference(sql)
    text = "CREATE " + sql
    assert opens_compound(text, 0) == _slow_opens_compound(text)


_HEADER_WORDS = st.sampled_from(
    ["CREATE", "create", "CrEaTe", "TABLE", "INDEX", "COMMENT", "ON", "OR", "REPLACE", "TEMP",
     "TEMPORARY", "CONSTRAINT", "SQL", "SECURITY", "DEFINER", "DEFINER=", "TRIGGER",
     "TRIGGERS", "TR\u0131GGER", "\u0130NDEX", "PAC\u212aAGE", "\u017fQL", "EVENT", "x",
     "$", "_", "1", "\u00e9", "=", "'a'", "`u`@`h`", "\n", "\t", "\u2003", "-- c\n",
     "/* c */", "/*!50003", "*/", "#"]
)  # fmt: skip


@given(st.lists(_HEADER_WORDS, min_size=1, max_size=10), st.sampled_from(["", " "]))
@example(["CREATE", "PAC\u212aAGE"], " ")
@example(["CREATE", "TR\u0131GGER"], " ")
@example(["CREATE", "OR", "REPLACE", "\u017fQL"], " ")
@example(["CREATE", "TABLE", "x", "(", "TRIGGER", ")"], " ")
def test_the_header_test_reads_the_word_after_create_as_the_pattern(
    words: list[str], glue: str
) -> None:
    # opens_compound answers from the word after CREATE (or its absence) without the
    # window; unusual letters (dotless i, long s, the Kelvin sign) and blanks must
    # still answer as the pattern does.
    text = glue.join(words)
    assert opens_compound(text, 0) == _slow_opens_compound(text)


def _slow_opens_compound(text: str) -> bool:
    """opens_compound without its plain test for the program words."""
    from migration_guard.analysis import lexical

    head = text[: lexical._HEADER_WINDOW]
    comments, version_markers, compound_header = lexical._header_patterns()
    head = version_markers.sub(" ", comments.sub(" ", head))
    return compound_header.match(head) is not None


def test_a_create_table_after_a_comment_is_not_read_as_a_later_statement() -> None:
    # The single pattern let a leading comment stretch to a later "*/" and read the
    # SET there; the statement is a CREATE TABLE, which the runtime does not handle.
    sql = "/* a */ CREATE TABLE t (c text DEFAULT '*/ SET')"
    old = re.compile(r"(?:\s+|--[^\n]*|\#[^\n]*|/\*.*?\*/)*(SET)\b", re.DOTALL)
    assert old.match(sql) is not None
    assert _reference(sql) == ""
    assert handled_keyword(sql) == ""


def test_the_analyzer_and_suppress_agree_on_the_marker() -> None:
    assert SUPPRESSION_MARKER == suppress._MARKER


def test_a_plain_migration_loads_neither_the_runtime_nor_suppressions() -> None:
    code = (
        "import sys\n"
        "from migration_guard.analysis.analyzer import analyze_sql\n"
        "report = analyze_sql('CREATE TABLE t (id int);\\nDROP TABLE u;\\n', dialect='mysql')\n"
        "assert report.findings, report\n"
        "loaded = [m for m in ('migration_guard.analysis.runtime',"
        " 'migration_guard.analysis.dynamic_values', 'migration_guard.analysis.programs',"
        " 'migration_guard.analysis.suppress', 'sqlglot') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "sql",
    [
        " " * 400 + "INSERT INTO t VALUES (1)",
        "-- c\n" + " \t\n" * 300 + "DELETE FROM t",
        "-- " + "-- " * 300 + "\nUPDATE t SET a = 1",
        "/* a */ " * 200 + "ALTER TABLE t ADD c int",
        "# x\n" * 200 + " " * 200 + "x",
    ],
)
def test_leading_blanks_and_comments_are_read_in_one_way(sql: str) -> None:
    """A statement that starts with a long run of blanks or comments and is not one the
    runtime handles is answered at once: the leading trivia has exactly one reading, so
    a failed match cannot try every way of splitting it (which never ended before)."""
    assert handled_keyword(sql) == ""
    assert handled_keyword(sql.replace("INSERT", "SET @a = 1;").replace("DELETE", "CALL")) in {
        "",
        "SET",
        "CALL",
    }

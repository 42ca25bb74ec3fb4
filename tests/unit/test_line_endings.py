"""Issue 16: line endings are read as the server reads them, and malformed input fails closed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_guard.analysis.analyzer import analyze_sql
from migration_guard.analysis.model import Finding, Report, Severity
from migration_guard.cli import main
from migration_guard.config import ProtectedTables

PROTECTED = ProtectedTables(patterns=("customers", "orders"))


def check(text: str, dialect: str, protected: ProtectedTables = PROTECTED) -> Report:
    return analyze_sql(text, file="m.sql", dialect=dialect, protected=protected)


def located(report: Report) -> list[tuple[str, str, str, int, int, bool]]:
    return sorted(
        (f.rule, f.severity.value, f.table or "", f.line, f.column, f.suppressed)
        for f in report.findings
    )


def malformed(report: Report) -> list[Finding]:
    return [f for f in report.active if f.message.startswith("malformed input")]


# --- line endings -----------------------------------------------------------------------------


def test_postgres_comment_ends_at_a_bare_cr() -> None:
    """The issue's example: in PostgreSQL the comment ends at the CR (scan.l)."""
    report = check("-- note\rDROP TABLE customers;\r", "postgresql")
    assert located(report) == [("drop-table", "error", "customers", 2, 1, False)]


@pytest.mark.parametrize("dialect", ["mysql", "mariadb", "sqlite"])
def test_mysql_and_sqlite_comment_runs_to_lf_and_what_it_hides_is_an_error(dialect: str) -> None:
    """MariaDB and SQLite run the comment to the LF (tests/db checks the servers): the
    DROP is not executed there, but a tool that breaks lines at CR would run it."""
    report = check("-- note\rDROP TABLE customers;\r", dialect)
    [finding] = report.findings
    assert (finding.rule, finding.severity, finding.line, finding.column) == (
        "unanalyzable",
        Severity.ERROR,
        2,
        1,
    )
    assert finding.table == "customers"
    assert "carriage return inside a -- or # comment" in finding.message
    assert report.has_errors


@pytest.mark.parametrize("dialect", ["mysql", "postgresql", "sqlite"])
def test_crlf_comment_ends_at_the_line_end_everywhere(dialect: str) -> None:
    report = check("-- note\r\nDROP TABLE customers;\r\n", dialect)
    assert located(report) == [("drop-table", "error", "customers", 2, 1, False)]


@pytest.mark.parametrize("dialect", ["mysql", "postgresql", "sqlite"])
def test_cr_only_file_reports_each_finding_on_its_own_line(dialect: str) -> None:
    text = "SELECT 1;\rDROP TABLE orders;\r\rALTER TABLE customers\r  DROP COLUMN email;\r"
    if dialect == "sqlite":
        text = text.replace("ALTER TABLE customers\r  DROP COLUMN email", "DELETE FROM customers")
    report = check(text, dialect)
    assert [(f.rule, f.line) for f in report.findings] == [
        ("drop-table", 2),
        ("drop-column" if dialect != "sqlite" else "delete-without-where", 4),
    ]


def test_suppression_above_a_statement_in_a_cr_only_file() -> None:
    text = "-- migration-guard: allow drop-table because: archived\rDROP TABLE orders;\r"
    report = check(text, "postgresql")
    assert located(report) == [("drop-table", "error", "orders", 2, 1, True)]


def test_cli_exits_nonzero_on_the_issue_example(tmp_path: Path) -> None:
    path = tmp_path / "m.sql"
    path.write_bytes(b"-- note\rDROP TABLE customers;\r")
    for dialect in ("postgresql", "mysql"):
        result = CliRunner().invoke(main, ["check", str(path), "--dialect", dialect])
        assert result.exit_code == 1, result.output


# Lines of a migration (a line break inside one gets the same ending as the line).
_LINES = [
    "DROP TABLE customers;",
    "ALTER TABLE orders",
    "  DROP COLUMN total;",
    "DELETE FROM customers;",
    "UPDATE orders SET total = 0 WHERE id = 1;",
    "INSERT INTO audit (id, note) VALUES (1, 'a;b');",
    "SELECT 'two\nlines -- not a comment' AS text;",
    "/* a block\n   comment ; -- */ TRUNCATE TABLE orders;",
    "\t",  # (an empty line after a CR break would turn it into a CRLF)
    "   ",
    "-- a line comment; DROP TABLE nothing",
    "-- migration-guard: allow drop-table because: archived",
    "DROP TABLE orders; -- trailing note",
    "CREATE TABLE scratch (id int);",
    "DROP TABLE scratch;",
]
_BREAKS = ["\n", "\r\n", "\r"]


def _hides_text(lines: list[str], endings: list[str]) -> bool:
    """Whether a real -- comment line ends in a bare CR with more than blanks up to the next LF."""
    built = [line.replace("\n", end) + end for line, end in zip(lines, endings, strict=False)]
    for index, line in enumerate(lines):
        real_comment = line.startswith("--") or line.endswith("-- trailing note")
        if real_comment and endings[index] == "\r":
            rest = "".join(built[index + 1 :]).split("\n", 1)[0]
            if rest.strip():
                return True
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.sampled_from(_LINES), min_size=1, max_size=25),
    breaks=st.lists(st.sampled_from(_BREAKS), min_size=25, max_size=25),
    dialect=st.sampled_from(["mysql", "postgresql", "sqlite"]),
)
def test_same_findings_at_the_same_lines_whatever_the_line_endings(
    lines: list[str], breaks: list[str], dialect: str
) -> None:
    if dialect == "sqlite":
        lines = [line for line in lines if "DROP COLUMN" not in line]
    text_lf = "\n".join(lines) + "\n"
    uniform = {e: e.join(line.replace("\n", e) for line in lines) + e for e in _BREAKS}
    mixed = "".join(
        line.replace("\n", ending) + ending for line, ending in zip(lines, breaks, strict=False)
    )
    expected = located(check(text_lf, dialect))
    assert located(check(uniform["\r\n"], dialect)) == expected
    # In MySQL/MariaDB and SQLite a -- comment runs past a bare CR (as in the server):
    # what it hides there is reported instead.
    for text, endings in ((uniform["\r"], ["\r"] * len(lines)), (mixed, breaks)):
        if dialect != "postgresql" and _hides_text(lines, endings):
            assert malformed(check(text, dialect)), "hidden text must be reported"
            continue
        assert located(check(text, dialect)) == expected


# --- malformed input --------------------------------------------------------------------------

_OPEN_CASES = [
    # (dialect, text, line and column where the construct opened, what)
    ("mysql", "DELETE FROM customers WHERE name = 'abc;\nDROP TABLE x;\n", (1, 36), "string"),
    ("postgresql", "DELETE FROM customers WHERE name = 'abc;\nSELECT 1;\n", (1, 36), "string"),
    ("sqlite", "DELETE FROM customers WHERE name = 'abc;\nSELECT 1;\n", (1, 36), "string"),
    ("mysql", "SELECT 1;\r\nUPDATE customers SET a = 'x\\';\r\nSELECT 2;", (2, 26), "string"),
    ("postgresql", "SELECT 1;\rUPDATE customers SET a = E'x\\';\rSELECT 2;", (2, 27), "string"),
    ("mysql", "SELECT 1;\nDROP TABLE `customers;\n", (2, 12), "identifier"),
    ("postgresql", 'SELECT 1;\nDROP TABLE "customers;\n', (2, 12), "identifier"),
    ("sqlite", "SELECT 1;\nDROP TABLE [customers;\n", (2, 12), "identifier"),
    ("mysql", "SELECT 1;\n/* DROP TABLE customers;\n", (2, 1), "comment"),
    ("mysql", "SELECT 1 /* x\nDROP TABLE customers;", (1, 10), "comment"),
    ("mysql", "SELECT 1;\n/*!40101 DROP TABLE customers;\n", (2, 1), "comment"),
    ("postgresql", "SELECT 1;\n/* /* nested */ DROP TABLE customers;\n", (2, 1), "comment"),
    ("postgresql", "SELECT 1;\nDO $body$ BEGIN DROP TABLE customers; END", (2, 4), "dollar"),
    ("mysql", "SELECT 1;\nDELIMITER\nDROP TABLE customers;\n", (2, 1), "DELIMITER"),
    ("mysql", "DELIMITER $$\nCREATE PROCEDURE p() BEGIN DROP TABLE customers; END\n", (2, 1), "$$"),
    ("mysql", "CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW BEGIN DELETE FROM b;", (1, 1), "IN"),
]  # fmt: skip


@pytest.mark.parametrize(("dialect", "text", "where", "what"), _OPEN_CASES)
def test_input_left_open_is_an_error_where_it_opened(
    dialect: str, text: str, where: tuple[int, int], what: str
) -> None:
    # Even with only an unrelated table protected: never exit 0.
    report = check(text, dialect, ProtectedTables(patterns=("unrelated",)))
    [finding] = malformed(report)
    assert (finding.rule, finding.severity) == ("unanalyzable", Severity.ERROR)
    assert (finding.line, finding.column) == where
    assert f"at line {where[0]}, column {where[1]}" in finding.message
    assert what in finding.message
    assert report.has_errors


@pytest.mark.parametrize(
    ("dialect", "text"),
    [
        ("mysql", "SELECT 'a'; SELECT `b`; SELECT \"c\"; /* d */ SELECT 1 -- e"),
        ("mysql", "SELECT 'it''s', 'a\\'b' # end"),
        ("postgresql", "SELECT E'a\\'b', 'it''s', $x$ ' $x$, \"q\"\"q\" /* /* */ */"),
        ("sqlite", "SELECT [a], 'b''c' -- x"),
        ("mysql", "DELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; END$$\nDELIMITER ;\n"),
        ("mysql", "DELIMITER //\nSELECT 1//\n"),
        ("mysql", "CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW BEGIN DELETE FROM b; END"),
    ],
)
def test_closed_input_is_not_malformed(dialect: str, text: str) -> None:
    assert malformed(check(text, dialect)) == []


def test_cli_fails_on_the_issue_example(tmp_path: Path) -> None:
    path = tmp_path / "m.sql"
    path.write_text("DELETE FROM customers WHERE name = 'abc;\nSELECT 1;\nSELECT 2;\n")
    result = CliRunner().invoke(main, ["check", str(path), "--protect", "other"])
    assert result.exit_code == 1, result.output
    assert "m.sql:1:36" in result.output and "never closed" in result.output


# --- truncation: a cut inside a literal or comment never passes --------------------------------

# Pieces of SQL with the span (relative to the piece) in which a cut leaves something open.
_Piece = tuple[str, int, int]
_COMMON: list[_Piece] = [
    ("DROP TABLE orders;\n", 0, 0),
    ("SELECT 1 ", 0, 0),
    ("; ", 0, 0),
    ("\n", 0, 0),
    ("-- note ' \" `\n", 0, 0),
    ("/* a ' ; \n b */", 2, 15),
]
_PIECES: dict[str, list[_Piece]] = {
    "mysql": [
        *_COMMON,
        ("'a;\\'b\n'", 1, 8),
        ('"x \\" ;"', 1, 8),
        ("`na;me`", 1, 7),
        ("# note '\n", 0, 0),
    ],
    "postgresql": [
        *_COMMON,
        ("'a;b\n'", 1, 6),
        (" E'a\\'b'", 3, 8),
        ('"na;me"', 1, 7),
        (" $t$ ' ; $t$", 4, 12),
        ("/* a /* b */ c */", 2, 17),
    ],
    "sqlite": [*_COMMON, ("'a;b\n'", 1, 6), ('"na;me"', 1, 7), ("[na;me]", 1, 7)],
}


@st.composite
def _cut_file(draw: st.DrawFn) -> tuple[str, str, bool]:
    dialect = draw(st.sampled_from(sorted(_PIECES)))
    pieces = draw(st.lists(st.sampled_from(_PIECES[dialect]), min_size=1, max_size=12))
    text, open_at = "", set()
    for piece, first, last in pieces:
        open_at.update(range(len(text) + first, len(text) + last))
        text += piece
    cut = draw(st.integers(0, len(text)))
    return dialect, text[:cut], cut in open_at


@settings(max_examples=200, deadline=None)
@given(case=_cut_file())
def test_truncated_inside_a_literal_or_comment_never_passes(case: tuple[str, str, bool]) -> None:
    dialect, text, cut_inside = case
    report = check(text, dialect, ProtectedTables(patterns=("unrelated",)))
    if cut_inside:
        assert malformed(report), text
        assert report.has_errors
    else:
        assert not malformed(report), text


# Quotes and comments of the Sakila schema, found by a scanner written for this test.
_MYSQL_OPENERS = re.compile(r"'|\"|`|/\*|--(?=\s)|#")
_MYSQL_CLOSERS = {
    "'": re.compile(r"(?:[^'\\]|\\.|'')*'", re.S),
    '"': re.compile(r'(?:[^"\\]|\\.|"")*"', re.S),
    "`": re.compile(r"(?:[^`]|``)*`"),
    "/*": re.compile(r".*?\*/", re.S),
}


def _open_positions(text: str) -> set[int]:
    """Cut positions that leave a string, quoted name or block comment open."""
    positions: set[int] = set()
    pos = 0
    while (opener := _MYSQL_OPENERS.search(text, pos)) is not None:
        start = opener.end()
        if opener.group() in ("--", "#"):
            pos = text.find("\n", start) + 1 or len(text)
            continue
        closer = _MYSQL_CLOSERS[opener.group()].match(text, start)
        assert closer is not None
        inside = range(start, closer.end())
        # A cut right after the first quote of a doubled pair leaves a closed literal.
        positions.update(p for p in inside if text[p - 1 : p + 1] != opener.group() * 2)
        pos = closer.end()
    return positions


@pytest.fixture(scope="module")
def sakila_schema(sakila_dir: Path) -> tuple[str, set[int]]:
    text = (sakila_dir / "sakila-schema.sql").read_text(encoding="utf-8")
    return text, _open_positions(text)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_sakila_truncated_inside_a_literal_or_comment_never_passes(
    sakila_schema: tuple[str, set[int]], data: st.DataObject
) -> None:
    text, open_positions = sakila_schema
    cut = data.draw(st.sampled_from(sorted(open_positions)))
    report = check(text[:cut], "mysql", ProtectedTables(patterns=("unrelated",)))
    assert report.has_errors
    assert malformed(report)


def test_sakila_whole_is_not_malformed(sakila_schema: tuple[str, set[int]]) -> None:
    assert malformed(check(sakila_schema[0], "mysql")) == []


PROGRAM = (
    "DELIMITER //\n"
    "CREATE PROCEDURE migrate_posts ()\n"
    "BEGIN\n"
    "  IF 1 = 1 THEN\n"
    "    ALTER TABLE customers DROP COLUMN note;\n"
    "  END IF;\n"
    "END //\n"
    "DELIMITER ;\n"
    "CALL migrate_posts ();\n"
)
DYNAMIC_SQL = (
    "SELECT 1;\n"
    "SET @s = IF(1 > 0,\n"
    "  'DROP TABLE customers;',\n"
    "  'SELECT 1');\n"
    "PREPARE st FROM @s;\n"
)


@pytest.mark.parametrize(
    ("text", "rule", "ending"),
    [
        (PROGRAM, "drop-column", "\r\n"),  # DELIMITER needs an LF, as in the mysql client
        (DYNAMIC_SQL, "drop-table", "\r\n"),
        (DYNAMIC_SQL, "drop-table", "\r"),
    ],
    ids=["program-crlf", "dynamic-crlf", "dynamic-cr"],
)
def test_findings_inside_bodies_and_dynamic_sql_keep_their_lines_with_any_ending(
    text: str, rule: str, ending: str
) -> None:
    """Stored-program bodies and resolved literals place findings with the splitter's own
    line counting (CR, LF, CRLF one each), not by counting LFs."""
    expected = located(check(text, "mysql"))
    assert rule in {finding[0] for finding in expected}
    assert located(check(text.replace("\n", ending), "mysql")) == expected

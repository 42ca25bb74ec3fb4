"""The SQL splitter: statements, delimiters, bodies, quoting, comments, positions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from migration_guard.analysis.model import Statement
from migration_guard.analysis.splitter import split_sql, strip_version_comments
from migration_guard.config import DIALECTS
from migration_guard.errors import UnknownNameError


def sqls(text: str, dialect: str = "mysql") -> list[str]:
    """The statements' text, without the markers of malformed input."""
    return [s.sql for s in split_sql(text, dialect=dialect) if not s.known_operations]


def markers(text: str, dialect: str = "mysql") -> list[tuple[int, int, str]]:
    """(line, column, reason) of each malformed-input marker the splitter adds."""
    return [
        (s.line, s.column, s.known_operations[0].reason or "")
        for s in split_sql(text, dialect=dialect)
        if s.known_operations
    ]


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def offset_of(text: str, line: int, column: int) -> int:
    """Character offset of a 1-based line/column in ``text`` (CR, LF, CRLF end a line)."""
    if line == 1:
        return column - 1
    breaks = list(_LINE_BREAK.finditer(text))
    return breaks[line - 2].end() + column - 1


def line_breaks(text: str, end: int | None = None) -> int:
    return len(_LINE_BREAK.findall(text, 0, len(text) if end is None else end))


# --- terminators ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_semicolons_split_and_the_last_statement_needs_none(dialect: str) -> None:
    assert sqls("SELECT 1; SELECT 2;\nSELECT 3", dialect) == ["SELECT 1", "SELECT 2", "SELECT 3"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_empty_and_comment_only_statements_are_dropped(dialect: str) -> None:
    text = ";;\n  ;\n-- only a comment\n;\n/* block */;\nSELECT 1;;"
    assert sqls(text, dialect) == ["SELECT 1"]
    assert split_sql("", dialect=dialect) == []
    assert split_sql("  \n\t-- nothing\n", dialect=dialect) == []


def test_statement_fields_are_filled_from_the_arguments() -> None:
    [statement] = split_sql("  DROP TABLE t;", file="m.sql", unit="rev1")
    assert statement == Statement(
        sql="DROP TABLE t", file="m.sql", line=1, column=3, unit="rev1", end_line=1
    )


def test_unknown_dialect_names_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="postgresql"):
        split_sql("SELECT 1", dialect="oracle")


def test_dialect_aliases_are_accepted() -> None:
    assert sqls("SELECT $$;$$; SELECT 2", "postgres") == ["SELECT $$;$$", "SELECT 2"]
    assert sqls("SELECT 1; SELECT 2", "sqlite3") == ["SELECT 1", "SELECT 2"]


# --- DELIMITER --------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", ["$$", "//", ";;"])
@pytest.mark.parametrize("dialect", ["mysql", "mariadb"])
def test_delimiter_blocks(delimiter: str, dialect: str) -> None:
    text = (
        f"SELECT 0;\nDELIMITER {delimiter}\n"
        "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND"
        f"{delimiter}\nSELECT 3{delimiter}\n"
        "DELIMITER ;\nSELECT 4; SELECT 5;"
    )
    statements = split_sql(text, dialect=dialect)
    assert [s.sql for s in statements] == [
        "SELECT 0",
        "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND",
        "SELECT 3",
        "SELECT 4",
        "SELECT 5",
    ]
    assert [(s.line, s.end_line) for s in statements] == [
        (1, 1),
        (3, 7),
        (8, 8),
        (10, 10),
        (10, 10),
    ]


def test_delimiter_with_crlf_line_endings() -> None:
    text = "DELIMITER $$\r\nSELECT 1; SELECT 2$$\r\nDELIMITER ;\r\nSELECT 3;\r\n"
    statements = split_sql(text)
    assert [(s.sql, s.line) for s in statements] == [("SELECT 1; SELECT 2", 2), ("SELECT 3", 4)]


def test_delimiter_is_case_insensitive_and_its_line_is_not_a_statement() -> None:
    text = "delimiter //\nSELECT 1; SELECT 2 //\nDeLiMiTeR ;\nSELECT 3;"
    assert sqls(text) == ["SELECT 1; SELECT 2", "SELECT 3"]


def test_delimiter_only_counts_at_the_start_of_a_line() -> None:
    assert sqls("SELECT 1; DELIMITER //\nSELECT 2;") == ["SELECT 1", "DELIMITER //\nSELECT 2"]
    assert sqls("  \tDELIMITER //\nSELECT 1; SELECT 2//") == ["SELECT 1; SELECT 2"]


def test_delimiter_line_inside_a_statement_ends_it() -> None:
    assert sqls("SELECT 1\nDELIMITER //\nSELECT 2//\nDELIMITER ;\nSELECT 3") == [
        "SELECT 1",
        "SELECT 2",
        "SELECT 3",
    ]


def test_delimiter_inside_a_string_is_text() -> None:
    assert sqls("SELECT '\nDELIMITER //\n'; SELECT 2") == ["SELECT '\nDELIMITER //\n'", "SELECT 2"]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_delimiter_is_a_mysql_client_command_only(dialect: str) -> None:
    assert sqls("DELIMITER //\nSELECT 1;\nSELECT 2//", dialect) == [
        "DELIMITER //\nSELECT 1",
        "SELECT 2//",
    ]


def test_custom_delimiter_is_matched_exactly() -> None:
    assert sqls("DELIMITER GO\nSELECT 1 GO\nSELECT 'GO' go GO") == ["SELECT 1", "SELECT 'GO' go"]


# --- stored-program bodies without DELIMITER -----------------------------------------------


def test_sqlite_trigger_body_is_one_statement() -> None:
    text = (
        "CREATE TRIGGER IF NOT EXISTS audit AFTER INSERT ON a\nBEGIN\n"
        "  INSERT INTO log VALUES (new.id);\n"
        "  UPDATE c SET x = CASE WHEN new.id > 1 THEN 2 ELSE 3 END;\n"
        "END;\nSELECT 1;"
    )
    statements = split_sql(text, dialect="sqlite")
    assert [s.sql for s in statements] == [text[: text.rindex("END;") + 3], "SELECT 1"]
    assert [(s.line, s.end_line) for s in statements] == [(1, 5), (6, 6)]


def test_mysql_procedure_body_with_every_block_kind() -> None:
    body = (
        "CREATE DEFINER=`root`@`localhost` PROCEDURE p()\nproc: BEGIN\n"
        "  DECLARE x INT DEFAULT 0;\n"
        "  lbl: LOOP SET x = x + 1; IF x > 3 THEN LEAVE lbl; END IF; END LOOP lbl;\n"
        "  WHILE x < 10 DO SET x = IF(x > 5, x + 2, x + 1); END WHILE;\n"
        "  r: REPEAT SET x = x - 1; UNTIL x < 0 END REPEAT r;\n"
        "  SET @s = REPEAT('a', 3);\n"
        "  CASE x WHEN 1 THEN SELECT 1; ELSE BEGIN SELECT 2; END; END CASE;\n"
        "  SELECT CASE WHEN x THEN 'a' END INTO @y;\n"
        "  IF EXISTS (SELECT 1) THEN SELECT 3; ELSEIF x THEN SELECT 4; END IF;\n"
        "  DROP TABLE IF EXISTS foo;\n"
        "  INSERT INTO t (start, end) VALUES (1, 2);\n"
        "END proc"
    )
    assert sqls(f"{body};\nSELECT 2;") == [body, "SELECT 2"]


@pytest.mark.parametrize(
    "header",
    [
        "CREATE FUNCTION f() RETURNS INT DETERMINISTIC",
        "CREATE OR REPLACE DEFINER = 'app'@'%' SQL SECURITY INVOKER PROCEDURE p()",
        "CREATE DEFINER=CURRENT_USER() TRIGGER t BEFORE INSERT ON a FOR EACH ROW",
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO",
        "CREATE AGGREGATE FUNCTION g(x INT) RETURNS INT",
        "/* why */ CREATE -- note\n TRIGGER t AFTER DELETE ON a FOR EACH ROW",
    ],
)
def test_compound_headers_are_recognised(header: str) -> None:
    statement = f"{header}\nBEGIN\n  DELETE FROM b WHERE id = 1;\n  RETURN 1;\nEND"
    expected = statement.split("*/ ", 1)[-1]
    assert sqls(f"{statement};\nDROP TABLE c;") == [expected, "DROP TABLE c"]


def test_trigger_with_single_if_statement_body() -> None:
    text = (
        "CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW "
        "IF NEW.x < 0 THEN SET NEW.x = 0; END IF; SELECT 9"
    )
    assert sqls(text) == [text[: text.index("; SELECT")], "SELECT 9"]


def test_postgresql_begin_atomic_body() -> None:
    text = (
        "CREATE PROCEDURE ins() LANGUAGE SQL BEGIN ATOMIC\n"
        "  INSERT INTO t VALUES (1);\n  INSERT INTO t VALUES (2);\nEND;\nSELECT 1"
    )
    assert sqls(text, "postgresql") == [text[: text.index(";\nSELECT")], "SELECT 1"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_transaction_begin_is_not_a_block(dialect: str) -> None:
    text = (
        "BEGIN; INSERT INTO t VALUES (1); COMMIT;\n"
        "BEGIN TRANSACTION; DELETE FROM t; END;\n"
        "BEGIN WORK; UPDATE t SET a = 1; ROLLBACK"
    )
    assert sqls(text, dialect) == [
        "BEGIN",
        "INSERT INTO t VALUES (1)",
        "COMMIT",
        "BEGIN TRANSACTION",
        "DELETE FROM t",
        "END",
        "BEGIN WORK",
        "UPDATE t SET a = 1",
        "ROLLBACK",
    ]


def test_block_words_outside_stored_programs_do_not_nest() -> None:
    text = (
        "CREATE TABLE IF NOT EXISTS t (a INT);\n"
        "SELECT CASE WHEN a THEN 1 END FROM t;\n"
        "SELECT IF(a, 1, 2), REPEAT('x', 2) FROM t;\n"
        "CREATE TABLE trigger_log (`begin` INT, `end` INT)"
    )
    assert len(sqls(text)) == 4


def test_postgresql_function_with_dollar_quoted_body() -> None:
    text = (
        "CREATE OR REPLACE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  RETURN NEW;\nEND;\n$$ "
        "LANGUAGE plpgsql;\nCREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION f();"
    )
    statements = split_sql(text, dialect="postgresql")
    assert len(statements) == 2
    assert statements[0].sql.endswith("$$ LANGUAGE plpgsql")
    assert statements[1].line == 6


# --- strings and quoted identifiers --------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_single_quotes_with_doubled_quotes(dialect: str) -> None:
    assert sqls("SELECT 'a;b', 'it''s;'; SELECT 2", dialect) == [
        "SELECT 'a;b', 'it''s;'",
        "SELECT 2",
    ]


@pytest.mark.parametrize("dialect", ["mysql", "mariadb"])
def test_mysql_backslash_escapes(dialect: str) -> None:
    assert sqls(
        r"SELECT 'a\';b', "
        r'"c\";d"; SELECT 2',
        dialect,
    ) == [r"SELECT 'a\';b', " r'"c\";d"', "SELECT 2"]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_standard_strings_have_no_backslash_escapes(dialect: str) -> None:
    assert sqls(r"SELECT 'a\'; SELECT 2", dialect) == [r"SELECT 'a\'", "SELECT 2"]


def test_postgresql_escape_strings() -> None:
    text = r"SELECT E'a\';b', e'\\'; SELECT 2; SELECT some'x;'"
    assert sqls(text, "postgresql") == [r"SELECT E'a\';b', e'\\'", "SELECT 2", "SELECT some'x;'"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_double_quotes(dialect: str) -> None:
    assert sqls('SELECT "a;""b"; SELECT 2', dialect) == ['SELECT "a;""b"', "SELECT 2"]


@pytest.mark.parametrize("dialect", ["mysql", "mariadb", "sqlite"])
def test_backticks_with_doubled_backticks(dialect: str) -> None:
    assert sqls("SELECT `a;``b`; SELECT 2", dialect) == ["SELECT `a;``b`", "SELECT 2"]


def test_sqlite_bracket_identifiers() -> None:
    assert sqls("SELECT [a;b]; SELECT 2", "sqlite") == ["SELECT [a;b]", "SELECT 2"]


def test_postgresql_dollar_quotes() -> None:
    text = "SELECT $$a;b$$; SELECT $fn$ ; $$ ; $fn$; SELECT $1; SELECT $2, a$$b; SELECT $_x$;$_x$"
    assert sqls(text, "postgresql") == [
        "SELECT $$a;b$$",
        "SELECT $fn$ ; $$ ; $fn$",
        "SELECT $1",
        "SELECT $2, a$$b",
        "SELECT $_x$;$_x$",
    ]


def test_dollars_are_not_quotes_in_mysql() -> None:
    assert sqls("SELECT $$a; SELECT b$$") == ["SELECT $$a", "SELECT b$$"]


# --- comments ------------------------------------------------------------------------------


def test_mysql_double_dash_needs_a_blank() -> None:
    assert sqls("SELECT 1--1;\nSELECT 2 -- c;\n;\nSELECT 3 --\tx;\n;SELECT 4 --") == [
        "SELECT 1--1",
        "SELECT 2",
        "SELECT 3",
        "SELECT 4",
    ]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_double_dash_is_always_a_comment_elsewhere(dialect: str) -> None:
    assert sqls("SELECT 1--1;\nSELECT 2;", dialect) == ["SELECT 1--1;\nSELECT 2"]


def test_hash_comments_are_mysql_only() -> None:
    assert sqls("SELECT 1; # a;\nSELECT 2 # b;\n;") == ["SELECT 1", "SELECT 2"]
    assert sqls("SELECT 5 # 3; SELECT 2", "postgresql") == ["SELECT 5 # 3", "SELECT 2"]


def test_block_comments_inside_statements_are_kept() -> None:
    assert sqls("SELECT /* ; */ 1; SELECT 2") == ["SELECT /* ; */ 1", "SELECT 2"]


def test_trailing_comments_are_not_part_of_the_statement() -> None:
    assert sqls("SELECT 1 /* a */ -- b\n", "sqlite") == ["SELECT 1"]
    assert sqls("SELECT 1 -- why\n;") == ["SELECT 1"]


def test_postgresql_block_comments_nest() -> None:
    text = "/* a /* b ; */ c ; */ SELECT 1; SELECT 2"
    assert sqls(text, "postgresql") == ["SELECT 1", "SELECT 2"]
    # MySQL and SQLite comments do not nest: the first */ ends it.
    assert sqls(text, "mysql") == ["c", "*/ SELECT 1", "SELECT 2"]
    assert sqls("SELECT /* x /* y */ z */ 1; SELECT 2", "postgresql") == [
        "SELECT /* x /* y */ z */ 1",
        "SELECT 2",
    ]


def test_mysql_version_comments_are_statement_text() -> None:
    text = (
        "/*!40101 SET NAMES utf8 */;\n"
        "/*!*/;\n"
        "/*M!100100 SET x=1 */;\n"
        "CREATE TABLE t (a INT) /*!50100 PARTITION BY HASH(a) */;\n"
        "/*!50003 CREATE*/ /*!50003 TRIGGER t AFTER INSERT ON a FOR EACH ROW SET @x = 1; */;"
    )
    statements = split_sql(text)
    assert [s.sql for s in statements] == [
        "/*!40101 SET NAMES utf8 */",
        "/*M!100100 SET x=1 */",
        "CREATE TABLE t (a INT) /*!50100 PARTITION BY HASH(a) */",
        "/*!50003 CREATE*/ /*!50003 TRIGGER t AFTER INSERT ON a FOR EACH ROW SET @x = 1; */",
    ]
    assert [s.line for s in statements] == [1, 3, 4, 5]


def test_version_comments_are_plain_comments_outside_mysql() -> None:
    assert sqls("/*!40101 SET NAMES utf8 */;SELECT 1", "postgresql") == ["SELECT 1"]


def test_strip_version_comments() -> None:
    assert strip_version_comments("/*!40101 SET NAMES utf8 */") == " SET NAMES utf8 "
    assert strip_version_comments("/*M!100100 X */") == " X "
    assert strip_version_comments("a /*!*/ b") == "a    b"
    assert strip_version_comments("/*!50003 CREATE*/ /*!50017 DEFINER=`a`@`b`*/") == (
        " CREATE   DEFINER=`a`@`b` "
    )
    kept = "SELECT '/*!40101 x */', `/*!1*/` /* plain */ -- /*!2 */"
    assert strip_version_comments(kept) == kept
    assert strip_version_comments("SELECT 1 /*!40101 unterminated") == "SELECT 1  unterminated "


# --- positions -----------------------------------------------------------------------------


def test_position_is_the_first_token_not_the_leading_comment() -> None:
    text = "-- header\n\n/* note */  \tSELECT\n  1;\n\n  # x\n  UPDATE t SET a = 1"
    statements = split_sql(text)
    assert [(s.line, s.column, s.end_line) for s in statements] == [(3, 14, 4), (7, 3, 7)]


def test_crlf_line_endings_and_tabs() -> None:
    text = "SELECT 1;\r\n\tSELECT\r\n 2;\r\n\r\n  SELECT 3\r\n"
    statements = split_sql(text)
    assert [s.sql for s in statements] == ["SELECT 1", "SELECT\r\n 2", "SELECT 3"]
    assert [(s.line, s.column, s.end_line) for s in statements] == [(1, 1, 1), (2, 2, 3), (5, 3, 5)]


def test_first_line_offsets_line_numbers() -> None:
    statements = split_sql("\n  SELECT 1;\nSELECT\n2", first_line=40)
    assert [(s.line, s.column, s.end_line) for s in statements] == [(41, 3, 41), (42, 1, 43)]


def test_many_statements_on_one_line() -> None:
    statements = split_sql("a; bb;  ccc")
    assert [(s.sql, s.line, s.column) for s in statements] == [
        ("a", 1, 1),
        ("bb", 1, 4),
        ("ccc", 1, 9),
    ]


# --- robustness ----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "text",
    [
        "SELECT 'unterminated; SELECT 2",
        'SELECT "unterminated; SELECT 2',
        "SELECT `unterminated; SELECT 2",
        "SELECT /* unterminated; SELECT 2",
        "SELECT $$ unterminated; SELECT 2",
        "SELECT E'\\",
        "SELECT '\\",
        "\x00\x01\x02;\xff\ufffd;\x00",
        "CREATE TRIGGER t BEGIN BEGIN CASE IF END END IF;",
        "DELIMITER",
        "DELIMITER \n",
        "DELIMITER 'x'\nSELECT 1 x",
        "/*!",
        "--",
        "$",
        "$a",
        "\\",
    ],
)
def test_broken_input_never_raises(text: str, dialect: str) -> None:
    for statement in split_sql(text, dialect=dialect):
        assert statement.sql in text


def test_unterminated_string_ends_the_last_statement() -> None:
    assert sqls("SELECT 1; SELECT 'x;\nSELECT 3;") == ["SELECT 1", "SELECT 'x;\nSELECT 3;"]
    [(line, column, reason)] = markers("SELECT 1; SELECT 'x;\nSELECT 3;")
    assert (line, column) == (1, 18)
    assert reason.startswith("malformed input at line 1, column 18: a string literal")


_FRAGMENTS = st.sampled_from(
    [
        ";", "'", '"', "`", "--", "-- ", "#", "/*", "*/", "/*!40101", "/*M!1", "$$", "$a$",
        "$1", "\n", "\r\n", "\t", " ", "\\", "E'", "[", "]", "DELIMITER $$\n", "DELIMITER ;\n",
        "\nDELIMITER //\n", "//", ";;", "BEGIN", "END", "END IF", "CASE", "IF", "LOOP",
        "REPEAT", "WHILE", "THEN", "CREATE TRIGGER t ", "CREATE PROCEDURE p() ", "x", "SELECT 1",
        "\x00", "é",
    ]
)  # fmt: skip
_SQLISH_TEXT = st.one_of(st.lists(_FRAGMENTS, max_size=40).map("".join), st.text(max_size=200))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_SQLISH_TEXT, dialect=st.sampled_from(DIALECTS), first_line=st.integers(1, 1000))
def test_any_text_splits_into_statements_found_where_they_say(
    text: str, dialect: str, first_line: int
) -> None:
    everything = split_sql(text, dialect=dialect, first_line=first_line)
    statements = [statement for statement in everything if not statement.known_operations]
    last_line = first_line + line_breaks(text)
    # Markers of malformed input come last and point at where the construct opened.
    for marker in everything[len(statements) :]:
        assert marker.known_operations
        offset = offset_of(text, marker.line - first_line + 1, marker.column)
        assert text.startswith(marker.sql, offset)
        assert first_line <= marker.line <= last_line
    previous_offset = -1
    previous_line = first_line
    for statement in statements:
        assert statement.sql
        assert statement.sql == statement.sql.strip()
        assert first_line <= statement.line <= (statement.end_line or 0) <= last_line
        assert statement.line >= previous_line
        # (line, column) points at the exact place the statement's text starts.
        offset = offset_of(text, statement.line - first_line + 1, statement.column)
        assert offset > previous_offset
        assert text.startswith(statement.sql, offset)
        end_offset = offset + len(statement.sql) - 1
        assert line_breaks(text, end_offset) + first_line == statement.end_line
        previous_offset, previous_line = end_offset, statement.end_line or 0


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from(
            ["SELECT 1", "SELECT ';'", "UPDATE t SET a = `b;`", "DELETE FROM t /* ; */ WHERE a = 1"]
        ),
        min_size=1,
        max_size=20,
    ),
    separator=st.sampled_from([";", ";\n", " ; -- c\n", ";\r\n\r\n"]),
)
def test_joined_statements_come_back(parts: list[str], separator: str) -> None:
    assert sqls(separator.join(parts)) == parts


def test_five_megabyte_input_completes() -> None:
    rows = ", ".join(f"({n}, 'name;{n}', \"x\")" for n in range(40))
    chunk = (
        f"INSERT INTO t (a, b, c) VALUES {rows}; -- note\n"
        "/* block ; */ UPDATE t SET b = 'z' WHERE a = 1;\n"
        "CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW BEGIN SELECT 1; END;\n"
    )
    copies = 5_000_000 // len(chunk) + 1
    text = chunk * copies
    statements = split_sql(text)
    assert len(statements) == 3 * copies
    assert statements[-1].line == text.count("\n")
    assert (
        statements[-1].sql
        == "CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW BEGIN SELECT 1; END"
    )


def test_pathological_megabytes_complete() -> None:
    for text in ("'" + "\\\\" * 250_000, "/*" * 250_000, "x" * 1_000_000, "\x00" * 1_000_000):
        for dialect in DIALECTS:
            assert len(sqls(text, dialect)) <= 1
            assert len(markers(text, dialect)) <= 1


# --- the Sakila schema ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sakila_statements(sakila_dir: Path) -> list[Statement]:
    path = sakila_dir / "sakila-schema.sql"
    return split_sql(path.read_text(encoding="utf-8"), file=str(path), unit=str(path))


def test_sakila_statement_count(sakila_statements: list[Statement]) -> None:
    # 10 SETs, DROP/CREATE SCHEMA, USE, 16 tables, 7 views, 3 triggers, 3 procedures,
    # 3 functions and one SET in a version comment (counted by hand with grep -n).
    assert len(sakila_statements) == 46
    assert all(not s.sql.upper().startswith("DELIMITER") for s in sakila_statements)


def test_sakila_stored_programs_come_out_whole(sakila_statements: list[Statement]) -> None:
    programs = [s for s in sakila_statements if re.search(r"\bBEGIN\b", s.sql)]
    names = [
        re.search(r"(?:TRIGGER|PROCEDURE|FUNCTION) `?(\w+)", s.sql).group(1)  # type: ignore[union-attr]
        for s in programs
    ]
    assert names == [
        "ins_film",
        "upd_film",
        "del_film",
        "rewards_report",
        "get_customer_balance",
        "film_in_stock",
        "film_not_in_stock",
        "inventory_held_by_customer",
        "inventory_in_stock",
    ]
    for statement in programs:
        begins = len(re.findall(r"\bBEGIN\b", statement.sql))
        ends = len(re.findall(r"\bEND\b(?!\s+IF)", statement.sql))
        assert begins == ends == 1, statement.sql
        assert statement.sql.endswith("END")
        assert not statement.sql.rstrip().endswith(("$$", "//", ";"))


def test_sakila_positions_match_the_file(sakila_statements: list[Statement]) -> None:
    by_start = {s.sql.split("\n", 1)[0][:40]: s for s in sakila_statements}
    expected = {
        "SET NAMES utf8mb4": (31, 31),
        "CREATE TABLE actor (": (44, 51),
        "/*!50610 SET @@default_storage_engine = ": (197, 197),
        "CREATE TRIGGER `ins_film` AFTER INSERT O": (214, 217),
        "CREATE TRIGGER `upd_film` AFTER UPDATE O": (220, 229),
        "CREATE DEFINER=CURRENT_USER SQL SECURITY": (445, 471),
        "CREATE PROCEDURE rewards_report (": (479, 540),
        "CREATE FUNCTION get_customer_balance(p_c": (546, 585),
        "CREATE FUNCTION inventory_in_stock(p_inv": (651, 678),
        "SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS": (684, 684),
    }
    for start, (line, end_line) in expected.items():
        statement = by_start[start]
        assert (statement.line, statement.column, statement.end_line) == (line, 1, end_line)
    assert sakila_statements[0].file.endswith("sakila-schema.sql")
    assert sakila_statements[0].unit == sakila_statements[0].file


def test_sakila_without_delimiter_commands_splits_the_same(
    sakila_statements: list[Statement],
) -> None:
    # The same bodies sent through a driver have no DELIMITER lines: BEGIN...END
    # tracking must keep each one whole.
    path = Path(sakila_statements[0].file)
    text = re.sub(r"(?m)^DELIMITER .*\n", "", path.read_text(encoding="utf-8"))
    text = re.sub(r"END\s*(?:;;|//|\$\$)", "END;", text)
    again = split_sql(text)
    assert [s.sql for s in again] == [s.sql for s in sakila_statements]


def test_a_plain_postgresql_file_compiles_only_the_patterns_it_needs() -> None:
    # Regular expressions cost more to compile than a short check's other work: the
    # other families' patterns and those of stored programs and malformed input wait.
    script = (
        "from migration_guard.analysis import lexical, malformed, splitter\n"
        "text = 'CREATE TABLE t (id int);\\nINSERT INTO t VALUES (1);\\nDROP TABLE t;\\n'\n"
        "assert len(splitter.split_sql(text, dialect='postgresql')) == 3\n"
        "print(splitter._skip_trivia_pattern.cache_info().currsize,"
        " lexical._header_patterns.cache_info().currsize,"
        " malformed._closed_quotes.cache_info().currsize,"
        " malformed._trivia_piece.cache_info().currsize)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.split() == ["1", "0", "0", "1"]  # one family each


_ONE_LINE_PIECES = st.sampled_from(
    [
        "UPDATE t SET a = ",
        "x",
        " ",
        "\t",
        "'",
        "''",
        "'a;b'",
        "E'",
        "\\",
        ";",
        "-",
        "--",
        "/*",
        "*/",
        "$",
        "$$",
        '"',
        "`",
        "#",
        "[",
        "]",
        "\n",
        "\r",
        "é",
    ]
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(st.lists(_ONE_LINE_PIECES, max_size=20).map("".join), _SQLISH_TEXT),
    dialect=st.sampled_from(DIALECTS),
)
@example(text="x 'a\\';", dialect="mysql")
@example(text="x E'a\\';", dialect="postgresql")
@example(text="UPDATE t SET a = 'a''b;c' WHERE b = '--';", dialect="sqlite")
@example(text="x 'a\nb';", dialect="postgresql")
def test_the_fast_path_reads_a_statement_as_the_full_scan_does(text: str, dialect: str) -> None:
    # split_sql reads a one-line statement without comments, and with single-quoted
    # strings without a backslash only, in one match; the full scan must read such a
    # text exactly alike: same start after the blanks, same end at the same ``;``.
    from migration_guard.analysis import splitter
    from migration_guard.analysis.lexical import SIMPLE_STATEMENT, needs_full_scan

    match = SIMPLE_STATEMENT.match(text)
    if match is None:
        return
    family = splitter._family(dialect)
    scan = splitter._Splitter(text, family, "f.sql", "f.sql", 1)
    start = splitter._skip_trivia(text, 0, family)
    assert start == match.start(1)
    # A DELIMITER command or a program's header goes to the full scan.
    if not needs_full_scan(text, start, mysql=family == "mysql"):
        assert scan._statement(start, ";") == (match.end(1), match.end())
        assert scan.left_open is None

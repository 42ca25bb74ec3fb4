"""Issue 16: statements inside stored programs are analysed one by one, at their own lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration_guard.analysis.analyzer import analyze, analyze_sql
from migration_guard.analysis.model import Report, Statement
from migration_guard.analysis.programs import read_program
from migration_guard.analysis.splitter import split_sql
from migration_guard.config import ProtectedTables

# The second pattern of the issue.
MIGRATE_ROOT_ID = """\
CREATE PROCEDURE MigrateRootId_Posts ()
BEGIN
  DECLARE Alter_Props INT;
  DECLARE Alter_FileIds INT;
  SELECT COUNT(*) INTO Alter_Props FROM INFORMATION_SCHEMA.COLUMNS WHERE table_name = 'Posts';
  IF (Alter_Props OR Alter_FileIds) THEN
    ALTER TABLE Posts MODIFY COLUMN FileIds text, MODIFY COLUMN Props JSON;
    ALTER TABLE Posts DROP COLUMN ParentId;
  END IF;
END;
CALL MigrateRootId_Posts ();
DROP PROCEDURE IF EXISTS MigrateRootId_Posts;
"""


def report(sql: str, dialect: str = "mysql") -> Report:
    return analyze_sql(sql, file="m.sql", dialect=dialect, protected=ProtectedTables())


def active(sql: str, dialect: str = "mysql") -> list[tuple[str, str | None, int]]:
    return [(f.rule, f.table, f.line) for f in report(sql, dialect).active]


def test_the_issue_pattern_reports_the_body_at_its_own_lines() -> None:
    found = report(MIGRATE_ROOT_ID).active
    assert [(f.rule, f.table, f.line, f.column) for f in found] == [
        ("alter-column-type", "Posts", 7, 5),
        ("alter-column-type", "Posts", 7, 5),
        ("drop-column", "Posts", 8, 5),
    ]
    assert all(
        "in procedure MigrateRootId_Posts, run by CALL at line 11" in f.message for f in found
    )


def test_the_same_with_delimiter_and_a_label() -> None:
    sql = (
        "DELIMITER //\n"
        "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\n"
        "  COMMENT 'cleanup'\n"
        "main: BEGIN\n"
        "  outer_if: IF 1 THEN\n"
        "    IF (SELECT COUNT(*) FROM t) > 0 THEN\n"
        "      TRUNCATE TABLE audit;\n"
        "    ELSEIF 2 THEN\n"
        "      LEAVE main;\n"
        "    ELSE\n"
        "      DELETE FROM audit;\n"
        "    END IF;\n"
        "  END IF outer_if;\n"
        "END //\n"
        "DELIMITER ;\n"
        "CALL p();\n"
    )
    assert active(sql) == [
        ("truncate-table", "audit", 7),
        ("delete-without-where", "audit", 11),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("WHILE x < 3 DO\n  DROP TABLE a;\n  SET x = x + 1;\nEND WHILE;", [("drop-table", "a", 4)]),
        ("l: LOOP\n  DROP TABLE a;\n  LEAVE l;\nEND LOOP l;", [("drop-table", "a", 4)]),
        ("REPEAT\n  DROP TABLE a;\nUNTIL x > 3 END REPEAT;", [("drop-table", "a", 4)]),
        (
            "CASE x\n  WHEN 1 THEN DROP TABLE a;\n  WHEN 2 THEN SELECT 1;\n"
            "  ELSE BEGIN TRUNCATE b; END;\nEND CASE;",
            [("drop-table", "a", 4), ("truncate-table", "b", 6)],
        ),
        (
            "DECLARE EXIT HANDLER FOR SQLEXCEPTION, NOT FOUND\n  BEGIN\n    DROP TABLE a;\n  END;\n"
            "SELECT 1;",
            [("drop-table", "a", 5)],
        ),
        (
            "IF CASE WHEN y THEN 1 ELSE 0 END = 1 THEN\n"
            "  UPDATE t SET c = CASE WHEN d THEN 1 END;\n"
            "END IF;",
            [("update-without-where", "t", 4)],
        ),
        ("BEGIN\n  BEGIN\n    DROP TABLE a;\n  END;\nEND;", [("drop-table", "a", 5)]),
    ],
)
def test_control_flow_is_followed_and_every_branch_counts(
    body: str, expected: list[tuple[str, str, int]]
) -> None:
    sql = "CREATE PROCEDURE p()\nBEGIN\n" + body + "\nEND;\nCALL p();\n"
    assert active(sql) == expected


def test_a_procedure_never_called_still_shows_its_statements() -> None:
    sql = "CREATE PROCEDURE p()\nBEGIN\n  DROP TABLE a;\nEND;\n"
    found = report(sql).active
    assert [(f.rule, f.table, f.line) for f in found] == [("drop-table", "a", 3)]
    assert "not called here" in found[0].message


def test_a_procedure_dropped_unused_ran_nothing() -> None:
    sql = "CREATE PROCEDURE p()\nBEGIN\n  DROP TABLE a;\nEND;\nDROP PROCEDURE p;\n"
    assert active(sql) == []


def test_a_procedure_called_twice_is_reported_once_and_a_redefinition_again() -> None:
    sql = (
        "CREATE PROCEDURE p() DROP TABLE a;\nCALL p();\nCALL p;\nDROP PROCEDURE p;\n"
        "CREATE PROCEDURE p() DROP TABLE b;\nCALL p();\n"
    )
    assert active(sql) == [("drop-table", "a", 1), ("drop-table", "b", 5)]


def test_a_call_runs_with_the_schema_of_its_place() -> None:
    # The table is created in the same file before the CALL: dropping it loses nothing.
    sql = (
        "CREATE PROCEDURE p()\nBEGIN\n  DROP TABLE scratch;\nEND;\n"
        "CREATE TABLE scratch (id INT);\nCALL p();\n"
    )
    assert active(sql) == []
    # Never called: it runs later, when the table may hold data.
    assert active(sql.replace("CALL p();\n", "")) == [("drop-table", "scratch", 3)]


def test_a_call_of_a_procedure_created_earlier_in_the_run() -> None:
    first = split_sql("CREATE PROCEDURE p()\nBEGIN\n  DROP TABLE a;\nEND;", file="1.sql", unit="1")
    second = split_sql("SELECT 1;\nCALL p();", file="2.sql", unit="2")
    result = analyze(first + second, dialect="mysql", protected=ProtectedTables())
    assert [(f.rule, f.file, f.line) for f in result.active] == [("drop-table", "1.sql", 3)]
    assert "run by CALL at 2.sql:2" in result.active[0].message


def test_a_call_of_an_unknown_procedure_stays_unanalyzable() -> None:
    assert active("CALL elsewhere();") == [("unanalyzable", None, 1)]


def test_dynamic_sql_inside_a_procedure() -> None:
    sql = (
        "CREATE PROCEDURE p()\nBEGIN\n"
        "  DECLARE q TEXT;\n"
        "  SET q = CONCAT('ALTER TABLE Posts ', 'DROP COLUMN Legacy');\n"
        "  SET @q = q;\n"
        "  PREPARE s FROM @q;\n  EXECUTE s;\n  DEALLOCATE PREPARE s;\n"
        "END;\nCALL p();\n"
    )
    found = report(sql).active
    assert [(f.rule, f.table, f.line) for f in found] == [("drop-column", "Posts", 4)]
    assert "inside PREPARE s, in procedure p, run by CALL at line 10" in found[0].message


def test_a_variable_set_in_one_branch_keeps_the_other_possibility() -> None:
    sql = (
        "CREATE PROCEDURE p()\nBEGIN\n"
        "  IF x THEN\n    SET @q = 'DROP TABLE a';\n  END IF;\n"
        "  PREPARE s FROM @q;\nEND;\nCALL p();\n"
    )
    # @q may still hold whatever it held before the file ran.
    assert active(sql) == [("drop-table", "a", 4), ("unanalyzable", None, 6)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW\nBEGIN\n  DELETE FROM b;\nEND;",
            [("delete-without-where", "b", 3)],
        ),
        (
            "CREATE TRIGGER t BEFORE UPDATE ON a FOR EACH ROW\n  DELETE FROM b;",
            [("delete-without-where", "b", 2)],
        ),
        (
            "CREATE FUNCTION f() RETURNS INT DETERMINISTIC\n"
            "BEGIN\n  DELETE FROM b;\n  RETURN 1;\nEND;",
            [("delete-without-where", "b", 3)],
        ),
        (
            "CREATE EVENT e ON SCHEDULE EVERY 1 DAY\nDO\n  TRUNCATE TABLE logs;",
            [("truncate-table", "logs", 3)],
        ),
        ("BEGIN NOT ATOMIC\n  DROP TABLE a;\nEND;", [("drop-table", "a", 2)]),
    ],
)
def test_triggers_functions_events_and_anonymous_blocks(
    sql: str, expected: list[tuple[str, str, int]]
) -> None:
    assert active(sql, "mariadb") == expected


def test_sqlite_trigger_bodies_are_analysed() -> None:
    sql = (
        "CREATE TRIGGER t AFTER DELETE ON a FOR EACH ROW WHEN (SELECT 1)\n"
        "BEGIN\n  DELETE FROM b;\nEND;"
    )
    assert active(sql, "sqlite") == [("delete-without-where", "b", 3)]


def test_postgresql_function_bodies_in_strings_are_left_alone() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS trigger SET search_path = public\n"
        "AS $$ BEGIN DELETE FROM b; RETURN NULL; END $$ LANGUAGE plpgsql;\n"
        "CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW EXECUTE FUNCTION f();"
    )
    assert active(sql, "postgresql") == []


@pytest.mark.parametrize("where", ["body", "call", "create"])
def test_suppressions_apply_in_the_body_or_above_what_runs_it(where: str) -> None:
    comment = "-- migration-guard: allow drop-column because: column archived in #42\n"
    lines = MIGRATE_ROOT_ID.splitlines(keepends=True)
    index = {"body": 7, "call": 10, "create": 0}[where]
    lines.insert(index, comment)
    result = report("".join(lines))
    drops = [f for f in result.findings if f.rule == "drop-column"]
    assert [f.suppressed for f in drops] == [True]
    assert not [f for f in result.findings if f.rule == "unused-suppression"]


def test_sakila_triggers_and_procedures(sakila_dir: Path) -> None:
    schema = sakila_dir / "sakila-schema.sql"
    text = schema.read_text(encoding="utf-8")
    programs = [
        program
        for statement in split_sql(text, file=str(schema))
        if (program := read_program(statement, "mysql")) is not None
    ]
    assert sorted((p.kind, p.name) for p in programs) == sorted(
        [
            ("TRIGGER", "ins_film"),
            ("TRIGGER", "upd_film"),
            ("TRIGGER", "del_film"),
            ("PROCEDURE", "rewards_report"),
            ("FUNCTION", "get_customer_balance"),
            ("PROCEDURE", "film_in_stock"),
            ("PROCEDURE", "film_not_in_stock"),
            ("FUNCTION", "inventory_held_by_customer"),
            ("FUNCTION", "inventory_in_stock"),
        ]
    )
    lines = text.splitlines()
    for program in programs:
        assert program.body, program.name
        for body in program.body:
            # every statement sits at the line and column where it is written
            statement = body.statement
            written = lines[statement.line - 1][statement.column - 1 :]
            assert written.startswith(statement.sql.split()[0]), (program.name, statement)
    by_name = {p.name: p for p in programs}
    assert [b.statement.line for b in by_name["upd_film"].body] == [223]
    assert by_name["upd_film"].body[0].conditional
    assert [b.statement.sql.split()[0] for b in by_name["rewards_report"].body][-1] == "DROP"
    # rewards_report drops the temporary table it created itself: nothing is lost.
    result = analyze_sql(text, file="sakila.sql", dialect="mysql", protected=ProtectedTables())
    assert [(f.rule, f.line) for f in result.active] == [("drop-database", 36)]


def test_sakila_trigger_that_destroys_is_reported(sakila_dir: Path) -> None:
    text = (sakila_dir / "sakila-schema.sql").read_text(encoding="utf-8")
    text = text.replace(
        "DELETE FROM film_text WHERE film_id = old.film_id;", "DELETE FROM film_text;"
    )
    result = analyze_sql(text, file="sakila.sql", dialect="mysql", protected=ProtectedTables())
    assert [(f.rule, f.table, f.line) for f in result.active] == [
        ("drop-database", "sakila", 36),
        ("delete-without-where", "film_text", 233),
    ]
    assert "in trigger del_film" in result.active[1].message


_FLOW = st.recursive(
    st.sampled_from(["DROP TABLE a;", "SELECT 1;", "SET x = 1;"]),
    lambda inner: st.one_of(
        st.builds(lambda s: f"IF c THEN {s} END IF;", inner),
        st.builds(lambda s, t: f"IF c THEN {s} ELSE {t} END IF;", inner, inner),
        st.builds(lambda s: f"WHILE c DO {s} END WHILE;", inner),
        st.builds(lambda s: f"l1: LOOP {s} END LOOP l1;", inner),
        st.builds(lambda s: f"REPEAT {s} UNTIL c END REPEAT;", inner),
        st.builds(lambda s: f"BEGIN {s} END;", inner),
        st.builds(lambda s, t: f"CASE WHEN c THEN {s} ELSE {t} END CASE;", inner, inner),
        st.builds(lambda s, t: s + "\n" + t, inner, inner),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(_FLOW)
def test_every_drop_in_any_nesting_is_found_at_its_line(body: str) -> None:
    sql = "CREATE PROCEDURE p()\nBEGIN\n" + body + "\nEND;\nCALL p();\n"
    lines = sql.splitlines()
    expected = [index + 1 for index, line in enumerate(lines) for _ in range(line.count("DROP"))]
    found = report(sql).active
    assert [f.rule for f in found] == ["drop-table"] * len(expected)
    assert [f.line for f in found] == expected


def test_read_program_ignores_other_statements() -> None:
    for sql in ("CREATE TABLE t (id INT)", "BEGIN", "BEGIN WORK", "CREATE INDEX i ON t (c)"):
        assert read_program(Statement(sql=sql, file="m.sql", line=1), "mysql") is None


def test_procedures_calling_each_other_are_reported_once() -> None:
    sql = (
        "CREATE PROCEDURE outer_p()\nBEGIN\n  CALL inner_p();\n  CALL outer_p();\nEND;\n"
        "CREATE PROCEDURE inner_p()\nBEGIN\n  DROP TABLE a;\n  CALL outer_p();\nEND;\n"
    )
    # never called: each body once, and the CALL between them adds nothing more
    assert active(sql) == [("drop-table", "a", 8)]
    assert active(sql + "CALL inner_p();\n") == [("drop-table", "a", 8)]


def test_a_deep_chain_of_calls_fails_closed() -> None:
    chain = "".join(f"CREATE PROCEDURE p{n}() CALL p{n + 1}();\n" for n in range(12))
    sql = chain + "CREATE PROCEDURE p12() DROP TABLE a;\nCALL p0();\n"
    found = active(sql)
    assert ("drop-table", "a", 13) in found
    assert any(rule == "unanalyzable" for rule, _, _ in found)


_PIECES = st.sampled_from(
    [
        "CREATE PROCEDURE p()",
        "CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW",
        "BEGIN",
        "BEGIN NOT ATOMIC",
        "END",
        "END IF",
        "IF",
        "THEN",
        "ELSE",
        "WHILE",
        "DO",
        "LOOP",
        "REPEAT",
        "UNTIL",
        "CASE",
        "WHEN",
        "l:",
        ";",
        "\n",
        "DROP TABLE a",
        "CALL p()",
        "SET @q =",
        "'DROP TABLE b'",
        "CONCAT(",
        ")",
        "IF(",
        ",",
        "PREPARE s FROM",
        "@q",
        "EXECUTE s",
        "EXECUTE IMMEDIATE",
        "SELECT",
        "INTO",
        "DECLARE",
        "HANDLER FOR",
        "DELIMITER //",
        "//",
        "'",
        "/*",
        "--",
        "DROP PROCEDURE p",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_PIECES, max_size=30), st.sampled_from(["mysql", "mariadb", "sqlite", "postgresql"])
)
def test_any_mix_of_programs_and_dynamic_sql_never_fails_inside(
    pieces: list[str], dialect: str
) -> None:
    result = report(" ".join(pieces), dialect)
    assert not [f for f in result.findings if "failed (" in f.message], result.findings


@pytest.mark.parametrize(
    "sql",
    ["CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO", "CREATE PROCEDURE p(", "BEGIN NOT ATOMIC"],
)
def test_a_program_cut_short_does_not_fail_inside(sql: str) -> None:
    result = report(sql)
    assert not [f for f in result.findings if "failed (" in f.message]


def test_what_one_branch_changes_does_not_exempt_another_branch() -> None:
    # Modelled on the issue's MigrateRootId_Posts: the ELSE branch changes the type too.
    sql = (
        "CREATE PROCEDURE p()\nBEGIN\n"
        "  IF a THEN\n"
        "    ALTER TABLE Posts MODIFY COLUMN FileIds text;\n"
        "  ELSE\n"
        "    ALTER TABLE Posts MODIFY COLUMN FileIds text;\n"
        "  END IF;\n"
        "  IF b THEN\n"
        "    CREATE TABLE scratch (id INT);\n"
        "  ELSE\n"
        "    DROP TABLE scratch;\n"
        "  END IF;\n"
        "END;\nCALL p();\n"
    )
    assert active(sql) == [
        ("alter-column-type", "Posts", 4),
        ("alter-column-type", "Posts", 6),
        ("drop-table", "scratch", 11),
    ]


def test_unconditional_statements_of_a_body_still_exempt_each_other() -> None:
    sql = (
        "CREATE PROCEDURE p()\nBEGIN\n"
        "  CREATE TEMPORARY TABLE tmp (id INT);\n"
        "  IF a THEN\n    ALTER TABLE tmp ADD COLUMN note TEXT;\n  END IF;\n"
        "  DROP TABLE tmp;\n"
        "END;\nCALL p();\n"
    )
    assert active(sql) == []

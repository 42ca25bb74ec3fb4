"""Issue 16: the check reads a bare CR after a ``--`` comment exactly as each real server does.

Each server runs ``CREATE TABLE customers ...; -- note<CR>DROP TABLE customers;<CR>``;
whether the table survives must match what ``check`` says about the DROP.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from migration_guard.analysis.analyzer import analyze_sql
from migration_guard.config import ProtectedTables

SCRIPT = "CREATE TABLE customers (id int);\n-- note\rDROP TABLE customers;\r"
HASH_SCRIPT = "CREATE TABLE customers (id int);\n# note\rDROP TABLE customers;\r"


def rules(script: str, dialect: str) -> list[tuple[str, int]]:
    """The check's findings on the script without its CREATE (which would exempt the DROP)."""
    text = "\n" + script.split("\n", 1)[1]
    report = analyze_sql(text, file="m.sql", dialect=dialect, protected=ProtectedTables())
    return [(finding.rule, finding.line) for finding in report.active]


def test_mariadb_runs_the_comment_to_the_line_feed(mysql_url: str) -> None:
    from pymysql.constants import CLIENT

    engine = sa.create_engine(mysql_url, connect_args={"client_flag": CLIENT.MULTI_STATEMENTS})
    try:
        for script in (SCRIPT, HASH_SCRIPT):
            connection = engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(script)
                while cursor.nextset():
                    pass
                cursor.execute("SHOW TABLES LIKE 'customers'")
                survived = cursor.fetchall() != ()
                cursor.execute("DROP TABLE IF EXISTS customers")
            finally:
                connection.close()
            assert survived, "MariaDB skipped the DROP hidden by the comment"
            # The check agrees: no drop-table, but the hidden text is an error.
            assert rules(script, "mariadb") == [("unanalyzable", 3)]
    finally:
        engine.dispose()


def test_postgresql_ends_the_comment_at_the_carriage_return(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(SCRIPT)
            cursor.execute("SELECT to_regclass('customers') IS NOT NULL")
            row = cursor.fetchone()
            connection.commit()
        finally:
            connection.close()
    finally:
        engine.dispose()
    assert row is not None and row[0] is False, "PostgreSQL ran the DROP after the CR"
    assert rules(SCRIPT, "postgresql") == [("drop-table", 3)]


def test_sqlite_runs_the_comment_to_the_line_feed(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "app.db")
    try:
        connection.executescript(SCRIPT)
        survived = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'customers'"
        ).fetchone()
    finally:
        connection.close()
    assert survived == (1,)
    assert rules(SCRIPT, "sqlite") == [("unanalyzable", 3)]

"""Every statement of a guarded run passes the guard (issue 11, part A).

Real SQLite files and a real MariaDB server: a second engine opened by a revision at run
time, revision code that reaches a database while it is rendered offline, compound
blocks, a revision that swallows a ``BlockedStatement``, and a raw DBAPI cursor (which
no hook sees) stopped by the server-side protection.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration_guard.commands.safe_upgrade import upgrade
from migration_guard.errors import BlockedMigration, BlockedStatement
from tests.db.upgrade_project import (
    Project,
    make_project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
    seed,
)
from tests.db.upgrade_project import scalar as _scalar

ORDERS_ROWS = 5
CUSTOMERS_ROWS = 3


def _guarded(project: Project, **kw: Any) -> tuple[Any, BlockedMigration | None]:
    try:
        return upgrade(project.config(), alembic_config=str(project.ini), **kw), None
    except BlockedMigration as exc:
        return None, exc


# ------------------------------------------------------------------ 1. second engines
# Opened only online: the offline plan cannot see it, only the run-time interceptor can.
ONLINE_SECOND_ENGINE = """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    if _online():
        engine = sa.create_engine(os.environ["DATABASE_URL"])
        with engine.begin() as conn:
            conn.execute(sa.text({sql!r}))
        engine.dispose()


def downgrade():
    pass
"""


def test_a_second_engine_opened_at_run_time_is_judged_and_blocked(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project.add_revision("r2", "r1", ONLINE_SECOND_ENGINE.format(sql="DELETE FROM orders"))
    monkeypatch.setenv("DATABASE_URL", project.url)
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert refused is None, refused  # the offline plan saw nothing destructive
    assert result.outcome == "restored", result.error
    assert result.blocked is not None
    assert result.blocked["rule"] == "delete-without-where"
    assert result.blocked["file"].endswith("r2.py") and path.exists()
    assert project.snapshot() == before
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS


def test_a_second_engine_that_does_harmless_work_is_let_through(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.add_revision(
        "r2", "r1", ONLINE_SECOND_ENGINE.format(sql="UPDATE orders SET total = 1 WHERE id = 1")
    )
    monkeypatch.setenv("DATABASE_URL", project.url)
    result, refused = _guarded(project, yes=True, backup="always")
    assert refused is None, refused
    assert result.outcome == "applied", result.error
    assert _scalar(project, "SELECT total FROM orders WHERE id = 1") == 1
    assert result.statements_executed > 0


# ------------------------------------------------------------------ 2. offline rendering
RAW_SQLITE_CONNECT = """
import sqlite3


def upgrade():
    database = sqlite3.connect(os.environ["APP_DB_PATH"])
    database.execute("DELETE FROM orders")
    database.commit()
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))


def downgrade():
    pass
"""


def test_check_never_opens_a_raw_sqlite_connection_of_a_revision(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.cli import main

    project = make_project(tmp_path / "proj", sqlite_url)
    seed(project)
    path = project.add_revision("r2", "r1", RAW_SQLITE_CONNECT)
    digest = project.file_digest()
    monkeypatch.chdir(project.root)
    database = sa.engine.make_url(sqlite_url).database or ""
    outcome = CliRunner().invoke(
        main,
        ["check", "-c", str(project.ini)],
        env={"MIGRATION_GUARD_CONFIG": str(project.pyproject), "APP_DB_PATH": database},
    )
    assert project.file_digest() == digest, "check changed the database file: " + outcome.output
    assert "unanalyzable" in outcome.output, outcome.output
    line = next(
        number
        for number, text in enumerate(path.read_text().splitlines(), start=1)
        if "sqlite3.connect" in text
    )
    assert f"r2.py:{line}" in outcome.output, outcome.output
    assert "sqlite3.connect()" in outcome.output, outcome.output
    # The seal is gone afterwards: the same process can open the database again.
    import sqlite3

    assert sqlite3.connect(database).execute("SELECT COUNT(*) FROM orders").fetchone() == (
        ORDERS_ROWS,
    )


# ------------------------------------------------------------------ 3. compound blocks
@pytest.mark.mysql
def test_a_compound_block_is_judged_statement_by_statement(mysql_project: Project) -> None:
    project = mysql_project
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'orders'"))]
    for name in names:  # offline the query returns nothing, so the revision renders
        op.execute(
            "BEGIN NOT ATOMIC\\n"
            "  DECLARE n INT DEFAULT 1;\\n"
            "  UPDATE customers SET points = n WHERE id = 1;\\n"
            "  IF n = 1 THEN DELETE FROM " + name + "; END IF;\\n"
            "END"
        )


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert refused is None, refused
    assert result.outcome == "restored", result.error
    assert result.blocked is not None and result.blocked["rule"] == "delete-without-where"
    assert project.snapshot() == before


@pytest.mark.mysql
def test_a_harmless_compound_block_runs(mysql_project: Project) -> None:
    project = mysql_project
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    op.execute(
        "BEGIN NOT ATOMIC\\n"
        "  DECLARE n INT DEFAULT 7;\\n"
        "  IF n > 1 THEN UPDATE customers SET points = n WHERE id = 1; END IF;\\n"
        "END"
    )


def downgrade():
    pass
""",
    )
    result, refused = _guarded(project, yes=True)
    assert refused is None, refused
    assert result.outcome == "applied", result.error
    assert _scalar(project, "SELECT points FROM customers WHERE id = 1") == 7


# ------------------------------------------------------------------ 4. a swallowed block
SWALLOWS_THE_BLOCK = """
from migration_guard.errors import BlockedStatement


def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'orders'"))]
    try:
        for name in names:  # offline the query returns nothing, so the revision renders
            op.execute("DELETE FROM " + name)
    except BlockedStatement:
        pass
    op.execute("UPDATE customers SET points = 1 WHERE id > 0")


def downgrade():
    pass
"""

GUARDED_ENV = (
    "        with context.begin_transaction():\n            context.run_migrations()\n",
    "        from migration_guard.alembic.env import guard\n\n"
    "        with guard(context, connection):\n"
    "            with context.begin_transaction():\n"
    "                context.run_migrations()\n",
)


def test_a_swallowed_block_fails_the_revision_before_it_commits(project: Project) -> None:
    project.add_revision("r2", "r1", SWALLOWS_THE_BLOCK)
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert refused is None, refused
    assert result.outcome == "restored", result.error
    assert "caught the error and carried on" in (result.error or "")
    assert result.applied == [], "the revision step was reported as applied"
    assert project.snapshot() == before


def test_a_swallowed_block_fails_a_plain_alembic_upgrade_with_the_env_py_guard(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command
    from alembic.config import Config

    env_py = project.root / "migrations" / "env.py"
    old, new = GUARDED_ENV
    env_py.write_text(env_py.read_text().replace(old, new))
    monkeypatch.setenv("MIGRATION_GUARD_CONFIG", str(project.pyproject))
    project.add_revision("r2", "r1", SWALLOWS_THE_BLOCK)
    before = project.snapshot()
    config = Config(str(project.ini))
    config.cmd_opts = argparse.Namespace(x=[])  # type: ignore[assignment]
    with pytest.raises(BlockedStatement, match="caught the error and carried on"):
        command.upgrade(config, "head")
    assert project.snapshot() == before
    audit = [
        json.loads(line)
        for line in (project.backup_dir / "audit.jsonl").read_text().splitlines()
        if line.strip()
    ]
    assert audit[-1]["outcome"] == "restored"


# ------------------------------------------------------------------ 5. raw DBAPI cursors
@pytest.mark.mysql
def test_a_raw_cursor_delete_is_refused_by_the_installed_protection(
    mysql_project: Project,
) -> None:
    from migration_guard.commands.protect import protect_install

    project = mysql_project
    installed = protect_install(project.config(), url=project.url, yes=True)
    assert installed.applied
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("scratch", sa.Column("extra", sa.Integer, nullable=True))
    if _online():
        # A raw DBAPI cursor: no SQLAlchemy hook sees this statement.
        cursor = op.get_bind().connection.cursor()
        cursor.execute("DELETE FROM customers")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert refused is None, refused
    assert result.outcome == "restored", result.error
    assert result.blocked is None, "the interceptor cannot have seen a raw cursor"
    assert "deleting from customers is blocked" in (result.error or ""), result.error
    assert _scalar(project, "SELECT COUNT(*) FROM customers") == CUSTOMERS_ROWS
    assert project.snapshot() == before


RAW_SQLITE_CURSOR = """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    if _online():
        cursor = op.get_bind().connection.cursor()
        cursor.execute({sql!r})


def downgrade():
    pass
"""


def test_sqlite_refuses_a_raw_cursor_write_to_a_protected_table(
    tmp_path: Path, sqlite_url: str
) -> None:
    project = make_project(tmp_path / "proj", sqlite_url)
    seed(project)
    project.add_revision("r2", "r1", RAW_SQLITE_CURSOR.format(sql="DELETE FROM orders"))
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert refused is None, refused
    assert result.outcome == "restored", result.error
    assert "raw" in (result.error or ""), result.error
    assert "orders" in (result.error or ""), result.error
    assert project.snapshot() == before


def test_sqlite_lets_a_raw_cursor_write_to_an_unprotected_table_through(
    tmp_path: Path, sqlite_url: str
) -> None:
    project = make_project(tmp_path / "proj", sqlite_url)
    seed(project)
    project.add_revision("r2", "r1", RAW_SQLITE_CURSOR.format(sql="DELETE FROM scratch"))
    result, refused = _guarded(project, yes=True)
    assert refused is None, refused
    assert result.outcome == "applied", result.error
    assert _scalar(project, "SELECT COUNT(*) FROM scratch") == 0
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS

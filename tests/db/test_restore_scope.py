"""A failed run restores what it did, and nothing else (issue 11, part B).

Real SQLite files and a real MariaDB server: the scope of the restore is what the
interceptor recorded, tables changed through foreign-key actions are backed up before
the statement that changes them, the application's rows survive, and SQLite batch
rebuilds with foreign keys on lose no child row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration_guard.commands.safe_upgrade import upgrade
from migration_guard.render.upgrade import render_text
from tests.db.test_upgrade_attacks import (
    APP_ORDER,
    APP_WRITER,
    BATCH_REBUILD,
    CASCADE_BASE,
    CUSTOMERS_ROWS,
    FK_ON_CONNECT,
    ORDERS_ROWS,
)
from tests.db.upgrade_project import (
    Project,
    make_project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
    seed,
)
from tests.db.upgrade_project import scalar as _scalar


def _cascading_project(root: Path, url: str, protected: tuple[str, ...]) -> Project:
    """customers <- orders ON DELETE CASCADE; on SQLite env.py switches foreign keys on."""
    project = make_project(root, url, protected=protected)
    project.add_revision("r1", None, CASCADE_BASE, doc="base tables, cascading FK")
    seed(project)
    if sa.engine.make_url(url).get_backend_name() == "sqlite":
        env_py = project.root / "migrations" / "env.py"
        old, new = FK_ON_CONNECT
        env_py.write_text(env_py.read_text().replace(old, new))
    return project


def test_a_cascade_target_is_backed_up_before_the_delete_and_restored(
    tmp_path: Path, db_url: str
) -> None:
    # orders is not protected and no statement names it: only the ON DELETE CASCADE
    # from customers changes it. The DDL after the DELETE commits it on MariaDB.
    project = _cascading_project(tmp_path / "proj", db_url, protected=("customers",))
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.execute("DELETE FROM customers WHERE id = 3")
    op.add_column("scratch", sa.Column("flag", sa.Integer, nullable=True))
    if _online():
        raise RuntimeError("the revision fails after the cascade")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", result.error
    assert "orders" in {jit["table"] for jit in result.jit_backups}, result.jit_backups
    assert result.restore is not None and result.restore.ok, result.restore
    assert project.snapshot() == before
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS
    assert set(result.restore.restored_tables) == {"customers", "orders", "scratch"}


def test_untouched_tables_keep_the_applications_rows_and_created_tables_go_last(
    project_factory: Any,
) -> None:
    project = project_factory()
    app_scratch = "INSERT INTO scratch (id, payload) VALUES (9, 'app')"
    project.add_revision(
        "r2",
        "r1",
        APP_WRITER
        + f"""

def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    if _online():
        _application_writes({app_scratch!r})
        raise RuntimeError("the revision fails after the application wrote")


def downgrade():
    pass
""",
    )
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="always")
    assert result.outcome == "restored", result.error
    report = result.restore
    assert report is not None and report.ok, report
    assert report.restored_tables == ["orders"]
    assert report.dropped_tables == ["half_done"]
    assert _scalar(project, "SELECT payload FROM scratch WHERE id = 9") == "app"
    statuses = {entry["table"]: entry["status"] for entry in report.tables}
    assert statuses == {"orders": "restored", "half_done": "dropped"}
    # The rescue backup holds the tables as the run left them, the created one too.
    assert report.rescue_backup_id is not None
    manifest = json.loads(
        (project.backup_dir / f"{report.rescue_backup_id}.manifest.json").read_text()
    )
    assert sorted(manifest["tables"]) == ["half_done", "orders"]
    text = render_text(result)
    assert "rolled back completely" in text
    assert "scratch" not in text.split("proof:")[0].split("restored the state")[1]


@pytest.fixture
def project_factory(tmp_path: Path, db_url: str) -> Any:
    def make() -> Project:
        made = make_project(tmp_path / "proj", db_url)
        seed(made)
        return made

    return make


@pytest.mark.mysql
def test_rescued_rows_are_reported_and_never_called_completely(
    tmp_path: Path, mysql_url: str, mysql_admin_engine: Any
) -> None:
    project = make_project(tmp_path / "proj", mysql_url)
    seed(project)
    project.add_revision(
        "r2",
        "r1",
        APP_WRITER
        + f"""

def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    op.execute("UPDATE orders SET total = total + 1 WHERE id = 1")
    if _online():
        _application_writes({APP_ORDER!r})
        raise RuntimeError("the revision fails after the application wrote")


def downgrade():
    pass
""",
    )
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="always")
    assert result.outcome == "restored", result.error
    report = result.restore
    assert report is not None and report.ok, report
    (rescued,) = report.rescued
    assert rescued["table"] == "orders"
    # The run's UPDATE was rolled back with its transaction; the application's row stays.
    assert rescued["detail"].startswith("1 row added (id 6) during the run")
    assert report.rescue_backup_id and report.rescue_backup_id in rescued["detail"]
    # The table is as before the run; the application's row is only in the rescue backup.
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS
    text = render_text(result)
    assert "completely" not in text
    assert "rescue backup" in text
    # The command the report gives shows the rows: restore it into a scratch database.
    scratch = f"{sa.engine.make_url(mysql_url).database}_rescue"
    with mysql_admin_engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{scratch}`"))
    try:
        scratch_url = sa.engine.make_url(mysql_url).set(database=scratch)
        command = rescued["detail"].split("See them with: ")[1]
        args = command.replace(
            "SCRATCH_URL", scratch_url.render_as_string(hide_password=False)
        ).split()
        env = dict(os.environ, MIGRATION_GUARD_CONFIG=str(project.pyproject))
        done = subprocess.run(
            [sys.executable, "-m", "migration_guard", *args[1:], "--yes"],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        engine = sa.create_engine(scratch_url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT id, total FROM orders ORDER BY id")).all()
        finally:
            engine.dispose()
        assert (6, 999) in [tuple(row) for row in rows]
        assert len(rows) == ORDERS_ROWS + 1
    finally:
        with mysql_admin_engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{scratch}`"))


# ------------------------------------------------------------ SQLite batch rebuilds
def _sqlite_cascade(tmp_path: Path, sqlite_url: str) -> Project:
    return _cascading_project(tmp_path / "proj", sqlite_url, protected=("customers",))


def test_batch_rebuild_inside_an_open_transaction_keeps_every_child_row(
    tmp_path: Path, sqlite_url: str
) -> None:
    # r2 writes rows first, so the migration connection is inside a transaction when
    # r3's rebuild starts, where SQLite ignores PRAGMA foreign_keys.
    project = _sqlite_cascade(tmp_path, sqlite_url)
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.execute("UPDATE scratch SET payload = 'r2' WHERE id = 1")


def downgrade():
    pass
""",
    )
    project.add_revision("r3", "r2", BATCH_REBUILD)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "applied", result.error
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS
    assert _scalar(project, "SELECT COUNT(*) FROM customers") == CUSTOMERS_ROWS
    assert _scalar(project, "SELECT payload FROM scratch WHERE id = 1") == "r2"
    assert _scalar(project, "PRAGMA foreign_key_check") is None


def test_failed_run_after_a_batch_rebuild_is_restored_with_every_child_row(
    tmp_path: Path, sqlite_url: str
) -> None:
    project = _sqlite_cascade(tmp_path, sqlite_url)
    project.add_revision(
        "r2",
        "r1",
        BATCH_REBUILD.replace(
            "\n\ndef downgrade",
            '\n    if _online():\n        raise RuntimeError("fails after the rebuild")\n'
            "\n\ndef downgrade",
            1,
        ),
    )
    before = project.snapshot()
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", result.error
    assert "fails after the rebuild" in (result.error or "")
    assert result.restore is not None and result.restore.ok, result.restore
    assert project.snapshot() == before


def test_a_rebuild_that_leaves_a_dangling_reference_fails_and_is_restored(
    tmp_path: Path, sqlite_url: str
) -> None:
    # With the actions off, deleting a parent row leaves its children dangling: the
    # check after the run finds them and the run is restored instead of committed.
    project = _sqlite_cascade(tmp_path, sqlite_url)
    project.add_revision(
        "r2",
        "r1",
        BATCH_REBUILD.replace(
            "\n\ndef downgrade",
            '\n    op.execute("DELETE FROM customers WHERE id = 3")\n\n\ndef downgrade',
            1,
        ),
    )
    before = project.snapshot()
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", result.error
    assert "break a foreign key" in (result.error or "")
    assert result.restore is not None and result.restore.ok, result.restore
    assert project.snapshot() == before


def test_without_backups_a_rolled_back_write_is_proven_unchanged(project_factory: Any) -> None:
    project = project_factory()
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.execute("UPDATE scratch SET payload = 'x' WHERE id = 1")
    if _online():
        raise RuntimeError("fails inside the transaction")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="never")
    assert result.outcome == "restored", result.error
    assert result.restore is not None and result.restore.ok, result.restore
    assert any("scratch: unchanged" in line for line in result.restore.proof)
    assert project.snapshot() == before


def test_without_backups_a_committed_change_is_reported_not_hidden(tmp_path: Path) -> None:
    # SQLite commits nothing here, so the proof needs DDL that sticks: a column added
    # outside any transaction (pysqlite runs DDL in autocommit).
    project = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'app.db'}")
    seed(project)
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("scratch", sa.Column("flag", sa.Integer, nullable=True))
    if _online():
        raise RuntimeError("fails after the DDL")


def downgrade():
    pass
""",
    )
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="never")
    assert result.outcome == "restore-failed", result.error
    assert result.restore is not None
    assert any("scratch" in m and "no backup" in m for m in result.restore.mismatches)


@pytest.mark.mysql
def test_a_schema_qualified_write_is_restored_on_the_connected_database(
    tmp_path: Path, mysql_url: str
) -> None:
    project = make_project(tmp_path / "proj", mysql_url, protected=("customers",))
    seed(project)
    database = sa.engine.make_url(mysql_url).database
    project.add_revision(
        "r2",
        "r1",
        f"""
def upgrade():
    op.execute("UPDATE `{database}`.scratch SET payload = 'run' WHERE id = 1")
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    if _online():
        raise RuntimeError("fails after the DDL committed the update")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", result.error
    assert result.restore is not None and result.restore.ok, result.restore
    assert sorted(result.restore.restored_tables) == ["customers", "scratch"]
    assert project.snapshot() == before

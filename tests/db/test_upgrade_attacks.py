"""Attacks on issue 11, "Safe upgrade that loses nothing".

Each test asserts what the issue demands of ``migration-guard upgrade`` (and ``check``)
against real SQLite files and a real MariaDB server. They were written before the fixes
and failed on the code of the time; each names the issue item it attacks.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration_guard.commands.safe_upgrade import upgrade
from migration_guard.errors import BlockedMigration
from tests.db.upgrade_project import (
    Project,
    make_project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
    seed,
)
from tests.db.upgrade_project import scalar as _scalar
from tests.db.upgrade_project import upgrade_process as _cli
from tests.db.upgrade_project import wait_for as _wait_for

ORDERS_ROWS = 5
CUSTOMERS_ROWS = 3


def _rows(project: Project, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(project.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _columns(project: Project, table: str) -> list[str]:
    engine = sa.create_engine(project.url, poolclass=sa.pool.NullPool)
    try:
        return [c["name"] for c in sa.inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


def _guarded(project: Project, **kw: Any) -> tuple[Any, BaseException | None]:
    """Run the guarded upgrade; return (result, None) or (None, the refusal)."""
    try:
        return upgrade(project.config(), alembic_config=str(project.ini), **kw), None
    except BlockedMigration as exc:
        return None, exc


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def _manifest_ids(project: Project) -> set[str]:
    return {p.name[: -len(".manifest.json")] for p in project.backup_dir.glob("*.manifest.json")}


# ------------------------------------------------------------------ 1. the restore rewinds
# The "application": a separate process that writes while the revision runs. It is a
# real other process (not the migration's connection nor its Python process), exactly
# like an application server writing during a deploy.
APP_WRITER = """
def _application_writes(*statements):
    import subprocess, sys
    url = context.config.get_main_option("sqlalchemy.url")
    code = (
        "import sys, sqlalchemy as sa\\n"
        "e = sa.create_engine(sys.argv[1], poolclass=sa.pool.NullPool)\\n"
        "with e.begin() as c:\\n"
        "    for s in sys.argv[2:]:\\n"
        "        c.execute(sa.text(s))\\n"
        "e.dispose()\\n"
    )
    subprocess.run([sys.executable, "-c", code, url, *statements], check=True, timeout=60)
"""

APP_CUSTOMER = "INSERT INTO customers (id, email, notes) VALUES (4, 'app@example.com', 'new')"
APP_ORDER = "INSERT INTO orders (id, customer_id, total) VALUES (6, 1, 999)"


def test_restore_keeps_rows_the_application_wrote_during_the_run(project: Project) -> None:
    project.add_revision(
        "r2",
        "r1",
        APP_WRITER
        + f"""

def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    if _online():
        _application_writes({APP_CUSTOMER!r}, {APP_ORDER!r})
        raise RuntimeError("the revision fails after the application wrote")


def downgrade():
    pass
""",
    )
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="always")
    assert result.outcome == "restored", result.error
    # Precondition: the application's write really committed while the run was open.
    assert "the revision fails after the application wrote" in (result.error or "")
    assert result.restore is not None and result.restore.ok, result.restore
    # The run's own change is undone...
    assert "note" not in _columns(project, "orders")
    assert _scalar(project, "SELECT version_num FROM alembic_version") == "r1"
    # ...but customers was never touched by the run: left alone, not listed as restored.
    assert _rows(project, "SELECT id, email FROM customers WHERE id = 4") == [
        (4, "app@example.com")
    ], "the application's customer row written during the run was rewound"
    # orders only got DDL from the run: the application's row is re-applied.
    assert _rows(project, "SELECT id, customer_id, total FROM orders WHERE id = 6") == [
        (6, 1, 999)
    ], "the application's order row written during the run was rewound"
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS + 1
    assert "customers" not in result.restore.restored_tables


# MariaDB only: on SQLite the run's open write transaction locks the application out.
@pytest.mark.mysql
def test_application_rows_in_a_table_the_run_wrote_go_to_a_reported_rescue_backup(
    mysql_project: Project,
) -> None:
    project = mysql_project
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
    # Precondition: the application's write really committed while the run was open.
    assert "the revision fails after the application wrote" in (result.error or "")
    assert result.restore is not None and result.restore.ok, result.restore
    known = {result.backup_id, *(jit["id"] for jit in result.jit_backups)}
    rescue = _manifest_ids(project) - known
    assert len(rescue) == 1, f"no rescue backup of the application's rows: {sorted(rescue)}"
    (rescue_id,) = rescue
    manifest = json.loads((project.backup_dir / f"{rescue_id}.manifest.json").read_text())
    assert "orders" in json.dumps(manifest)
    reported = json.dumps(dataclasses.asdict(result), default=str)
    assert rescue_id in reported, "the rescue backup id is not reported"
    assert re.search(r"\b1 row", reported), "the rescued row count is not reported"


# ------------------------------------------------------------------ 2/3. a second engine
SECOND_ENGINE = """
def upgrade():
    engine = sa.create_engine(os.environ["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM orders"))
    engine.dispose()
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))


def downgrade():
    pass
"""


def test_check_never_runs_a_revisions_own_engine(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.cli import main

    path = project.add_revision("r2", "r1", SECOND_ENGINE)
    monkeypatch.setenv("DATABASE_URL", project.url)
    monkeypatch.chdir(project.root)
    outcome = CliRunner().invoke(
        main,
        ["check", "-c", str(project.ini)],
        env={"MIGRATION_GUARD_CONFIG": str(project.pyproject), "DATABASE_URL": project.url},
    )
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS, (
        "check deleted the rows: " + outcome.output
    )
    line = _line_of(path, "create_engine")
    assert "unanalyzable" in outcome.output, outcome.output
    assert re.search(rf"r2\.py:({line}|{line + 2})\b", outcome.output), outcome.output


def test_dry_run_never_runs_a_revisions_own_engine(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project.add_revision("r2", "r1", SECOND_ENGINE)
    monkeypatch.setenv("DATABASE_URL", project.url)
    before = project.snapshot()
    result, refused = _guarded(project, dry_run=True)
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS, (
        "the dry run deleted the protected rows"
    )
    assert project.snapshot() == before, "the dry run changed the database"
    findings = refused.findings if refused is not None else result.findings
    unanalyzable = [f for f in findings if f.rule == "unanalyzable"]
    assert unanalyzable, [f.rule for f in findings]
    assert any("r2.py" in json.dumps(dataclasses.asdict(f), default=str) for f in unanalyzable)
    assert path.exists()


def test_delete_through_a_second_engine_is_blocked(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.add_revision("r2", "r1", SECOND_ENGINE)
    monkeypatch.setenv("DATABASE_URL", project.url)
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert refused is not None or result.outcome != "applied", (
        "the run deleted every protected order and reported success"
    )
    assert project.snapshot() == before


# ------------------------------------------------------------------ 4. SQLite batch + FK
CASCADE_BASE = """
def upgrade():
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(100), nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "customer_id",
            sa.Integer,
            sa.ForeignKey("customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("total", sa.Integer, nullable=False),
    )
    op.create_table(
        "scratch",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("payload", sa.String(50)),
    )


def downgrade():
    pass
"""

BATCH_REBUILD = """
def upgrade():
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("points", sa.Integer, nullable=True))
        batch.alter_column("email", existing_type=sa.String(100), nullable=False)


def downgrade():
    pass
"""

# The documented SQLite recipe: foreign keys switched on for every new connection.
FK_ON_CONNECT = (
    "    with connectable.connect() as connection:\n",
    "    from sqlalchemy import event\n\n"
    '    @event.listens_for(connectable, "connect")\n'
    "    def _fk_on(dbapi_connection, record):\n"
    '        dbapi_connection.execute("PRAGMA foreign_keys=ON")\n\n'
    "    with connectable.connect() as connection:\n",
)


def test_sqlite_batch_rebuild_with_foreign_keys_on_keeps_every_child_row(
    tmp_path: Path, sqlite_url: str
) -> None:
    project = make_project(tmp_path / "proj", sqlite_url)
    project.add_revision("r1", None, CASCADE_BASE, doc="base tables, cascading FK")
    seed(project)
    env_py = project.root / "migrations" / "env.py"
    old, new = FK_ON_CONNECT
    text = env_py.read_text()
    assert text.count(old) == 1
    env_py.write_text(text.replace(old, new))
    project.add_revision("r2", "r1", BATCH_REBUILD)
    result, refused = _guarded(project, yes=True)
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS, (
        f"orders lost its rows; outcome {result.outcome if result else refused}"
    )
    assert _scalar(project, "SELECT COUNT(*) FROM customers") == CUSTOMERS_ROWS


# ------------------------------------------------------------------ 5. interceptor gaps
def _multi_statement_url(url: str) -> str:
    return url + "&client_flag=65536"  # CLIENT.MULTI_STATEMENTS


@pytest.mark.mysql
def test_multi_statement_drop_is_blocked(tmp_path: Path, mysql_url: str) -> None:
    project = make_project(tmp_path / "proj", _multi_statement_url(mysql_url))
    seed(project)
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'orders'"))]
    for name in names:  # offline there are no rows: only the run sees it
        op.execute("SELECT 1; DROP TABLE " + name)


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert "orders" in project.snapshot()["tables"], "the protected table was dropped"
    assert refused is not None or result.outcome != "applied"
    assert project.snapshot() == before


def test_sqlite_executescript_on_the_migration_connection_is_blocked(
    tmp_path: Path, sqlite_url: str
) -> None:
    project = make_project(tmp_path / "proj", sqlite_url)
    seed(project)
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    if _online():
        op.get_bind().connection.executescript("SELECT 1; DELETE FROM orders;")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS, (
        f"the script emptied orders; outcome {result.outcome if result else refused}"
    )
    assert refused is not None or result.outcome != "applied"
    assert project.snapshot() == before


@pytest.mark.mysql
def test_multi_statement_delete_after_set_is_blocked(tmp_path: Path, mysql_url: str) -> None:
    project = make_project(tmp_path / "proj", _multi_statement_url(mysql_url))
    seed(project)
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'orders'"))]
    for name in names:  # offline there are no rows: only the run sees it
        op.execute("SET @x = 1; DELETE FROM " + name)


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS
    assert refused is not None or result.outcome != "applied"
    assert project.snapshot() == before


@pytest.mark.mysql
def test_analyze_delete_is_blocked(mysql_project: Project) -> None:
    # MariaDB's form; MySQL's "EXPLAIN ANALYZE DELETE" is a syntax error on MariaDB 10.11.
    project = mysql_project
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'orders'"))]
    for name in names:  # offline there are no rows: only the run sees it
        op.execute("ANALYZE DELETE FROM " + name)


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS
    assert refused is not None or result.outcome != "applied"
    assert result is None or result.blocked is not None, result.error
    assert project.snapshot() == before


# ------------------------------------------------------------------ 6. approvals too broad
# Passed before the fixes too: the static plan already scoped an inline suppression.
def test_inline_suppression_approves_only_its_own_revision(project: Project) -> None:
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    # migration-guard: allow drop-column because: notes moved to the CRM in #1234
    op.drop_column("customers", "notes")


def downgrade():
    pass
""",
    )
    project.add_revision(
        "r3",
        "r2",
        """
def upgrade():
    op.drop_column("customers", "email")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert refused is not None, (
        f"r3's unapproved drop-column ran: outcome {result.outcome}, approvals {result.approvals}"
    )
    assert "r3.py" in str(refused)
    assert project.snapshot() == before


def test_inline_suppression_does_not_approve_a_later_revisions_runtime_statement(
    project: Project,
) -> None:
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    # migration-guard: allow drop-column because: notes moved to the CRM in #1234
    op.drop_column("customers", "notes")


def downgrade():
    pass
""",
    )
    # r3's column name only exists online: only the interceptor can judge the statement.
    project.add_revision(
        "r3",
        "r2",
        """
def upgrade():
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'email'"))]
    for name in names:
        op.execute("ALTER TABLE customers DROP COLUMN " + name)


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert "email" in _columns(project, "customers"), (
        f"r3's unapproved drop ran: outcome {result.outcome if result else refused}"
    )
    assert refused is not None or result.outcome != "applied"
    assert project.snapshot() == before


def test_approved_rename_does_not_approve_dropping_the_renamed_table(project: Project) -> None:
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    # migration-guard: allow rename-table because: orders become archived orders (#42)
    op.rename_table("orders", "orders_old")


def downgrade():
    pass
""",
    )
    project.add_revision(
        "r3",
        "r2",
        """
def upgrade():
    op.drop_table("orders_old")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert refused is not None, (
        f"the protected orders were renamed then dropped: outcome {result.outcome}"
    )
    assert project.snapshot() == before


def test_cli_refuses_a_wildcard_unanalyzable_approval(project: Project) -> None:
    from migration_guard.cli import main

    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    outcome = CliRunner().invoke(
        main,
        [
            "upgrade",
            "-c",
            str(project.ini),
            "--allow",
            "unanalyzable:*",
            "--reason",
            "trust me",
            "--yes",
        ],
        env={"MIGRATION_GUARD_CONFIG": str(project.pyproject)},
    )
    assert outcome.exit_code == 2, outcome.output
    assert "unanalyzable" in outcome.output
    assert project.snapshot() == before


# ------------------------------------------------------------------ 7. qualified patterns
def test_schema_qualified_protected_pattern_matches_unqualified_sql(
    tmp_path: Path, db_url: str
) -> None:
    # The default schema: the database named in the URL on MariaDB, "main" on SQLite.
    url = sa.engine.make_url(db_url)
    schema = "main" if url.get_backend_name() == "sqlite" else url.database
    project = make_project(tmp_path / "proj", db_url, protected=(f"{schema}.orders",))
    seed(project)
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'orders'"))]
    for name in names:  # offline there are no rows: only the run sees it
        op.execute("DELETE FROM " + name)


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS, (
        "every row of the protected (qualified pattern) table was deleted"
    )
    assert refused is not None or result.outcome != "applied"
    assert project.snapshot() == before


# ------------------------------------------------------------------ 8. caught BlockedStatement
# Passed before the fixes too: the interceptor remembered the block and failed the run.
def test_a_swallowed_block_still_fails_the_run(project: Project) -> None:
    project.add_revision(
        "r2",
        "r1",
        """
from migration_guard.errors import BlockedStatement


def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'orders'"))]
    try:
        for name in names:  # offline there are no rows: only the run sees it
            op.execute("DELETE FROM " + name)
    except BlockedStatement:
        pass
    op.execute("UPDATE customers SET points = 1 WHERE id > 0")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result, refused = _guarded(project, yes=True)
    assert refused is not None or result.outcome != "applied", (
        "the blocked statement was swallowed and the run committed"
    )
    assert result is None or result.blocked is not None, result.error
    assert project.snapshot() == before


# ------------------------------------------------------------------ 10. the lock is killed
@pytest.mark.mysql
def test_run_stops_when_its_lock_connection_is_killed(mysql_project: Project) -> None:
    project = mysql_project
    marker = project.root / "running"
    project.add_revision(
        "r2",
        "r1",
        f"""
def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    if _online():
        open({str(marker)!r}, "w").close()
        time.sleep(3)
    op.execute("UPDATE orders SET note = 'x' WHERE id > 0")


def downgrade():
    pass
""",
    )
    database = sa.engine.make_url(project.url).database
    # The lock's documented form: GET_LOCK('migration-guard:<database>').
    lock_name = f"migration-guard:{database}"
    run = _cli(project, "--yes")
    try:
        _wait_for(marker, run)
        holder = _scalar(project, f"SELECT IS_USED_LOCK('{lock_name}')")
        assert holder is not None, "no connection holds the migration lock"
        project.execute(f"KILL {int(holder)}")
    finally:
        out, err = run.communicate(timeout=60)
    assert run.returncode != 0, (out, err)
    assert _scalar(project, "SELECT version_num FROM alembic_version") == "r1"
    assert "note" not in _columns(project, "orders"), (out, err)
    assert b"was lost mid-run" in out + err, (out, err)  # and it says why it stopped


# ------------------------------------------------------------------ 9. killed in the restore
def test_run_killed_during_its_restore_is_recovered_by_the_next_run(
    project: Project,
) -> None:
    # The revision fails; it has installed a statement hook in its own process that
    # SIGKILLs the process at the first SQL statement executed once the run record
    # (backup_dir/runs/<run>.json, as test_upgrade.py reads it) says "restoring": the
    # kill lands deterministically inside the guard's restore.
    runs = project.backup_dir / "runs"
    project.add_revision(
        "r2",
        "r1",
        f"""
def _die_inside_the_restore():
    import glob, json, signal

    def hook(*args, **kw):
        for path in glob.glob({str(runs / "*.json")!r}):
            try:
                with open(path) as handle:
                    status = json.load(handle).get("status")
            except ValueError:
                continue
            if status == "restoring":
                os.kill(os.getpid(), signal.SIGKILL)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", hook)


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("UPDATE orders SET total = 0 WHERE id < 3")
    if _online():
        _die_inside_the_restore()
        raise RuntimeError("fail so the guard restores")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    victim = _cli(project, "--yes", "--backup", "always")
    out, err = victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL, (victim.returncode, out, err)
    statuses = [json.loads(p.read_text())["status"] for p in runs.glob("*.json")]
    assert statuses == ["restoring"], statuses
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "recovered", (result.outcome, result.error)
    assert result.restore is not None and result.restore.ok, result.restore
    assert project.snapshot() == before

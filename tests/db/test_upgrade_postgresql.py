"""``migration-guard upgrade`` on a real PostgreSQL server (issue 15, "Upgrades on
PostgreSQL, using transactional DDL").

The migration runs inside the transaction env.py opens; a failure is rolled back by the
server and then *proven*: every table's ordered rows and the whole schema (``pg_dump
--schema-only``) are compared with the state from before the run. What runs in an
``autocommit_block()`` is committed at once and comes back from the run's backups.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration_guard.commands.safe_upgrade import upgrade
from migration_guard.render.upgrade import render_text
from tests.db.test_backup_postgresql_restore import schema_text
from tests.db.test_upgrade import CHAIN, CHAIN_STATEMENTS
from tests.db.test_upgrade_attacks import APP_WRITER
from tests.db.upgrade_project import (
    Project,
    make_project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
    seed,
)
from tests.db.upgrade_project import upgrade_process as _cli
from tests.db.upgrade_project import wait_for as _wait_for

pytestmark = pytest.mark.postgresql


@pytest.fixture
def project(tmp_path: Path, postgres_url: str) -> Project:
    made = make_project(tmp_path / "proj", postgres_url)
    seed(made)
    return made


def _engine(project: Project) -> sa.Engine:
    return sa.create_engine(project.url, poolclass=sa.pool.NullPool)


def _scalar(project: Project, sql: str) -> Any:
    engine = _engine(project)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def state(project: Project) -> dict[str, Any]:
    """Every table's rows in primary-key order, the heads, and the whole schema."""
    engine = _engine(project)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            rows = {
                table: [
                    tuple(map(str, row))
                    for row in conn.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY 1'))
                ]
                for table in sorted(tables)
            }
    finally:
        engine.dispose()
    return {"rows": rows, "schema": schema_text(project.url)}


# ------------------------------------------------------------------ 1. rollback with proof
HALF_WAY = """
def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    op.execute("UPDATE orders SET note = 'x', total = total + 1 WHERE id > 0")
    op.execute("INSERT INTO orders (id, customer_id, total) VALUES (50, 1, 1)")
    op.create_index("ix_orders_total", "orders", ["total"])
    op.create_table("coupons", sa.Column("id", sa.Integer, primary_key=True))
    # migration-guard: allow drop-column because: notes moved to the CRM in #1234
    op.drop_column("customers", "notes")
    if _online():
        raise RuntimeError("the revision fails half-way")


def downgrade():
    pass
"""


def test_a_failed_half_way_migration_is_rolled_back_and_proven(project: Project) -> None:
    project.add_revision("r2", "r1", HALF_WAY)
    before = state(project)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", (result.outcome, result.error)
    assert "fails half-way" in (result.error or "")
    report = result.restore
    assert report is not None and report.ok, report
    assert state(project) == before
    # Proven by measurement, not reloaded: no table came back from a backup.
    assert report.restored_tables == [] and report.rescue_backup_id is None, report
    proven = " ".join(report.proof)
    for table in ("orders", "customers"):
        assert f"{table}: rolled back by the database, proven" in proven, report.proof
    assert result.backup_id is not None  # the safety backup was still taken
    text = render_text(result)
    assert "rolled back completely" in text and "rolled back by the database, proven" in text


def test_failure_at_every_revision_of_a_chain_leaves_the_database_as_before(
    project: Project,
) -> None:
    for revision, body in CHAIN.items():
        project.add_revision(revision, {"r2": "r1", "r3": "r2", "r4": "r3"}[revision], body)
    before = state(project)
    for fail_at in (1, 4, CHAIN_STATEMENTS - 1):
        result = upgrade(
            project.config(),
            alembic_config=str(project.ini),
            yes=True,
            x_args=[f"fail_at={fail_at}"],
        )
        assert result.outcome == "restored", (fail_at, result.outcome, result.error)
        assert result.restore is not None and result.restore.ok, (fail_at, result.restore)
        assert state(project) == before, fail_at
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "applied", result.error
    assert _scalar(project, "SELECT version_num FROM alembic_version") == "r4"


def test_rows_the_application_writes_to_other_tables_during_the_run_survive(
    project: Project,
) -> None:
    # The application is another process; it writes to customers, which the run does not
    # touch, while the run's transaction holds orders (ALTER TABLE locks it exclusively).
    app_customer = "INSERT INTO customers (id, email, notes) VALUES (4, 'app@example.com', 'new')"
    app_scratch = "UPDATE scratch SET payload = 'app' WHERE id = 1"
    project.add_revision(
        "r2",
        "r1",
        APP_WRITER
        + f"""

def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    op.execute("UPDATE orders SET note = 'x' WHERE id > 0")
    if _online():
        _application_writes({app_customer!r}, {app_scratch!r})
        raise RuntimeError("the revision fails after the application wrote")


def downgrade():
    pass
""",
    )
    before = state(project)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="always")
    assert result.outcome == "restored", result.error
    assert "after the application wrote" in (result.error or "")
    assert result.restore is not None and result.restore.ok, result.restore
    after = state(project)
    assert after["schema"] == before["schema"]
    assert after["rows"]["orders"] == before["rows"]["orders"]
    assert ("4", "app@example.com", "new") in after["rows"]["customers"]
    assert ("1", "app") in after["rows"]["scratch"]
    assert "customers" not in result.restore.restored_tables


@pytest.mark.timeout(180)
def test_tables_the_plan_touches_are_backed_up_before_the_run_not_inside_it(
    project: Project,
) -> None:
    # No finding, so on MySQL each table would be backed up just before the run first
    # changes it. Here scratch would come while the transaction holds orders exclusively
    # (after its ALTER), and pg_dump would wait for that lock: the run would wait for
    # itself. On PostgreSQL the planned tables are backed up before the run instead.
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    op.execute("UPDATE scratch SET payload = 'run' WHERE id = 1")
    if _online():
        raise RuntimeError("the revision fails after two tables")


def downgrade():
    pass
""",
    )
    before = state(project)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", (result.outcome, result.error)
    assert "the revision fails after two tables" in (result.error or ""), result.error
    assert result.backup_id is not None and {"orders", "scratch"} <= set(result.backup_tables)
    assert result.jit_backups == []
    assert result.restore is not None and result.restore.ok, result.restore
    assert state(project) == before


@pytest.mark.timeout(180)
def test_a_just_in_time_backup_that_would_wait_for_the_runs_own_lock_fails_the_run(
    project: Project,
) -> None:
    # SQL the plan cannot see (it runs only online) touches scratch after the ALTER of
    # orders: its just-in-time backup would wait for the transaction's own lock.
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    if _online():
        op.execute("UPDATE scratch SET payload = 'run' WHERE id = 1")


def downgrade():
    pass
""",
    )
    before = state(project)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", (result.outcome, result.error)
    assert "cannot back up scratch just in time" in (result.error or ""), result.error
    assert "orders" in (result.error or "")
    assert result.restore is not None and result.restore.ok, result.restore
    assert state(project) == before


# ------------------------------------------------------------------ 2. the safety backup
def test_the_safety_backup_of_a_successful_run_is_taken_and_restorable(
    project: Project, postgres_admin_engine: sa.Engine
) -> None:
    from migration_guard.commands import restore

    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    # migration-guard: allow drop-column because: notes moved to the CRM in #1234
    op.drop_column("customers", "notes")


def downgrade():
    op.add_column("customers", sa.Column("notes", sa.Text, nullable=True))
""",
    )
    before = state(project)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "applied", result.error
    assert result.backup_id is not None
    assert {"customers", "orders", "alembic_version"} <= set(result.backup_tables)
    manifest = json.loads((project.backup_dir / f"{result.backup_id}.manifest.json").read_text())
    assert manifest["type"] == "tables" and manifest["backend"] == "pgdump", manifest
    # The migration "turned out wrong": the notes are needed. The backup has them.
    scratch = f"mg_safety_{uuid.uuid4().hex[:10]}"
    target = sa.engine.make_url(project.url).set(database=scratch)
    try:
        restored = restore(project.config(), result.backup_id, url=target, yes=True)
        assert restored.ok, restored.mismatches
        engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                notes = [
                    tuple(map(str, row))
                    for row in conn.execute(sa.text("SELECT * FROM customers ORDER BY 1"))
                ]
        finally:
            engine.dispose()
        assert notes == before["rows"]["customers"]
    finally:
        with postgres_admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))


# ------------------------------------------------------------------ 3. outside a transaction
def test_a_statement_that_refuses_a_transaction_is_stopped_with_the_fix(
    project: Project,
) -> None:
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    op.create_index("ix_orders_total", "orders", ["total"], postgresql_concurrently=True)


def downgrade():
    pass
""",
    )
    before = state(project)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", (result.outcome, result.error)
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction block" in (result.error or "")
    assert "autocommit_block()" in (result.error or "")
    assert result.restore is not None and result.restore.ok, result.restore
    assert state(project) == before


AUTOCOMMIT_STEP = """
def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    op.execute("UPDATE orders SET note = 'x' WHERE id < 3")
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_total", "orders", ["total"], postgresql_concurrently=True)
    op.execute("UPDATE customers SET email = 'changed' WHERE id = 1")
    if _online():
        raise RuntimeError("the revision fails after its autocommit block")


def downgrade():
    pass
"""


def test_a_failure_after_an_autocommit_block_is_restored_from_the_backup(
    project: Project,
) -> None:
    project.add_revision("r2", "r1", AUTOCOMMIT_STEP)
    before = state(project)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="always")
    assert result.outcome == "restored", (result.outcome, result.error)
    assert "after its autocommit block" in (result.error or "")
    report = result.restore
    assert report is not None and report.ok, report
    assert state(project) == before
    # orders was committed by the autocommit block: it came back from the backup;
    # customers was changed only inside the rolled-back transaction: proven, not reloaded.
    assert report.restored_tables == ["orders"], report
    proven = " ".join(report.proof)
    assert "customers: rolled back by the database, proven" in proven, report.proof
    assert "orders: reloaded" in proven, report.proof


def test_transaction_per_migration_restores_the_committed_revisions_from_the_backup(
    project: Project,
) -> None:
    env_py = project.root / "migrations" / "env.py"
    text = env_py.read_text()
    assert "target_metadata=target_metadata" in text
    env_py.write_text(
        text.replace(
            "target_metadata=target_metadata",
            "target_metadata=target_metadata, transaction_per_migration=True",
        )
    )
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    op.execute("UPDATE orders SET note = 'r2' WHERE id > 0")


def downgrade():
    pass
""",
    )
    project.add_revision(
        "r3",
        "r2",
        """
def upgrade():
    op.execute("UPDATE customers SET email = 'r3' WHERE id = 2")
    if _online():
        raise RuntimeError("r3 fails after r2 was committed")


def downgrade():
    pass
""",
    )
    before = state(project)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="always")
    assert result.outcome == "restored", (result.outcome, result.error)
    assert result.applied == ["r2"], result.applied
    report = result.restore
    assert report is not None and report.ok, report
    assert state(project) == before
    assert report.restored_tables == ["orders"], report


# ------------------------------------------------------------------ 4. protection drift
def test_upgrade_reports_drift_of_the_postgresql_protection(
    project: Project, postgres_admin_engine: sa.Engine
) -> None:
    from migration_guard.commands.protect import protect_install, protect_remove

    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("scratch", sa.Column("flag", sa.Integer, nullable=True))


def downgrade():
    pass
""",
    )
    config = project.config()
    database = sa.engine.make_url(project.url).database
    app = f"mg_app_{uuid.uuid4().hex[:10]}"
    with postgres_admin_engine.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {app} LOGIN"))
    try:
        protect_install(config, url=project.url, app_users=[app], protect=["customers"], yes=True)
        result = upgrade(config, alembic_config=str(project.ini), yes=True)
        assert result.outcome == "applied", result.error
        assert not any("drifted" in note for note in result.notes), result.notes  # intact
        project.execute("ALTER EVENT TRIGGER migration_guard_drop DISABLE")
        project.add_revision(
            "r3",
            "r2",
            """
def upgrade():
    op.add_column("scratch", sa.Column("flag2", sa.Integer, nullable=True))


def downgrade():
    pass
""",
        )
        result = upgrade(config, alembic_config=str(project.ini), yes=True)
        assert result.outcome == "applied", result.error
        assert any("drifted" in note for note in result.notes), result.notes
    finally:
        project.execute("ALTER EVENT TRIGGER migration_guard_drop ENABLE")
        protect_remove(config, url=project.url, app_users=[app], yes=True)
        with postgres_admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {app}"))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "migration_guard_owner_{database}"'))


# ------------------------------------------------------------------ 6. the lock
def test_run_stops_when_its_advisory_lock_connection_is_terminated(project: Project) -> None:
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
    before = state(project)
    run = _cli(project, "--yes")
    try:
        _wait_for(marker, run)
        holder = _scalar(
            project,
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        assert holder is not None, "no backend holds the advisory migration lock"
        assert _scalar(project, f"SELECT pg_terminate_backend({int(holder)})") is True
    finally:
        out, err = run.communicate(timeout=120)
    assert run.returncode != 0, (out, err)
    assert b"was lost mid-run" in out + err, (out, err)
    assert state(project) == before


def test_a_killed_run_is_rolled_back_by_the_server_and_proven_by_the_next_run(
    project: Project,
) -> None:
    import signal

    marker = project.root / "running"
    project.add_revision(
        "r2",
        "r1",
        f"""
def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    op.execute("UPDATE orders SET total = 0 WHERE id < 3")
    if _online():
        open({str(marker)!r}, "w").close()
        time.sleep(120)


def downgrade():
    pass
""",
    )
    before = state(project)
    victim = _cli(project, "--yes")
    try:
        _wait_for(marker, victim)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
    records = list((project.backup_dir / "runs").glob("*.json"))
    assert [json.loads(p.read_text())["status"] for p in records] == ["migrating"]
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "recovered", (result.outcome, result.error)
    assert result.restore is not None and result.restore.ok, result.restore
    assert "orders: rolled back by the database, proven" in " ".join(result.restore.proof)
    assert result.restore.restored_tables == [] and result.restore.dropped_tables == []
    assert state(project) == before
    assert json.loads(records[0].read_text())["status"] == "recovered"


def test_a_committed_change_to_a_referenced_table_is_reloaded_with_its_sequence_and_keys(
    project: Project,
) -> None:
    # customers is referenced by orders' foreign key and owns a sequence: the reload
    # drops and re-adds that key in its transaction and sets the sequence back.
    project.execute("SELECT setval('customers_id_seq', 42)")
    env_py = project.root / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "target_metadata=target_metadata",
            "target_metadata=target_metadata, transaction_per_migration=True",
        )
    )
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("tier", sa.Integer, nullable=True))
    op.create_index("ix_customers_email", "customers", ["email"], unique=True)
    op.execute("INSERT INTO customers (email) VALUES ('new@example.com')")


def downgrade():
    pass
""",
    )
    project.add_revision(
        "r3",
        "r2",
        """
def upgrade():
    if _online():
        raise RuntimeError("r3 fails after r2 was committed")


def downgrade():
    pass
""",
    )
    sequence = "SELECT last_value::text || ' ' || is_called::text FROM customers_id_seq"
    before, value = state(project), _scalar(project, sequence)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="always")
    assert result.outcome == "restored", (result.outcome, result.error)
    report = result.restore
    assert report is not None and report.ok, report
    assert report.restored_tables == ["customers"], report
    assert state(project) == before
    assert _scalar(project, sequence) == value == "42 true"
    foreign_key = (
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
        "AND confrelid = 'customers'::regclass AND conrelid = 'orders'::regclass"
    )
    assert _scalar(project, foreign_key) == 1


# ------------------------------------------------------------------ selected tables, live
def test_selected_tables_go_back_into_the_live_database_and_a_partitioned_one_is_refused(
    project: Project,
) -> None:
    from migration_guard.commands import create_backup, restore
    from migration_guard.errors import MigrationGuardError

    project.execute(
        "CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at)",
        "CREATE TABLE events_2026 PARTITION OF events "
        "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
        "INSERT INTO events VALUES (1, '2026-03-01'), (2, '2026-04-01')",
        "COMMENT ON TABLE orders IS 'the orders'",
        "CREATE INDEX ix_orders_total ON orders (total)",
    )
    config = project.config()
    manifest = create_backup(config, url=project.url, type="tables", tables=["orders", "events"])
    before = state(project)
    project.execute(
        "DELETE FROM orders WHERE id > 3",
        "DROP INDEX ix_orders_total",
        "ALTER TABLE orders ADD COLUMN note text",
        "DELETE FROM events WHERE id = 1",
    )
    result = restore(config, manifest.id, url=project.url, tables=["orders"], yes=True)
    assert result.ok, result.mismatches
    after = state(project)
    assert after["rows"]["orders"] == before["rows"]["orders"]
    assert after["schema"] == before["schema"]  # events lost a row, not its definition
    assert _scalar(project, "SELECT obj_description('orders'::regclass)") == "the orders"
    assert _scalar(project, "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_orders_total'")
    with pytest.raises(MigrationGuardError, match="partitioned"):
        restore(config, manifest.id, url=project.url, tables=["events"], yes=True)
    assert _scalar(project, "SELECT count(*) FROM events") == 1  # nothing was changed


def test_a_protected_table_reloaded_after_an_autocommit_block_is_back_and_reported(
    project: Project, postgres_admin_engine: sa.Engine
) -> None:
    from migration_guard.commands.protect import protect_install, protect_remove

    database = sa.engine.make_url(project.url).database
    app = f"mg_app_{uuid.uuid4().hex[:10]}"
    with postgres_admin_engine.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {app} LOGIN"))
    config = project.config()
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    with op.get_context().autocommit_block():
        op.execute("UPDATE customers SET email = 'changed' WHERE id = 1")
    if _online():
        raise RuntimeError("the revision fails after its autocommit block")


def downgrade():
    pass
""",
    )
    try:
        protect_install(config, url=project.url, app_users=[app], protect=["customers"], yes=True)
        before = state(project)
        result = upgrade(config, alembic_config=str(project.ini), yes=True, backup="always")
        assert result.outcome == "restored", (result.outcome, result.error)
        assert result.restore is not None and result.restore.ok, result.restore
        assert result.restore.restored_tables == ["customers"]
        after = state(project)
        assert after["rows"] == before["rows"]
        # Owner, grants and the guard triggers came back with it; the event trigger's
        # list of protected tables names the old table: the run says protection drifted.
        assert after["schema"] == before["schema"]
        assert any("drifted" in note for note in result.notes), result.notes
    finally:
        protect_remove(config, url=project.url, app_users=[app], yes=True)
        with postgres_admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {app}"))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "migration_guard_owner_{database}"'))

"""Runs that die or lose their lock (issue 11, part C): the run record's states, a
restore-failed run that blocks later runs until ``runs resolve``, and the lock's
heartbeat on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration_guard.alembic.runs import TRANSITIONS, check_transition
from migration_guard.commands.safe_upgrade import upgrade
from migration_guard.dialects import get_dialect_ops
from migration_guard.errors import MigrationGuardError
from tests.db.upgrade_project import (
    Project,
    make_project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
    seed,
)


def _statuses(project: Project) -> dict[str, str]:
    return {
        p.stem: json.loads(p.read_text())["status"]
        for p in (project.backup_dir / "runs").glob("*.json")
    }


def _cli(project: Project, *args: str) -> tuple[int, str]:
    from migration_guard.cli import main

    outcome = CliRunner().invoke(
        main, list(args), env={"MIGRATION_GUARD_CONFIG": str(project.pyproject)}
    )
    return outcome.exit_code, outcome.output


# ------------------------------------------------------------------ the state machine
def test_only_the_transitions_of_the_table_are_allowed() -> None:
    check_transition("", "migrating", "r")
    check_transition("migrating", "restoring", "r")
    check_transition("restoring", "restoring", "r")  # a recovery of a killed restore
    check_transition("restore-failed", "resolved", "r")
    for old, new in [
        ("restore-failed", "restoring"),  # never retried blindly
        ("succeeded", "restoring"),
        ("migrating", "resolved"),
        ("resolved", "migrating"),
        ("", "succeeded"),
    ]:
        with pytest.raises(MigrationGuardError, match="may not move"):
            check_transition(old, new, "r")
    terminal = {state for state, after in TRANSITIONS.items() if not after}
    assert terminal == {"succeeded", "restored", "recovered", "resolved"}


# ------------------------------------------------------------------ restore-failed blocks
def test_a_restore_failed_run_blocks_later_runs_until_resolved(project: Project) -> None:
    # The revision fails after destroying the run's own safety backup: the restore
    # cannot work and the run ends restore-failed.
    project.add_revision(
        "r2",
        "r1",
        f"""
def upgrade():
    if _online():
        # Committed outside the run's transaction (like a DDL on MariaDB): only the
        # backup can undo it.
        import subprocess, sys
        url = context.config.get_main_option("sqlalchemy.url")
        code = (
            "import sys, sqlalchemy as sa\\n"
            "e = sa.create_engine(sys.argv[1], poolclass=sa.pool.NullPool)\\n"
            "with e.begin() as c:\\n"
            "    c.execute(sa.text('UPDATE orders SET total = 7 WHERE id = 1'))\\n"
        )
        subprocess.run([sys.executable, "-c", code, url], check=True, timeout=60)
    op.execute("UPDATE orders SET total = 0 WHERE id < 3")
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    if _online():
        import glob
        for path in glob.glob({str(project.backup_dir / "*")!r}):
            if os.path.isfile(path) and not path.endswith(".jsonl"):
                os.remove(path)
        raise RuntimeError("fail so the guard restores")


def downgrade():
    pass
""",
    )
    first = upgrade(project.config(), alembic_config=str(project.ini), yes=True, backup="always")
    assert first.outcome == "restore-failed", (first.outcome, first.restore)
    assert _statuses(project) == {first.run_id: "restore-failed"}

    # The next run refuses before anything changes, and says how to finish by hand.
    project.add_revision("r2", "r1", "\ndef upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n")
    before = project.snapshot()
    code, output = _cli(project, "upgrade", "-c", str(project.ini), "--yes")
    assert code == 1, output
    assert first.run_id in output
    assert "migration-guard restore" in output
    assert f"migration-guard runs resolve {first.run_id}" in output
    assert project.snapshot() == before
    assert _statuses(project)[first.run_id] == "restore-failed"  # not retried

    code, output = _cli(project, "runs", "list", "--status", "restore-failed", "--format", "json")
    assert code == 0, output
    assert [run["run_id"] for run in json.loads(output)] == [first.run_id]

    code, output = _cli(project, "runs", "resolve", first.run_id, "--reason", "repaired by hand")
    assert code == 0, output
    record = json.loads((project.backup_dir / "runs" / f"{first.run_id}.json").read_text())
    assert record["status"] == "resolved"
    assert record["resolution"] == "repaired by hand"

    # Resolved: runs start again.
    later = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert later.outcome == "applied", (later.outcome, later.error)


def test_runs_resolve_refuses_what_is_not_restore_failed(project: Project) -> None:
    project.add_revision("r2", "r1", "\ndef upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n")
    done = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert done.outcome == "applied"
    code, output = _cli(project, "runs", "resolve", done.run_id, "--reason", "x")
    assert code == 2, output
    assert "only a restore-failed run" in output
    code, output = _cli(project, "runs", "resolve", "no-such-run", "--reason", "x")
    assert code == 2, output
    assert "runs list" in output
    code, output = _cli(project, "runs", "list", "--status", "bogus")
    assert code == 2, output
    assert "restore-failed" in output


# ------------------------------------------------------------------ the lock's heartbeat
def test_sqlite_run_stops_when_its_lock_file_is_swapped(tmp_path: Path, sqlite_url: str) -> None:
    project = make_project(tmp_path / "proj", sqlite_url)
    seed(project)
    lock_file = Path(sa.engine.make_url(sqlite_url).database or "")
    lock_file = lock_file.with_name(lock_file.name + ".migration-guard.lock")
    project.add_revision(
        "r2",
        "r1",
        f"""
def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    if _online():
        # Someone removes the lock file: another run could lock a new one now.
        os.remove({str(lock_file)!r})
        open({str(lock_file)!r}, "w").close()
    op.execute("UPDATE orders SET total = 0 WHERE id < 3")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", (result.outcome, result.error)
    assert "lock" in (result.error or "") and "lost" in (result.error or "")
    assert project.snapshot() == before


def _held_lock_checks(url: str, end_connection: str) -> None:
    parsed = sa.engine.make_url(url)
    ops = get_dialect_ops(parsed.get_backend_name())
    lock = ops.acquire_lock(parsed, "migration-guard-test", 5)
    try:
        assert ops.lock_is_held(lock)
        own = lock.connection or getattr(lock, "own_connection", None)
        assert own is not None
        session_id = own.execute(sa.text(end_connection.split("|")[0])).scalar()
        own.commit()
        admin = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(end_connection.split("|")[1].format(id=int(session_id))))
                conn.commit()
        finally:
            admin.dispose()
        assert not ops.lock_is_held(lock)
    finally:
        lock.release()
    assert not ops.lock_is_held(lock)


@pytest.mark.mysql
def test_mariadb_lock_is_not_held_after_kill(mysql_url: str) -> None:
    _held_lock_checks(mysql_url, "SELECT CONNECTION_ID()|KILL {id}")


@pytest.mark.postgresql
def test_postgresql_lock_is_not_held_after_terminate(postgres_url: str) -> None:
    _held_lock_checks(postgres_url, "SELECT pg_backend_pid()|SELECT pg_terminate_backend({id})")


# ------------------------------------------------------------------ another host's run
def _killed_mid_migration(project: Project) -> Path:
    """A real run SIGKILLed while migrating; returns its run record."""
    import os
    import signal
    import subprocess
    import sys
    import time

    marker = project.root / "running"
    project.add_revision(
        "r2",
        "r1",
        f"""
def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    if _online():
        open({str(marker)!r}, "w").close()
        time.sleep(120)


def downgrade():
    pass
""",
    )
    env = dict(os.environ, MIGRATION_GUARD_CONFIG=str(project.pyproject))
    victim = subprocess.Popen(
        [sys.executable, "-m", "migration_guard", "upgrade", "-c", str(project.ini), "--yes"],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert victim.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    (record,) = (project.backup_dir / "runs").glob("*.json")
    return record


def test_a_fresh_heartbeat_from_another_host_is_not_recovered_under_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    import time

    project = make_project(tmp_path / "proj", sqlite_url)
    seed(project)
    path = _killed_mid_migration(project)
    record = json.loads(path.read_text())
    assert record["status"] == "migrating" and record["lock"] and record["heartbeat_at"]
    # The same record, as written by a run on another host that lost its lock 5 s ago.
    record.update(host="other-host.example", heartbeat_at=time.time() - 5)
    path.write_text(json.dumps(record))
    with pytest.raises(MigrationGuardError, match=r"other-host\.example") as refused:
        upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert "may still be running" in str(refused.value)
    assert json.loads(path.read_text())["status"] == "migrating"
    # Its heartbeat is old: the run is dead, and any host recovers it.
    record.update(heartbeat_at=time.time() - 3600)
    path.write_text(json.dumps(record))
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "recovered", (result.outcome, result.error)
    assert "half_done" in (result.restore.dropped_tables if result.restore else [])
    assert json.loads(path.read_text())["status"] == "recovered"

"""``migration-guard upgrade`` against real SQLite files and a real MariaDB server.

Every test builds an Alembic project whose env.py is the unchanged ``alembic init``
template, so the guard has to find the database through Alembic's runtime.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from migration_guard.alembic.runner import upgrade_settings
from migration_guard.commands.safe_upgrade import downgrade, upgrade
from migration_guard.errors import BlockedMigration, ConfigError, LockTimeout, UsageError
from tests.db.upgrade_project import Project
from tests.db.upgrade_project import upgrade_process as _cli
from tests.db.upgrade_project import wait_for as _wait_for

# Nine statements over three revisions, with one approved destructive step (so a safety
# backup is taken), one unprotected drop, DML, a created table and an index.
CHAIN = {
    "r2": """
def upgrade():
    _tick()
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    _tick()
    op.execute("UPDATE customers SET points = 7 WHERE id > 1")
    _tick()
    op.create_table("coupons", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("code", sa.String(20)))
    _tick()
    op.execute("INSERT INTO coupons (id, code) VALUES (1, 'WELCOME')")
    _tick()


def downgrade():
    op.drop_table("coupons")
    op.drop_column("customers", "points")
""",
    "r3": """
def upgrade():
    # migration-guard: allow drop-column because: notes were moved to the CRM in #1234
    op.drop_column("customers", "notes")
    _tick()
    op.execute("DELETE FROM orders WHERE total < 50")
    _tick()
    op.drop_table("scratch")
    _tick()


def downgrade():
    op.create_table("scratch", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("payload", sa.String(50)))
    op.add_column("customers", sa.Column("notes", sa.Text, nullable=True))
""",
    "r4": """
def upgrade():
    op.create_index("ix_orders_total", "orders", ["total"])
    _tick()
    op.execute("UPDATE orders SET total = total + 1 WHERE id = 1")
    _tick()


def downgrade():
    op.drop_index("ix_orders_total", table_name="orders")
""",
}
CHAIN_STATEMENTS = 9


def _chain(project: Project) -> None:
    down = "r1"
    for revision, body in CHAIN.items():
        project.add_revision(revision, down, body)
        down = revision


@pytest.fixture(autouse=True)
def _no_backup_dir_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MIGRATION_GUARD_BACKUP_DIR",
        "MIGRATION_GUARD_CONFIG",
        "MIGRATION_GUARD_KEY",
        "MIGRATION_GUARD_KEY_FILE",
        "MIGRATION_GUARD_PASSPHRASE",
        "MIGRATION_GUARD_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def _audit(project: Project) -> list[dict[str, object]]:
    path = project.backup_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- happy path
def test_approved_destructive_chain_is_backed_up_and_applied(project: Project) -> None:
    _chain(project)
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)

    assert result.outcome == "applied", result.error
    assert result.applied == ["r2", "r3", "r4"]
    assert result.to_heads == ["r4"]
    assert result.backup_id is not None
    # Scoped: the touched, the protected and the version table, nothing else.
    assert set(result.backup_tables) == {"customers", "orders", "scratch", "alembic_version"}
    approvals = {(a["rule"], a["table"]) for a in result.approvals}
    assert ("drop-column", "customers") in approvals
    manifest = json.loads((project.backup_dir / f"{result.backup_id}.manifest.json").read_text())
    assert manifest["labels"]["revisions"] == ["r2", "r3", "r4"]
    assert manifest["labels"]["run_id"] == result.run_id
    after = project.snapshot()
    assert after["heads"] == ["r4"]
    assert "scratch" not in after["tables"] and "coupons" in after["tables"]
    audit = _audit(project)[-1]
    assert audit["outcome"] == "applied" and audit["backup_id"] == result.backup_id
    assert audit["from"] == ["r1"] and audit["to"] == ["r4"]

    again = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert again.outcome == "up-to-date"


def test_unapproved_destructive_step_is_refused_before_anything_changes(
    project: Project,
) -> None:
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.create_table("extra", sa.Column("id", sa.Integer, primary_key=True))
    op.drop_column("customers", "notes")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    digest = project.file_digest()
    with pytest.raises(BlockedMigration) as caught:
        upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    message = str(caught.value)
    assert "drop-column" in message and "customers" in message and "r2.py:" in message
    assert [f.rule for f in caught.value.findings] == ["drop-column"]
    assert project.snapshot() == before
    assert project.file_digest() == digest
    assert not list(project.backup_dir.glob("*.mgb"))
    assert _audit(project)[-1]["outcome"] == "refused"


def test_allow_on_the_command_line_approves_with_a_reason(project: Project) -> None:
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.drop_column("customers", "notes")


def downgrade():
    pass
""",
    )
    with pytest.raises(UsageError):
        upgrade(project.config(), alembic_config=str(project.ini), allow=["drop-column:customers"])
    with pytest.raises(UsageError, match="--yes"):
        # Approved but not confirmed, and no terminal to ask on.
        upgrade(
            project.config(),
            alembic_config=str(project.ini),
            allow=["drop-column:customers"],
            reason="archived",
        )
    typed: list[str] = []
    result = upgrade(
        project.config(),
        alembic_config=str(project.ini),
        allow=["drop-column:customers"],
        reason="archived in #77",
        confirm=lambda name: typed.append(name) or name == "customers",
    )
    assert result.outcome == "applied", result.error
    assert typed == ["customers"]
    assert result.approvals[0]["reason"] == "--allow: archived in #77"


# --------------------------------------------------------------------------- dry run
def test_dry_run_changes_nothing(project: Project) -> None:
    _chain(project)
    before = project.snapshot()
    digest = project.file_digest()
    result = upgrade(project.config(), alembic_config=str(project.ini), dry_run=True)
    assert result.outcome == "dry-run"
    assert [step.revision for step in result.plan] == ["r2", "r3", "r4"]
    assert any(
        "DROP COLUMN NOTES" in sql.upper().replace('"', "").replace("`", "")
        for step in result.plan
        for sql in step.sql
    )
    assert result.backup_planned and result.estimated_backup_bytes
    assert {f.rule for f in result.findings} >= {"drop-column", "drop-table"}
    assert project.snapshot() == before
    assert project.file_digest() == digest
    assert not project.backup_dir.exists() or not list(project.backup_dir.glob("*.mgb"))


# --------------------------------------------------------------------------- failures
def test_failure_at_every_statement_boundary_is_restored_and_proven(project: Project) -> None:
    _chain(project)
    before = project.snapshot()
    for fail_at in range(CHAIN_STATEMENTS):
        result = upgrade(
            project.config(),
            alembic_config=str(project.ini),
            x_args=[f"fail_at={fail_at}"],
            yes=True,
        )
        assert result.outcome == "restored", (fail_at, result.error, result.restore)
        assert f"injected failure after statement {fail_at}" in (result.error or "")
        assert result.restore is not None and result.restore.ok, result.restore
        assert result.restore.proof
        assert project.snapshot() == before, f"state differs after a failure at {fail_at}"
        record = json.loads((project.backup_dir / "runs" / f"{result.run_id}.json").read_text())
        assert record["status"] == "restored"
    final = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert final.outcome == "applied"
    assert project.snapshot()["heads"] == ["r4"]


def test_runtime_built_delete_on_protected_table_is_blocked_and_restored(
    project: Project,
) -> None:
    # The DELETE only exists online (the table name comes from a query), so the static
    # check cannot see it: only the interception can.
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'customers'"))]
    for name in names:
        op.execute("DELETE FROM " + name)


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored"
    assert result.blocked is not None
    assert result.blocked["rule"] == "delete-without-where"
    assert result.blocked["table"] == "customers"
    assert result.blocked["file"].endswith("r2.py")
    assert "blocked before it reached the server" in (result.error or "")
    # No plan finding, so no safety backup: customers was backed up just in time.
    assert result.backup_id is None
    assert [jit["table"] for jit in result.jit_backups] == ["customers"]
    assert result.restore is not None and result.restore.ok, result.restore
    assert project.snapshot() == before


def test_runtime_dynamic_sql_is_blocked_fail_closed(project: Project) -> None:
    # A procedure call built at run time: its target cannot be known, so the guard
    # refuses it unless approved, exactly as the static check fails closed.
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.add_column("customers", sa.Column("points", sa.Integer, nullable=True))
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT 'purge_all'"))]
    for name in names:
        op.execute("CALL " + name + "()")


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored"
    assert result.blocked is not None
    assert result.blocked["rule"] == "unanalyzable"
    assert "an unknown target" in (result.error or "")
    assert result.restore is not None and result.restore.ok, result.restore
    assert project.snapshot() == before


def test_downgrade_is_guarded_too(project: Project) -> None:
    _chain(project)
    assert upgrade(project.config(), alembic_config=str(project.ini), yes=True).ok
    with pytest.raises(BlockedMigration):
        # r3's downgrade is fine, r2's drops the points column of a protected table.
        downgrade(project.config(), "r1", alembic_config=str(project.ini), yes=True)
    result = downgrade(
        project.config(),
        "r1",
        alembic_config=str(project.ini),
        yes=True,
        allow=["drop-column:customers"],
        reason="points were a failed experiment",
    )
    assert result.outcome == "applied", result.error
    assert project.snapshot()["heads"] == ["r1"]


# --------------------------------------------------------------------------- concurrency
def test_concurrent_run_waits_then_fails_naming_the_holder(project: Project) -> None:
    marker = project.root / "running"
    project.add_revision(
        "r2",
        "r1",
        f"""
def upgrade():
    op.add_column("orders", sa.Column("note", sa.String(20), nullable=True))
    if _online():
        open({str(marker)!r}, "w").close()
        time.sleep(4)


def downgrade():
    pass
""",
    )
    first = _cli(project, "--yes")
    try:
        _wait_for(marker, first)
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught:
            upgrade(project.config(), alembic_config=str(project.ini), yes=True, lock_timeout=1)
        assert time.monotonic() - started >= 0.9
        message = str(caught.value)
        assert "another migration run holds the migration lock" in message
        if project.url.startswith("sqlite"):
            assert f"pid {first.pid}" in message
        else:
            assert "connection" in message and "@" in message
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, (out, err)
    assert project.snapshot()["heads"] == ["r2"]
    again = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert again.outcome == "up-to-date"


def test_killed_run_is_detected_and_restored_by_the_next_run(project: Project) -> None:
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
    before = project.snapshot()
    victim = _cli(project, "--yes", "--backup", "always")
    try:
        _wait_for(marker, victim)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
    assert project.snapshot() != before  # the half-applied state a plain Alembic leaves
    records = list((project.backup_dir / "runs").glob("*.json"))
    assert [json.loads(p.read_text())["status"] for p in records] == ["migrating"]

    with pytest.raises(UsageError, match="--yes"):
        upgrade(project.config(), alembic_config=str(project.ini))
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "recovered"
    assert result.restore is not None and result.restore.ok, result.restore
    assert "half_done" in result.restore.dropped_tables
    assert project.snapshot() == before
    assert json.loads(records[0].read_text())["status"] == "recovered"


# --------------------------------------------------------------------------- CLI
def test_cli_allow_without_reason_is_a_usage_error(project: Project) -> None:
    from migration_guard.cli import main

    outcome = CliRunner().invoke(
        main, ["upgrade", "-c", str(project.ini), "--allow", "drop-column:customers"]
    )
    assert outcome.exit_code == 2
    assert "--reason" in outcome.output


def test_cli_refusal_and_json_output(project: Project) -> None:
    from migration_guard.cli import main

    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.drop_table("orders")


def downgrade():
    pass
""",
    )
    runner = CliRunner()
    env = {"MIGRATION_GUARD_CONFIG": str(project.pyproject)}
    refused = runner.invoke(main, ["upgrade", "--format", "json", "--yes"], env=env)
    assert refused.exit_code == 1
    document = json.loads(refused.output)
    assert document["outcome"] == "refused"
    assert document["findings"][0]["rule"] == "drop-table"
    no_tty = runner.invoke(
        main,
        ["upgrade", "--allow", "drop-table:orders", "--reason", "replaced by invoices"],
        env=env,
    )
    assert no_tty.exit_code == 2
    assert "--yes" in no_tty.output


def test_upgrade_settings_are_validated(tmp_path: Path) -> None:
    from migration_guard.config import Config

    config = Config(sections={"upgrade": {"lock_timeout": 5, "backup_scope": "full"}})
    settings = upgrade_settings(config)
    assert settings.lock_timeout == 5.0 and settings.backup_scope == "full"
    with pytest.raises(ConfigError):
        upgrade_settings(Config(sections={"upgrade": {"lock_timout": 5}}))
    with pytest.raises(ConfigError):
        upgrade_settings(Config(sections={"upgrade": {"backup_scope": "some"}}))


# --------------------------------------------------------------------------- env.py guard
GUARDED_ENV_LINES = (
    "        with context.begin_transaction():\n            context.run_migrations()\n",
    "        from migration_guard.alembic.env import guard\n\n"
    "        with guard(context, connection):\n"
    "            with context.begin_transaction():\n"
    "                context.run_migrations()\n",
)


def _guard_env(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    env_py = project.root / "migrations" / "env.py"
    text = env_py.read_text()
    old, new = GUARDED_ENV_LINES
    assert text.count(old) == 1
    env_py.write_text(text.replace(old, new))
    monkeypatch.setenv("MIGRATION_GUARD_CONFIG", str(project.pyproject))


def test_env_py_guard_restores_a_failing_plain_alembic_upgrade(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command
    from alembic.config import Config

    _chain(project)
    _guard_env(project, monkeypatch)
    before = project.snapshot()
    cfg = Config(str(project.ini), cmd_opts=None)
    import argparse

    cfg.cmd_opts = argparse.Namespace(x=["fail_at=6"])
    with pytest.raises(RuntimeError, match="injected failure after statement 6"):
        command.upgrade(cfg, "head")
    assert project.snapshot() == before
    assert _audit(project)[-1]["outcome"] == "restored"

    command.upgrade(Config(str(project.ini)), "head")
    assert project.snapshot()["heads"] == ["r4"]
    assert _audit(project)[-1]["outcome"] == "applied"


def test_env_py_guard_reports_the_run_to_the_registered_event_sinks(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command
    from alembic.config import Config

    from migration_guard.events import SINK_FACTORIES, Event

    heard: list[Event] = []
    monkeypatch.setitem(SINK_FACTORIES._loaded, "test", lambda _config: heard.append)
    _chain(project)
    _guard_env(project, monkeypatch)
    command.upgrade(Config(str(project.ini)), "head")
    upgrades = [event for event in heard if event.subject == "upgrade"]
    assert [event.data["outcome"] for event in upgrades] == ["applied"]
    assert upgrades[0].data["run_id"] == _audit(project)[-1]["run_id"]


def test_env_py_guard_refuses_unapproved_destructive_steps(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command
    from alembic.config import Config

    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    op.drop_table("orders")


def downgrade():
    pass
""",
    )
    _guard_env(project, monkeypatch)
    before = project.snapshot()
    with pytest.raises(BlockedMigration):
        command.upgrade(Config(str(project.ini)), "head")
    assert project.snapshot() == before


def test_migration_guard_upgrade_with_a_guarded_env_py_guards_once(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _chain(project)
    _guard_env(project, monkeypatch)
    before = project.snapshot()
    failed = upgrade(
        project.config(),
        alembic_config=str(project.ini),
        x_args=["fail_at=2"],
        yes=True,
        lock_timeout=2,
    )
    assert failed.outcome == "restored", failed.error
    assert project.snapshot() == before
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True, lock_timeout=2)
    assert result.outcome == "applied", result.error
    # One safety backup per run (the failed run's restore adds its rescue backup).
    purposes = sorted(
        json.loads(path.read_text())["labels"]["purpose"]
        for path in project.backup_dir.glob("*.manifest.json")
    )
    assert purposes == ["upgrade-rescue", "upgrade-safety", "upgrade-safety"], purposes


COOKBOOK_ENV = """
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config


def run_migrations_online():
    connectable = config.attributes.get("connection", None)
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        ).connect()
    context.configure(connection=connectable)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
"""


def test_cooperating_env_py_gets_the_callers_connection(project: Project) -> None:
    """Alembic's cookbook pattern: the guard protects the database of the connection
    it is handed, not the one alembic.ini names."""
    import sqlalchemy as sa

    (project.root / "migrations" / "env.py").write_text(COOKBOOK_ENV, encoding="utf-8")
    ini = project.ini.read_text(encoding="utf-8")
    project.ini.write_text(
        ini.replace(project.url.replace("%", "%%"), "sqlite:////nonexistent/dir/never.db"),
        encoding="utf-8",
    )
    assert "never.db" in project.ini.read_text(encoding="utf-8")
    project.add_revision(
        "r2",
        "r1",
        """
def upgrade():
    # migration-guard: allow drop-column because: notes moved to the CRM (#1234)
    op.drop_column("customers", "notes")


def downgrade():
    pass
""",
    )
    engine = sa.create_engine(project.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            result = upgrade(
                project.config(),
                alembic_config=str(project.ini),
                yes=True,
                connection=connection,
            )
            connection.commit()
    finally:
        engine.dispose()
    assert result.outcome == "applied", result.error
    assert result.backup_id is not None  # the approved finding made it take a backup
    assert project.snapshot()["heads"] == ["r2"]


def test_upgrade_warns_when_the_installed_protection_has_drifted(project: Project) -> None:
    import sqlalchemy as sa

    from migration_guard.commands.protect import protect_install
    from migration_guard.dialects import get_dialect_ops

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
    config = project.config()
    result = upgrade(config, alembic_config=str(project.ini), yes=True, dry_run=True)
    assert not any("drifted" in note for note in result.notes)  # nothing installed yet
    protect_install(config, url=project.url, protect=["customers"], yes=True)
    url = sa.engine.make_url(project.url)
    ops = get_dialect_ops(url.get_backend_name())
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TRIGGER {ops.quote_identifier('mg_guard_customers_bd')}"))
    finally:
        engine.dispose()
    result = upgrade(config, alembic_config=str(project.ini), yes=True)
    assert result.outcome == "applied", result.error
    assert any("drifted" in note for note in result.notes)

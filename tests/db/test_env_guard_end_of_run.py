"""The env.py guard recovers a run that fails its end-of-run check at once (issue 11).

``migration-guard upgrade`` checks the run once more after the last revision (the
foreign keys after a SQLite batch rebuild, a block a revision swallowed) and restores
the state from before the run when that check fails. A plain ``alembic upgrade``
through the env.py guard must do the same in the same command, not leave the
database changed with a ``migrating`` run record for the next run to restore.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.db.test_restore_scope import _cascading_project
from tests.db.test_upgrade import _audit, _guard_env
from tests.db.test_upgrade_attacks import BATCH_REBUILD, CUSTOMERS_ROWS, ORDERS_ROWS
from tests.db.upgrade_project import (
    Project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
)
from tests.db.upgrade_project import scalar as _scalar


def _records(project: Project) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((project.backup_dir / "runs").glob("*.json"))]


def test_env_py_guard_restores_a_run_that_fails_the_check_after_a_rebuild(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from alembic import command
    from alembic.config import Config

    # With the foreign-key actions off for the rebuild, deleting a parent row leaves
    # its children dangling: the check after the last revision fails the run.
    project = _cascading_project(tmp_path / "proj", sqlite_url, protected=("customers",))
    project.add_revision(
        "r2",
        "r1",
        BATCH_REBUILD.replace(
            "\n\ndef downgrade",
            '\n    op.execute("DELETE FROM customers WHERE id = 3")\n\n\ndef downgrade',
            1,
        ),
    )
    _guard_env(project, monkeypatch)
    before = project.snapshot()
    with pytest.raises(Exception, match="break a foreign key"):
        command.upgrade(Config(str(project.ini)), "head")
    # Restored by this very command, not left for the next run.
    assert project.snapshot() == before, "the failed run's changes are still in the database"
    assert _scalar(project, "SELECT COUNT(*) FROM customers") == CUSTOMERS_ROWS
    assert _scalar(project, "SELECT COUNT(*) FROM orders") == ORDERS_ROWS
    statuses = [record["status"] for record in _records(project)]
    assert statuses == ["restored"], statuses
    assert _audit(project)[-1]["outcome"] == "restored"
    assert "break a foreign key" in capsys.readouterr().err

    # The next run has nothing to recover and reports the same refusal again.
    with pytest.raises(Exception, match="break a foreign key"):
        command.upgrade(Config(str(project.ini)), "head")
    assert project.snapshot() == before
    assert [record["status"] for record in _records(project)] == ["restored", "restored"]


def test_env_py_guard_recovers_a_killed_run_and_says_so(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from alembic import command
    from alembic.config import Config

    from migration_guard.errors import MigrationGuardError
    from tests.db.test_runs import _killed_mid_migration
    from tests.db.upgrade_project import make_project, seed

    project = make_project(tmp_path / "proj", sqlite_url)
    seed(project)
    before = project.snapshot()
    path = _killed_mid_migration(project)  # through `migration-guard upgrade`
    assert "half_done" in project.snapshot()["tables"]
    _guard_env(project, monkeypatch)
    # A plain `alembic upgrade` finds the dead run, restores it and stops, telling why
    # (not a bare internal exception): the user runs the upgrade again.
    with pytest.raises(MigrationGuardError, match="interrupted") as stopped:
        command.upgrade(Config(str(project.ini)), "head")
    assert "again" in str(stopped.value)
    assert project.snapshot() == before
    assert json.loads(path.read_text())["status"] == "recovered"
    assert "half_done" in capsys.readouterr().err  # the report: what was dropped
    assert _audit(project)[-1]["outcome"] == "recovered"

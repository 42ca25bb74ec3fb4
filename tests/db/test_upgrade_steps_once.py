"""A guarded run asks Alembic for the steps of the upgrade once.

The plan needs the steps before anything runs; Alembic asks for them again when it
runs them, from the heads it reads under the guard's lock, which are the ones the plan
started from. The plan's steps are handed back instead of walking the revision map a
second time, and the run applies the same revisions as plain Alembic would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory

from migration_guard.commands.safe_upgrade import upgrade
from tests.db.upgrade_project import (
    make_project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
)


def test_the_upgrade_steps_are_computed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "project", f"sqlite:///{tmp_path / 'app.db'}")
    for revision, down, step in (
        ("r2", "r1", "op.add_column('orders', sa.Column('note', sa.Text))"),
        ("r3", "r2", "op.create_table('t3', sa.Column('id', sa.Integer))"),
    ):
        project.add_revision(
            revision, down, f"def upgrade():\n    {step}\n\n\ndef downgrade():\n    pass\n"
        )
    walks: list[Any] = []
    real = ScriptDirectory._upgrade_revs

    def counting(self: ScriptDirectory, destination: str, current_rev: str) -> Any:
        walks.append(current_rev)
        return real(self, destination, current_rev)

    monkeypatch.setattr(ScriptDirectory, "_upgrade_revs", counting)

    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)

    assert result.outcome == "applied", result.error
    assert result.applied == ["r1", "r2", "r3"]
    assert len(walks) == 1

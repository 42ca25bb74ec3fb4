"""Issue 16 through ``upgrade`` on a real MariaDB: the idempotent-migration patterns
(dynamic SQL, a procedure called once) are judged by the statements they run, in the
plan and by the interceptor alike, so approving the real finding lets them run and
not approving it refuses them before anything changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration_guard.commands.safe_upgrade import upgrade
from migration_guard.errors import BlockedMigration
from tests.db.upgrade_project import (
    Project,
    make_project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
    seed,
)

pytestmark = pytest.mark.mysql

PREPARED_DROP = """
def upgrade():
    {approval}op.execute(
        "SET @s = (SELECT IF((SELECT COUNT(*) FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = 'customers'"
        " AND column_name = 'notes') > 0,"
        " 'ALTER TABLE customers DROP COLUMN notes', 'SELECT 1'))"
    )
    op.execute("PREPARE dropIfExists FROM @s")
    op.execute("EXECUTE dropIfExists")
    op.execute("DEALLOCATE PREPARE dropIfExists")


def downgrade():
    pass
"""

CALLED_PROCEDURE = '''
def upgrade():
    op.execute(
        """CREATE PROCEDURE drop_notes()
BEGIN
  IF (SELECT COUNT(*) FROM information_schema.columns
      WHERE table_schema = DATABASE() AND table_name = 'customers'
      AND column_name = 'notes') > 0 THEN
    {approval}ALTER TABLE customers DROP COLUMN notes;
  END IF;
END"""
    )
    op.execute("CALL drop_notes()")
    op.execute("DROP PROCEDURE drop_notes")


def downgrade():
    pass
'''

APPROVAL = {
    PREPARED_DROP: "# migration-guard: allow drop-column because: notes archived in #16\n    ",
    CALLED_PROCEDURE: "-- migration-guard: allow drop-column because: notes archived in #16\n    ",
}


@pytest.fixture
def project(tmp_path: Path, mysql_url: str) -> Project:
    made = make_project(tmp_path / "proj", mysql_url)
    seed(made)
    return made


def _columns(project: Project) -> list[str]:
    engine = sa.create_engine(project.url, poolclass=sa.pool.NullPool)
    try:
        return [c["name"] for c in sa.inspect(engine).get_columns("customers")]
    finally:
        engine.dispose()


def _guarded(project: Project) -> tuple[Any, BlockedMigration | None]:
    try:
        return upgrade(project.config(), alembic_config=str(project.ini), yes=True), None
    except BlockedMigration as exc:
        return None, exc


@pytest.mark.parametrize("revision", [PREPARED_DROP, CALLED_PROCEDURE], ids=["prepare", "call"])
def test_unapproved_drop_inside_is_refused_with_its_real_rule(
    project: Project, revision: str
) -> None:
    project.add_revision("r2", "r1", revision.format(approval=""))
    result, refused = _guarded(project)
    assert refused is not None, result
    assert "drop-column" in str(refused)
    assert "notes" in _columns(project)


@pytest.mark.parametrize("revision", [PREPARED_DROP, CALLED_PROCEDURE], ids=["prepare", "call"])
def test_approved_drop_inside_runs_after_a_backup(project: Project, revision: str) -> None:
    project.add_revision("r2", "r1", revision.format(approval=APPROVAL[revision]))
    result, refused = _guarded(project)
    assert refused is None, refused
    assert result.outcome == "applied", result.error
    assert result.backup_id is not None
    assert "notes" not in _columns(project)

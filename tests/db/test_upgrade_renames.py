"""A protected table renamed during a run stays protected under its new name (issue 11).

The plan approves renaming the protected ``orders`` to ``purchases``. A statement the
static check cannot see (it only runs online) then drops, empties or renames
``purchases``: it touches the protected rows and must be blocked like the same
statement on ``orders``. A failed run that renamed a table proves the restore on the
rows the renamed table held, so rows the application wrote under the new name are
kept, not silently dropped with it. Real SQLite files and a real MariaDB server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_guard.commands.safe_upgrade import upgrade
from tests.db.test_upgrade_attacks import APP_WRITER, ORDERS_ROWS, _rows
from tests.db.upgrade_project import (
    Project,
    make_project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
    seed,
)

#: The approved rename of the protected ``orders``.
RENAMES = {
    "op.rename_table": 'op.rename_table("orders", "purchases")',
    "ALTER TABLE RENAME": 'op.execute("ALTER TABLE orders RENAME TO purchases")',
}
#: What a later revision runs on the new name, unseen by the static check.
LATER = {
    "drop": "DROP TABLE purchases",
    "delete": "DELETE FROM purchases",
    "rename again": "ALTER TABLE purchases RENAME TO old_purchases",
}
#: MariaDB's own spellings.
MYSQL_RENAMES = {**RENAMES, "RENAME TABLE": 'op.execute("RENAME TABLE orders TO purchases")'}
MYSQL_LATER = {**LATER, "truncate": "TRUNCATE TABLE purchases"}


def _rename_then(project: Project, rename: str, later: str) -> None:
    project.add_revision(
        "r2",
        "r1",
        f"""
def upgrade():
    # migration-guard: allow rename-table because: orders are called purchases now (#7)
    {rename}


def downgrade():
    pass
""",
    )
    project.add_revision(
        "r3",
        "r2",
        f"""
def upgrade():
    op.add_column("scratch", sa.Column("flag", sa.Integer, nullable=True))
    if _online():  # computed at run time: the static check never sees it
        op.execute({later!r})


def downgrade():
    pass
""",
    )
    before = project.snapshot()
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", (
        f"{later} ran on the renamed protected orders: outcome {result.outcome}"
    )
    assert result.blocked is not None, result.error
    assert "purchases" in str(result.blocked.get("table")), result.blocked
    assert result.restore is not None and result.restore.ok, result.restore
    assert project.snapshot() == before


@pytest.mark.parametrize("later", sorted(LATER))
@pytest.mark.parametrize("rename", sorted(RENAMES))
def test_a_renamed_protected_table_stays_protected_for_the_rest_of_the_run(
    project: Project, rename: str, later: str
) -> None:
    _rename_then(project, RENAMES[rename], LATER[later])


@pytest.mark.mysql
@pytest.mark.parametrize(
    ("rename", "later"),
    # The combinations the portable test above does not run already.
    [
        (rename, later)
        for rename in sorted(MYSQL_RENAMES)
        for later in sorted(MYSQL_LATER)
        if rename not in RENAMES or later not in LATER
    ],
)
def test_mariadb_spellings_of_renames_keep_the_protection(
    tmp_path: Path, mysql_url: str, rename: str, later: str
) -> None:
    project = make_project(tmp_path / "proj", mysql_url)
    seed(project)
    _rename_then(project, MYSQL_RENAMES[rename], MYSQL_LATER[later])


def test_the_restore_proof_follows_a_rename(project: Project) -> None:
    # orders is renamed (approved), the application writes a row under the new name,
    # then the revision fails. The restore brings orders back from the safety backup and
    # must account for the application's row, which sat in purchases, not drop it unsaid.
    app_row = "INSERT INTO purchases (id, customer_id, total) VALUES (6, 1, 999)"
    project.add_revision(
        "r2",
        "r1",
        APP_WRITER
        + f"""

def upgrade():
    # migration-guard: allow rename-table because: orders are called purchases now (#7)
    op.rename_table("orders", "purchases")
    if _online():
        _application_writes({app_row!r})
        raise RuntimeError("the revision fails after the application wrote")


def downgrade():
    pass
""",
    )
    result = upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    assert result.outcome == "restored", result.error
    assert "the revision fails after the application wrote" in (result.error or "")
    assert result.restore is not None and result.restore.ok, result.restore
    tables = {entry["table"]: entry for entry in result.restore.tables}
    assert tables["orders"]["status"] == "kept", tables
    assert tables["purchases"]["status"] == "dropped", tables
    assert _rows(project, "SELECT id, customer_id, total FROM orders WHERE id = 6") == [
        (6, 1, 999)
    ], "the application's row written under the new name was lost"
    assert len(_rows(project, "SELECT id FROM orders")) == ORDERS_ROWS + 1
    assert _rows(project, "SELECT version_num FROM alembic_version") == [("r1",)]

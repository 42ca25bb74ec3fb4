"""Issue 11 (part C) on MariaDB, whose databases are its schemas: qualified protected
patterns match unqualified SQL in the connection's default database, and only there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration_guard.commands.safe_upgrade import upgrade
from migration_guard.errors import BlockedMigration
from tests.conftest import unique_name
from tests.db.upgrade_project import (
    Project,
    make_project,
    no_guard_env,  # noqa: F401  (an autouse fixture)
    seed,
)

pytestmark = pytest.mark.mysql


@pytest.fixture
def other_database(mysql_admin_engine: Any) -> Iterator[str]:
    """A second database on the server with a table ``orders`` of 4 rows."""
    name = unique_name()
    with mysql_admin_engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
        conn.execute(sa.text(f"CREATE TABLE `{name}`.orders (id INT PRIMARY KEY, total INT)"))
        conn.execute(sa.text(f"INSERT INTO `{name}`.orders VALUES (1, 1), (2, 2), (3, 3), (4, 4)"))
    try:
        yield name
    finally:
        with mysql_admin_engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


def _count(project: Project, table: str) -> int:
    engine = sa.create_engine(project.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar() or 0)
    finally:
        engine.dispose()


def _project(tmp_path: Path, url: str, *protected: str) -> Project:
    project = make_project(tmp_path / "proj", url, protected=protected)
    seed(project)
    return project


RUNTIME_DELETE = """
def upgrade():
    op.add_column("scratch", sa.Column("note", sa.String(20), nullable=True))
    # The target only exists online: only the interceptor can judge it.
    names = [row[0] for row in op.get_bind().execute(sa.text("SELECT {target!r}"))]
    for name in names:  # offline: no rows, nothing rendered
        op.execute("DELETE FROM " + name)


def downgrade():
    pass
"""


def _guarded(project: Project) -> Any:
    try:
        return upgrade(project.config(), alembic_config=str(project.ini), yes=True)
    except BlockedMigration as exc:
        return exc


def test_database_qualified_pattern_protects_the_unqualified_table(
    tmp_path: Path, mysql_url: str, other_database: str
) -> None:
    default = sa.engine.make_url(mysql_url).database
    project = _project(tmp_path, mysql_url, f"{default}.orders", f"{other_database}.orders")
    project.add_revision("r2", "r1", RUNTIME_DELETE.format(target="orders"))
    before = project.snapshot()
    outcome = _guarded(project)
    assert not isinstance(outcome, BlockedMigration), outcome  # the plan is harmless
    assert outcome.blocked is not None, outcome.outcome  # the run-time DELETE is not
    assert outcome.blocked["rule"] == "delete-without-where"
    assert project.snapshot() == before
    assert _count(project, f"`{other_database}`.orders") == 4


def test_a_pattern_of_another_database_does_not_protect_the_default_ones(
    tmp_path: Path, mysql_url: str, other_database: str
) -> None:
    project = _project(tmp_path, mysql_url, f"{other_database}.orders")
    # Unqualified `orders` is the default database's, which nothing protects: it runs.
    project.add_revision("r2", "r1", RUNTIME_DELETE.format(target="orders"))
    done = _guarded(project)
    assert not isinstance(done, BlockedMigration), [
        str(f.rule) + ":" + str(f.table) + ":" + f.message for f in done.findings
    ]
    assert done.outcome == "applied", done
    assert _count(project, "orders") == 0
    assert _count(project, f"`{other_database}`.orders") == 4
    # The other database's orders, named with its database, are protected.
    project.add_revision(
        "r3",
        "r2",
        RUNTIME_DELETE.format(target=f"{other_database}.orders").replace(
            '"scratch", sa.Column("note"', '"scratch", sa.Column("note2"'
        ),
    )
    outcome = _guarded(project)
    assert not isinstance(outcome, BlockedMigration), outcome
    assert outcome.blocked is not None, outcome.outcome
    assert _count(project, f"`{other_database}`.orders") == 4

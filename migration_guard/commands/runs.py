"""``runs list`` and ``runs resolve``: the records of guarded runs.

See :mod:`migration_guard.alembic.runs` for the states a run record moves through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migration_guard.alembic.runs import RunSummary
    from migration_guard.config import Config


def list_runs(config: Config, *, status: str | None = None) -> list[RunSummary]:
    """The guarded runs recorded in the backup directory, oldest first."""
    from migration_guard.alembic.records import runs_dir
    from migration_guard.alembic.runs import TRANSITIONS
    from migration_guard.alembic.runs import list_runs as listed
    from migration_guard.errors import UsageError

    if status is not None and (status not in TRANSITIONS or not status):
        known = ", ".join(s for s in TRANSITIONS if s)
        raise UsageError(f"--status {status!r} is not a run state; the states are: {known}")
    return listed(runs_dir(config), status=status)


def resolve_run(config: Config, run_id: str, *, reason: str) -> dict[str, Any]:
    """Mark the ``restore-failed`` run ``run_id`` resolved after a person repaired the
    database, so that upgrades of that database may start again."""
    from migration_guard.alembic.records import runs_dir, who
    from migration_guard.alembic.runs import resolve_run as resolve

    return resolve(runs_dir(config), run_id, reason=reason, by=who())

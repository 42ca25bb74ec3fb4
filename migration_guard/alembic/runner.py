"""The safe upgrade: lock -> plan -> check -> backup -> migrate with interception -> restore
on failure -> audit. It orchestrates; the SQL lives in :mod:`migration_guard.dialects`,
the backups in :mod:`migration_guard.backup` and the analysis in
:mod:`migration_guard.analysis`.

Alembic runs programmatically with the user's ``env.py`` unchanged. For the duration of
the command :meth:`EnvironmentContext.run_migrations` is wrapped
(:mod:`migration_guard.alembic.hooks`), so that when env.py hands its connection to
Alembic the guard learns the database env.py *really* uses (the one it locks, backs up
and restores) and does its preparation before the first migration step runs.
:class:`~migration_guard.alembic.session.GuardSession` holds the state of one run; the
env.py guard (:mod:`migration_guard.alembic.env`) reuses it for a plain
``alembic upgrade``.

This module is the entry point callers use (:mod:`migration_guard.commands.safe_upgrade`);
it re-exports the values they pass in and get back.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from migration_guard.alembic.approvals import Allowance, ConfirmCallback, parse_allowances
from migration_guard.alembic.hooks import ACTIVE_RUNS, hooked_alembic
from migration_guard.alembic.records import append_audit
from migration_guard.alembic.recovery import restore_pre_run_state
from migration_guard.alembic.results import (
    PlannedRevision,
    RestoreReport,
    UpgradeResult,
    describe_failure,
)
from migration_guard.alembic.session import (
    DryRunComplete,
    GuardOptions,
    GuardSession,
    InterruptedRunRestored,
)
from migration_guard.alembic.settings import UpgradeSettings, upgrade_settings
from migration_guard.config import Config
from migration_guard.errors import MigrationGuardError, Translation, UsageError, translate
from migration_guard.events import EventSink

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig


def run_guarded(
    config: Config,
    alembic_config: AlembicConfig,
    options: GuardOptions,
    *,
    x_args: Sequence[str] = (),
    on_event: EventSink | None = None,
) -> UpgradeResult:
    """Run ``alembic upgrade``/``downgrade`` under the guard and return what happened.

    ``on_event`` receives the events of the run's backups and, at the end, the
    run's own event (the caller records and notifies them); dry runs send none.

    Raises :class:`~migration_guard.errors.BlockedMigration`,
    :class:`~migration_guard.errors.LockTimeout`,
    :class:`~migration_guard.errors.BackupError` and usage errors when the run stops
    before anything changed. A failure while migrating is restored and reported in the
    result (exit code 1).
    """
    from alembic import command

    session = GuardSession(config, options, on_event=on_event)
    alembic_config.cmd_opts = argparse.Namespace(x=list(x_args))  # type: ignore[assignment]
    runner = command.upgrade if options.command == "upgrade" else command.downgrade
    ACTIVE_RUNS.append(session)
    try:
        with hooked_alembic(session):
            try:
                runner(alembic_config, options.target, sql=False)
                session.succeed()
            except (DryRunComplete, InterruptedRunRestored):
                pass
            except BaseException as error:
                session.detach()
                if not session.migrating:
                    session.result.outcome = "refused"
                    session.result.error = describe_failure(error)
                    with translate(_preparation_errors(), doing=""):
                        raise
                _roll_back(session)
                session.fail(error)
                if isinstance(error, SystemExit):
                    raise
    finally:
        ACTIVE_RUNS.remove(session)
        session.release()
        if not options.dry_run:
            session.audit()
        session.result.seconds = time.monotonic() - session.started
    return session.result


def _roll_back(session: GuardSession) -> None:
    """End a transaction the failed run left open on env.py's connection (a caller's
    connection outlives env.py): its changes must not hold locks during the restore,
    nor be committed by the caller after it."""
    connection = session.connection
    if connection is not None and not connection.closed and connection.in_transaction():
        with contextlib.suppress(Exception):
            connection.rollback()


def _preparation_errors() -> Mapping[type[BaseException], Translation]:
    """Errors before anything changed, in migration-guard's own terms."""
    import sqlalchemy as sa
    from alembic.util import CommandError

    return {
        CommandError: lambda _error, message: UsageError(f"Alembic: {message}"),
        sa.exc.DBAPIError: lambda error, message: MigrationGuardError(
            f"the database refused the preparation: {type(error).__name__}: {message}"
        ),
    }


__all__ = [
    "Allowance",
    "ConfirmCallback",
    "GuardOptions",
    "GuardSession",
    "PlannedRevision",
    "RestoreReport",
    "UpgradeResult",
    "UpgradeSettings",
    "append_audit",
    "parse_allowances",
    "restore_pre_run_state",
    "run_guarded",
    "upgrade_settings",
]

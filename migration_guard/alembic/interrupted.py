"""Runs that die, and runs that lose their lock.

At its start (holding the lock) a guarded run deals with the records earlier runs of
the same database left behind (see :mod:`migration_guard.alembic.runs` for the
states): a ``restore-failed`` run stops it until a person resolves it; a run that died
``migrating`` or ``restoring`` is restored, from any host sharing the backup
directory, unless it may still be running.

While it migrates, a run checks after each revision (before Alembic commits) that the
database still gives it the migration lock, and refreshes its heartbeat in the run
record; before it restores it checks again and, when the lock was lost, takes it back
or stops and leaves the record for the next run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.records import describe_interrupted, runs_dir, write_record
from migration_guard.alembic.runs import (
    check_transition,
    refuse_if_alive,
    refuse_if_blocked,
    unfinished_runs,
)
from migration_guard.errors import UsageError

if TYPE_CHECKING:
    from migration_guard.alembic.session import GuardSession

#: The run record's heartbeat is rewritten at most this often (seconds).
HEARTBEAT_EVERY = 10.0
#: Between revisions the server is asked about the lock at most this often (seconds);
#: after the last revision, before Alembic's final commit, it is always asked. A lock
#: can be lost right after any check, so a check narrows the window, never closes it.
LOCK_CHECK_EVERY = 1.0


def recover_interrupted(session: GuardSession) -> None:
    """Refuse to start after an unresolved failed restore; restore an earlier run of this
    database that died (we hold the lock, so no live run owns it unless it lost its own).
    """
    from migration_guard.backup.manifest import redact_url

    assert session.url is not None
    directory = runs_dir(session.config)
    refuse_if_blocked(directory, session.database, redact_url(session.url))
    for path, record in unfinished_runs(directory, session.database, session.run_id):
        refuse_if_alive(record)
        _restore_interrupted(session, path, record)


def _restore_interrupted(session: GuardSession, path: Path, record: dict[str, Any]) -> None:
    from migration_guard.alembic.recovery import restore_pre_run_state
    from migration_guard.alembic.session import InterruptedRunRestored

    assert session.ops is not None and session.url is not None
    database = session.ops.database_name(session.url)
    described = describe_interrupted(record)
    options = session.options
    if not options.yes:
        if options.confirm is None:
            raise UsageError(
                f"{described}; its changes are still in the database. Pass --yes to "
                "restore the state from before it (no terminal to ask on)"
            )
        if not options.confirm(database):
            raise UsageError(f"{described}; restore declined, nothing was changed")
    status = str(record.get("status", ""))
    check_transition(status, "restoring", str(record.get("run_id")))
    # Marked first, so that a recovery killed in its turn is taken up again.
    record.update(status="restoring", recovered_by=session.run_id)
    write_record(path, record)
    report = restore_pre_run_state(session.config, session.url, record)
    record["status"] = "recovered" if report.ok else "restore-failed"
    record["restore"] = report.to_dict()
    write_record(path, record)
    session.result.restore = report
    session.result.notes.append(described)
    session.result.error = (
        f"{described}; migration-guard restored the state from before it"
        if report.ok
        else f"{described}; restoring it failed"
    )
    session.result.outcome = "recovered" if report.ok else "restore-failed"
    raise InterruptedRunRestored()


def heartbeat(session: GuardSession, *, final: bool = False) -> None:
    """After a revision, before Alembic commits: stop (raise
    :class:`~migration_guard.alembic.lock.LockLost`) when the lock is gone; refresh the
    heartbeat in the run record now and then. ``final``: the run's last revision, whose
    commit is the run's last, so the lock is checked whatever the last check's age."""
    from migration_guard.alembic.lock import LockLost, still_held

    if session.lock is None or session.url is None or not session.migrating:
        return
    due = final or time.monotonic() - session.last_lock_check >= LOCK_CHECK_EVERY
    if due and not still_held(session.url, session.lock):
        raise LockLost(
            f"the migration lock ({session.lock.description}) was lost mid-run: its "
            "connection ended (wait_timeout, a proxy, a failover or KILL?), so another "
            "run may have started. The run stops before it commits."
        )
    if due:
        session.last_lock_check = time.monotonic()
    if time.time() - session.last_heartbeat >= HEARTBEAT_EVERY:
        session._save_record("migrating")


def lock_for_restore(session: GuardSession) -> str | None:
    """Make sure the lock is held before a restore; None when it is, else why not.

    A lost lock is taken back when no other run holds it now; when another run does,
    the record stays as it is and that run (or the next) restores it.
    """
    from migration_guard.alembic.lock import retake, still_held

    if session.lock is None or session.url is None:
        return None
    if still_held(session.url, session.lock):
        return None
    session.lock.release()
    session.lock = retake(session.url)
    if session.lock is not None:
        session.result.notes.append(
            "the migration lock was lost mid-run and taken back before the restore"
        )
        return None
    return (
        "the migration lock was lost mid-run and another run holds it now: nothing was "
        "restored here; the run record stays, and the next run of this database "
        "restores the state from before this one"
    )

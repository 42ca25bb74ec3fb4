"""The life of a run record: its states, who may move it where, and the runs that
must be dealt with before a new run may start.

A run record (``<backup dir>/runs/<run id>.json``, see
:mod:`migration_guard.alembic.records`) moves through the states of
:data:`TRANSITIONS`, and only along them:

``migrating`` -> ``succeeded`` | ``restoring``
    the run migrates; it ends, or fails and restores;
``restoring`` -> ``restored`` | ``recovered`` | ``restore-failed`` | ``restoring``
    a restore is in progress (of the run itself, or of a later run recovering it;
    a run killed inside its restore is taken up again by the next run);
``restore-failed`` -> ``resolved``
    only a person says the database is right again (``migration-guard runs resolve``).

``migrating`` and ``restoring`` are *unfinished*: the next run of the same database,
from any host that shares the backup directory, restores the state from before it.
``restore-failed`` *blocks*: no run of that database starts until it is resolved,
because a blind second restore could overwrite what a person already repaired.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_guard.errors import MigrationGuardError, UsageError

#: state -> the states a record in it may move to ("" is a record not yet written).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "": frozenset({"migrating"}),
    "migrating": frozenset({"migrating", "succeeded", "restoring"}),
    "restoring": frozenset({"restoring", "restored", "recovered", "restore-failed"}),
    "restore-failed": frozenset({"resolved"}),
    "succeeded": frozenset(),
    "restored": frozenset(),
    "recovered": frozenset(),
    "resolved": frozenset(),
}
#: A run in one of these died before it finished: the next run restores it.
UNFINISHED = ("migrating", "restoring")
#: A run in this state stops every later run of its database until it is resolved.
BLOCKING = "restore-failed"
#: A run that lost its lock writes a heartbeat no more; one seen this recently may
#: still be running on another host (seconds).
HEARTBEAT_GRACE = 120.0


class RunBlocked(MigrationGuardError):
    """A restore-failed run (or a live run without its lock) stops this run (exit 1)."""


def check_transition(old: str, new: str, run_id: str) -> None:
    """Raise when a record in ``old`` may not move to ``new`` (a bug, never data)."""
    if new not in TRANSITIONS.get(old, frozenset()):
        raise MigrationGuardError(
            f"run {run_id}: its record may not move from {old or '(new)'!r} to {new!r}"
        )


#: The top-level ``status`` line of a record as :func:`records.write_record` writes it
#: (sorted keys, indented by two): nested objects are indented further.
_TOP_STATUS = re.compile(rb'^  "status": "([^"\\]*)",?$', re.M)


def _records(
    directory: Path, statuses: Collection[str] | None = None
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The run records in ``directory``; with ``statuses``, only those in one of them
    (a record whose status line says otherwise is not even parsed: the directory keeps
    every run ever made, and each run looks for the unfinished ones)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.json")):
        try:
            data = path.read_bytes()
            if statuses is not None:
                line = _TOP_STATUS.search(data)
                if line is not None and line.group(1).decode() not in statuses:
                    continue
            record = json.loads(data)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            yield path, record


def unfinished_runs(
    directory: Path, database: str, current_run_id: str
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Records of earlier runs of ``database`` that died migrating or restoring."""
    for path, record in _records(directory, UNFINISHED):
        if record.get("status") not in UNFINISHED:
            continue
        if record.get("database") != database or record.get("run_id") == current_run_id:
            continue
        yield path, record


def refuse_if_blocked(directory: Path, database: str, url_text: str) -> None:
    """Raise :class:`RunBlocked` when a run of ``database`` failed to restore and is not
    resolved, with the commands that finish the restore by hand."""
    for _path, record in _records(directory, (BLOCKING,)):
        if record.get("status") != BLOCKING or record.get("database") != database:
            continue
        run_id = record.get("run_id")
        restore = record.get("restore") or {}
        manual = restore.get("manual_command") or (
            "migration-guard restore BACKUP_ID --url '" + url_text + "' --tables TABLE --yes"
        )
        backups = ", ".join(b.get("id", "?") for b in record.get("backups") or []) or "none"
        raise RunBlocked(
            f"run {run_id} ({record.get('command')} by {record.get('who')}, started "
            f"{record.get('started_at')}) failed and restoring the database failed too"
            f"{': ' + str(restore.get('error')) if restore.get('error') else ''}. "
            "migration-guard will not restore it again blindly nor migrate on top of it. "
            f"Its backups: {backups}. Finish the restore by hand, e.g.\n  {manual}\n"
            f"then check the database and mark the run resolved:\n"
            f"  migration-guard runs resolve {run_id} --reason 'restored by hand'"
        )


def refuse_if_alive(record: Mapping[str, Any]) -> None:
    """Raise :class:`RunBlocked` when the run of ``record`` may still be running.

    A run that lost its lock (a dropped connection) can still be executing statements:
    restoring under it would race it. On this host its pid tells; on another host a
    heartbeat newer than :data:`HEARTBEAT_GRACE` does.
    """
    from migration_guard.backup.catalog import pid_alive

    run_id, host, pid = record.get("run_id"), record.get("host"), record.get("pid")
    if host == socket.gethostname():
        if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid):
            raise RunBlocked(
                f"run {run_id} (pid {pid} on this host) has no lock but is still running; "
                f"wait for it to end (or stop it: kill {pid}), then run again"
            )
        return
    beat = record.get("heartbeat_at")
    if isinstance(beat, (int, float)) and time.time() - beat < HEARTBEAT_GRACE:
        raise RunBlocked(
            f"run {run_id} on host {host} (pid {pid}) has no lock but sent a heartbeat "
            f"{time.time() - beat:.0f} s ago: it may still be running. Wait "
            f"{HEARTBEAT_GRACE:.0f} s after its last heartbeat, or stop it, then run again"
        )


@dataclass(frozen=True)
class RunSummary:
    """One run record as ``runs list`` shows it."""

    run_id: str
    status: str
    command: str
    database: str
    who: str
    started_at: str
    finished_at: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_runs(directory: Path, *, status: str | None = None) -> list[RunSummary]:
    """The run records in ``directory``, oldest first (``status`` filters)."""
    runs: list[RunSummary] = []
    for _path, record in _records(directory):
        if status is not None and record.get("status") != status:
            continue
        runs.append(
            RunSummary(
                run_id=str(record.get("run_id", _path.stem)),
                status=str(record.get("status", "?")),
                command=str(record.get("command", "?")),
                database=str(record.get("database", "")),
                who=str(record.get("who", "")),
                started_at=str(record.get("started_at", "")),
                finished_at=record.get("finished_at"),
                error=record.get("error"),
            )
        )
    return runs


def resolve_run(directory: Path, run_id: str, *, reason: str, by: str) -> dict[str, Any]:
    """Mark the ``restore-failed`` run ``run_id`` resolved; return its new record.

    Raises :class:`UsageError` when there is no such run or it is not restore-failed.
    """
    from migration_guard.alembic.records import now, write_record

    if not reason.strip():
        raise UsageError(
            "runs resolve needs --reason TEXT: say how the database was put right "
            "(e.g. --reason 'restored orders by hand from backup 20260101-...')"
        )
    for path, record in _records(directory):
        if record.get("run_id") != run_id:
            continue
        status = str(record.get("status", ""))
        if "resolved" not in TRANSITIONS.get(status, frozenset()):
            raise UsageError(
                f"run {run_id} is {status!r}: only a restore-failed run can be resolved "
                "(an unfinished one is restored by the next run)"
            )
        record.update(status="resolved", resolved_at=now(), resolved_by=by, resolution=reason)
        write_record(path, record)
        return record
    raise UsageError(
        f"no run {run_id!r} in {directory}; `migration-guard runs list` shows the runs"
    )

"""Outcomes of other engines turned into events: backup operations and safe upgrades.

:func:`report_operation` is the backup engine's current hook (it wraps
``create``/``verify``/``prune``); it stays until the engine builds its own
events and hands them to an :data:`~migration_guard.events.EventSink`.
:func:`report_upgrade` is called with each ``audit.jsonl`` entry of the safe
upgrade. Both never raise: reporting must never change the outcome it reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from migration_guard.config import Config
from migration_guard.errors import MigrationGuardError
from migration_guard.events import Event
from migration_guard.monitoring.emit import emit
from migration_guard.monitoring.eventlog import record

log = logging.getLogger("migration_guard.monitoring")

#: Audit outcomes of the safe upgrade that count as successful runs.
UPGRADE_SUCCESS = ("applied", "up-to-date", "dry-run")


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, MigrationGuardError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    # Driver messages may echo a URL with its password: the class name only.
    return f"unexpected {type(exc).__name__}"


def report_operation(
    subject: str,
    arguments: Sequence[Any],
    options: Mapping[str, Any],
    *,
    result: Any = None,
    error: BaseException | None = None,
    seconds: float = 0.0,
) -> None:
    """Turn one call of ``create``/``verify``/``prune`` into an event. Never raises.

    ``arguments``/``options`` are the call's positional and keyword arguments
    (the first positional one is the Config).
    """
    try:
        config = arguments[0] if arguments else options.get("config")
        if not isinstance(config, Config):
            return
        build = _OPERATION_EVENTS.get(subject)
        if build is None:
            return
        data: dict[str, Any] = {"seconds": round(seconds, 3)}
        event = build(arguments, options, result, error, data)
        if event is None:
            return
        if isinstance(error, KeyboardInterrupt):
            # The user is waiting: no network round trips.
            record(config, event, create_location=True)
        else:
            emit(config, event, create_location=True)
    except Exception as exc:  # reporting must never change the operation's outcome
        log.warning("could not report the %s outcome: %s", subject, exc)


def _backup_event(
    arguments: Sequence[Any],
    options: Mapping[str, Any],
    result: Any,
    error: BaseException | None,
    data: dict[str, Any],
) -> Event:
    backup_type = str(options.get("type", "full"))
    data["type"] = backup_type
    if error is not None:
        return Event(
            "backup", "failure", f"{backup_type} backup failed: {_failure_text(error)}", data=data
        )
    data.update(size=result.artifact.size, tables=len(result.tables))
    return Event(
        "backup",
        "success",
        f"{backup_type} backup {result.id} created "
        f"({len(result.tables)} table(s), {result.artifact.size} bytes)",
        backup_id=result.id,
        data=data,
    )


def _verify_event(
    arguments: Sequence[Any],
    options: Mapping[str, Any],
    result: Any,
    error: BaseException | None,
    data: dict[str, Any],
) -> Event:
    backup_id = str(arguments[1]) if len(arguments) > 1 else options.get("backup_id")
    if error is not None:
        return Event(
            "verify",
            "failure",
            f"verification of {backup_id} could not run: {_failure_text(error)}",
            backup_id=backup_id,
            data=data,
        )
    data.update(level=result.level, reason=result.reason)
    if result.ok:
        return Event(
            "verify",
            "success",
            f"backup {result.backup_id} verified (level {result.level})",
            details=list(result.details),
            backup_id=result.backup_id,
            data=data,
        )
    return Event(
        "verify",
        "failure",
        f"verification of backup {result.backup_id} FAILED ({result.reason})",
        details=list(result.details),
        backup_id=result.backup_id,
        data=data,
    )


def _prune_event(
    arguments: Sequence[Any],
    options: Mapping[str, Any],
    result: Any,
    error: BaseException | None,
    data: dict[str, Any],
) -> Event | None:
    if error is not None:
        return Event("prune", "failure", f"prune failed: {_failure_text(error)}", data=data)
    if options.get("dry_run"):
        return None
    deleted = list(result.delete_ids)
    data["deleted"] = deleted
    return Event(
        "prune",
        "success",
        f"prune deleted {len(deleted)} backup(s)",
        details=[f"{backup_id}: {reason}" for backup_id, reason in result.delete],
        data=data,
    )


_OperationEvent = Callable[
    [Sequence[Any], Mapping[str, Any], Any, "BaseException | None", dict[str, Any]],
    "Event | None",
]
_OPERATION_EVENTS: dict[str, _OperationEvent] = {
    "backup": _backup_event,
    "verify": _verify_event,
    "prune": _prune_event,
}

_UPGRADE_FAILURE_TEXTS = {
    "restored": "{what} FAILED; the database was restored from backup",
    "recovered": "{what} was interrupted; the database was restored from backup",
    "restore-failed": "{what} FAILED and restoring the database FAILED too",
    "refused": "{what} was refused by the check",
}


def upgrade_event(entry: Mapping[str, Any]) -> Event:
    """The event of one safe-upgrade run (an ``audit.jsonl`` entry).

    ``restored``/``recovered`` (the migration failed, the data was restored),
    ``restore-failed`` and ``refused`` are failures; the rest are successes.
    """
    outcome = str(entry.get("outcome", "unknown"))
    source = ", ".join(map(str, entry.get("from") or [])) or "(base)"
    target = ", ".join(map(str, entry.get("to") or [])) or str(entry.get("target") or "?")
    what = f"upgrade {source} -> {target} by {entry.get('who', '?')}"
    ok = outcome in UPGRADE_SUCCESS
    template = (
        "{what}: {outcome}" if ok else _UPGRADE_FAILURE_TEXTS.get(outcome, "{what}: {outcome}")
    )
    return Event(
        "upgrade",
        "success" if ok else "failure",
        template.format(what=what, outcome=outcome),
        details=[str(entry["error"])] if entry.get("error") else [],
        backup_id=entry.get("backup_id"),
        data={
            "outcome": outcome,
            "run_id": entry.get("run_id"),
            "seconds": entry.get("duration_seconds"),
        },
    )


def report_upgrade(config: Config, entry: Mapping[str, Any]) -> None:
    """Record and notify one safe-upgrade run (an ``audit.jsonl`` entry). Never raises."""
    try:
        emit(config, upgrade_event(entry))
    except Exception as exc:  # the audit already holds the run; this is a convenience
        log.warning("could not report the upgrade: %s", exc)

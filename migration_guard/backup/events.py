"""The events of ``create``, ``verify`` and ``prune``, handed to the caller's sink.

The backup engine does not record or notify: it builds an
:class:`~migration_guard.events.Event` for the outcome of each reported
operation and hands it to the ``on_event`` sink its caller passed (the
commands pass the monitoring sink, which records and notifies). Without a
sink nothing is reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from migration_guard.errors import MigrationGuardError
from migration_guard.events import Event, EventSink

if TYPE_CHECKING:
    from migration_guard.backup.manifest import Manifest
    from migration_guard.backup.retention import PrunePlan
    from migration_guard.backup.verification import VerifyResult

log = logging.getLogger("migration_guard.backup")

_T = TypeVar("_T")


def failure_text(exc: BaseException) -> str:
    """What went wrong, for an event: our messages whole, others by class name only."""
    if isinstance(exc, MigrationGuardError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    # Driver messages may echo a URL with its password: the class name only.
    return f"unexpected {type(exc).__name__}"


def run_reported(
    on_event: EventSink | None,
    build: Callable[[_T | None, BaseException | None, float], Event | None],
    operation: Callable[[], _T],
) -> _T:
    """Run ``operation`` and hand the event of its outcome to ``on_event``.

    ``build(result, error, seconds)`` gets exactly one of ``result``/``error``
    and may return ``None`` when the outcome is not worth an event.

    The outcome is never altered: the result is returned, the exception re-raised,
    and a failing sink is only logged.
    """
    if on_event is None:
        return operation()
    started = time.monotonic()
    try:
        result = operation()
    except BaseException as exc:
        _hand_over(on_event, build, None, exc, time.monotonic() - started)
        raise
    _hand_over(on_event, build, result, None, time.monotonic() - started)
    return result


def _hand_over(
    on_event: EventSink,
    build: Callable[[_T | None, BaseException | None, float], Event | None],
    result: _T | None,
    error: BaseException | None,
    seconds: float,
) -> None:
    try:
        event = build(result, error, seconds)
        if event is not None:
            if isinstance(error, KeyboardInterrupt):
                event.data["interrupted"] = True  # recorded, but the user is waiting
            on_event(event)
    except Exception as exc:  # reporting must never change the operation's outcome
        log.warning("could not report a backup outcome: %s", exc)


def backup_event(
    backup_type: str, result: Manifest | None, error: BaseException | None, seconds: float
) -> Event:
    """``backup.success`` naming the new backup, or ``backup.failure`` with the reason."""
    data: dict[str, object] = {"seconds": round(seconds, 3), "type": backup_type}
    if error is not None or result is None:
        return Event(
            "backup",
            "failure",
            f"{backup_type} backup failed: {failure_text(_error(error))}",
            data=data,
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


def verify_event(
    backup_id: str, result: VerifyResult | None, error: BaseException | None, seconds: float
) -> Event:
    """``verify.success``, or ``verify.failure`` when the check failed or could not run."""
    data: dict[str, object] = {"seconds": round(seconds, 3)}
    if error is not None or result is None:
        return Event(
            "verify",
            "failure",
            f"verification of {backup_id} could not run: {failure_text(_error(error))}",
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


def prune_event(
    dry_run: bool, result: PrunePlan | None, error: BaseException | None, seconds: float
) -> Event | None:
    """``prune.success`` listing what was deleted, ``prune.failure``; nothing for a dry run."""
    data: dict[str, object] = {"seconds": round(seconds, 3)}
    if error is not None or result is None:
        return Event("prune", "failure", f"prune failed: {failure_text(_error(error))}", data=data)
    if dry_run:
        return None
    deleted = list(result.delete_ids)
    data["deleted"] = deleted
    return Event(
        "prune",
        "success",
        f"prune deleted {len(deleted)} backup(s)"
        + (f" (paused: {result.paused})" if result.paused else ""),
        details=[f"{backup_id}: {reason}" for backup_id, reason in result.delete],
        data=data,
    )


def _error(error: BaseException | None) -> BaseException:
    return error if error is not None else RuntimeError("no result")

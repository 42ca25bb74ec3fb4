"""The event log: what happened to the backups, above all what went wrong.

``events.jsonl`` in the backup directory holds one JSON object per line.
Appends use ``O_APPEND`` and ``fsync`` so that concurrent writers never
interleave a line; when the file grows past :data:`MAX_LOG_BYTES` it is
rotated to ``events.jsonl.1`` (one generation is kept).

Recording never raises: the log serves the operator, and an operation that
succeeded must not fail because its event could not be written.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from migration_guard.config import Config
from migration_guard.events import OUTCOMES, SEVERITIES, Event

log = logging.getLogger("migration_guard.monitoring")

EVENTS_FILE = "events.jsonl"
AUDIT_FILE = "audit.jsonl"
MAX_LOG_BYTES = 1 << 20
__all__ = ["OUTCOMES", "SEVERITIES", "Event"]  # re-exported; defined in migration_guard.events

_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("mg_events_quiet", default=False)


def events_path(config: Config) -> Path:
    from migration_guard.backup.catalog import resolve_backup_dir

    return resolve_backup_dir(config) / EVENTS_FILE


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Within this block :func:`emit` does nothing (a drill reports its own verify)."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def append_line(path: Path, data: Mapping[str, Any], *, max_bytes: int = MAX_LOG_BYTES) -> None:
    """Append one JSON line durably; rotate to ``<name>.1`` first when the file is too big."""
    line = (json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size + len(line) > max_bytes:
            os.replace(path, path.with_name(path.name + ".1"))
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        # One write() of the whole line: O_APPEND makes it land after any sibling's line.
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def record(config: Config, event: Event, *, create_location: bool = False) -> bool:
    """Append ``event`` to the event log; False (and a warning) when that is impossible.

    ``create_location`` creates a missing backup directory first (as the engine would),
    so that a first backup failing early still leaves its trace. The monitor never
    does: a missing location must stay visible as missing.
    """
    try:
        path = events_path(config)
        if create_location:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        elif not path.parent.is_dir():
            log.warning(
                "event not recorded, the backup location %s does not exist: %s",
                path.parent,
                event.summary,
            )
            return False
        append_line(path, event.to_dict())
        return True
    except Exception as exc:  # the log must never break the operation it describes
        log.warning("could not record event %s: %s", event.name, exc)
        return False


def emit(config: Config, event: Event, *, create_location: bool = False) -> None:
    """Record ``event`` and send the notifications configured for it. Never raises."""
    if _quiet.get():
        return
    record(config, event, create_location=create_location)
    if not config.sections.get("notify"):
        return  # nothing configured: spare every command the import of smtplib & co.
    try:
        from migration_guard.monitoring.notify import notify

        notify(config, event)
    except Exception as exc:  # pragma: no cover - notify() itself never raises
        log.warning("notification for %s failed: %s", event.name, exc)


def read_jsonl(path: Path, *, rotated: bool = True) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (and its rotated generation), oldest first.

    A missing file is empty; a line that is not a JSON object is skipped.
    """
    paths = [path.with_name(path.name + ".1"), path] if rotated else [path]
    found: list[dict[str, Any]] = []
    for candidate in paths:
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def read_events(
    config: Config,
    *,
    outcomes: Sequence[str] | None = None,
    subjects: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[Event]:
    """Recorded events, newest first, optionally filtered."""
    events = [Event.from_dict(item) for item in read_jsonl(events_path(config))]
    events.sort(key=lambda e: e.timestamp, reverse=True)
    if outcomes is not None:
        events = [e for e in events if e.outcome in outcomes]
    if subjects is not None:
        events = [e for e in events if e.subject in subjects]
    return events[:limit] if limit is not None else events


def read_audit(config: Config, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Upgrade runs from ``audit.jsonl`` (written by the safe upgrade), newest first.

    The file may not exist yet; then there is nothing to show.
    """
    from migration_guard.backup.catalog import resolve_backup_dir

    try:
        records = read_jsonl(resolve_backup_dir(config) / AUDIT_FILE)
    except OSError as exc:
        log.warning("cannot read the upgrade audit log: %s", exc)
        return []
    records.reverse()
    return records[:limit] if limit is not None else records


# -- reports from the backup engine -----------------------------------------------------------
def _failure_text(exc: BaseException) -> str:
    from migration_guard.errors import MigrationGuardError

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
        event = _operation_event(subject, arguments, options, result, error, seconds)
        if event is None:
            return
        if isinstance(error, KeyboardInterrupt):
            # The user is waiting: no network round trips.
            record(config, event, create_location=True)
        else:
            emit(config, event, create_location=True)
    except Exception as exc:  # reporting must never change the operation's outcome
        log.warning("could not report the %s outcome: %s", subject, exc)


def _operation_event(
    subject: str,
    arguments: Sequence[Any],
    options: Mapping[str, Any],
    result: Any,
    error: BaseException | None,
    seconds: float,
) -> Event | None:
    data: dict[str, Any] = {"seconds": round(seconds, 3)}
    if subject == "backup":
        backup_type = str(options.get("type", "full"))
        data["type"] = backup_type
        if error is not None:
            return Event(
                "backup",
                "failure",
                f"{backup_type} backup failed: {_failure_text(error)}",
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
    if subject == "verify":
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
    if subject == "prune":
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
    return None


#: Audit outcomes of the safe upgrade that count as successful runs.
UPGRADE_SUCCESS = ("applied", "up-to-date", "dry-run")


def report_upgrade(config: Config, entry: Mapping[str, Any]) -> None:
    """Record and notify one safe-upgrade run (an ``audit.jsonl`` entry). Never raises.

    ``restored``/``recovered`` (the migration failed, the data was restored),
    ``restore-failed`` and ``refused`` are failures; the rest are successes.
    """
    try:
        outcome = str(entry.get("outcome", "unknown"))
        source = ", ".join(map(str, entry.get("from") or [])) or "(base)"
        target = ", ".join(map(str, entry.get("to") or [])) or str(entry.get("target") or "?")
        what = f"upgrade {source} -> {target} by {entry.get('who', '?')}"
        texts = {
            "restored": f"{what} FAILED; the database was restored from backup",
            "recovered": f"{what} was interrupted; the database was restored from backup",
            "restore-failed": f"{what} FAILED and restoring the database FAILED too",
            "refused": f"{what} was refused by the check",
        }
        ok = outcome in UPGRADE_SUCCESS
        summary = f"{what}: {outcome}" if ok else texts.get(outcome, f"{what}: {outcome}")
        details = [str(entry["error"])] if entry.get("error") else []
        emit(
            config,
            Event(
                "upgrade",
                "success" if ok else "failure",
                summary,
                details=details,
                backup_id=entry.get("backup_id"),
                data={
                    "outcome": outcome,
                    "run_id": entry.get("run_id"),
                    "seconds": entry.get("duration_seconds"),
                },
            ),
        )
    except Exception as exc:  # the audit already holds the run; this is a convenience
        log.warning("could not report the upgrade: %s", exc)

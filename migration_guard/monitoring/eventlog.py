"""The event log and the upgrade audit log: JSON lines in the backup directory.

``events.jsonl`` holds one JSON object per line. Appends use ``O_APPEND`` and
``fsync`` so that concurrent writers never interleave a line; when the file
grows past :data:`MAX_LOG_BYTES` it is rotated to ``events.jsonl.1`` (one
generation is kept). ``audit.jsonl`` is written by the safe upgrade and only
read here.

This module only stores and reads; sending notifications is
:mod:`migration_guard.monitoring.emit`'s business, so that the notifiers can
record their own failures here without an import cycle.

Recording never raises: the log serves the operator, and an operation that
succeeded must not fail because its event could not be written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from migration_guard.backup.catalog import AUDIT_FILE, resolve_backup_dir
from migration_guard.config import Config
from migration_guard.events import Event

log = logging.getLogger("migration_guard.monitoring")

EVENTS_FILE = "events.jsonl"
# The safe upgrade (alembic part) writes this file; its name is defined there too.
MAX_LOG_BYTES = 1 << 20


def events_path(config: Config) -> Path:
    return resolve_backup_dir(config) / EVENTS_FILE


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
    try:
        records = read_jsonl(resolve_backup_dir(config) / AUDIT_FILE)
    except OSError as exc:
        log.warning("cannot read the upgrade audit log: %s", exc)
        return []
    records.reverse()
    return records[:limit] if limit is not None else records

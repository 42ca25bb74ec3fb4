"""The event of a safe-upgrade run, handed to the caller's sink.

Like ``backup.events``: the guard does not record or notify; it builds an
:class:`~migration_guard.events.Event` from the run's audit entry and hands it
to the ``on_event`` sink its caller passed (``commands`` pass the monitoring
sink; the ``env.py`` guard uses the registered sinks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migration_guard.events import Event

#: Audit outcomes of the safe upgrade that count as successful runs.
UPGRADE_SUCCESS = ("applied", "up-to-date", "dry-run")

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

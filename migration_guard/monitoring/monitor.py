"""The monitor: run the health checks, remember the verdict, notify on changes only.

The verdict is kept in ``monitor-state.json`` in the backup directory (written
atomically). A notification goes out when the state flips healthy -> unhealthy
(``monitor.unhealthy``) or back (``monitor.recovered``), never on every run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from migration_guard.backup.catalog import atomic_write_bytes, resolve_backup_dir
from migration_guard.backup.manifest import format_time, utc_now
from migration_guard.config import Config
from migration_guard.errors import describe
from migration_guard.events import Event
from migration_guard.monitoring.emit import emit
from migration_guard.monitoring.health import CheckResult, monitor_settings, run_checks

log = logging.getLogger("migration_guard.monitoring")

STATE_FILE = "monitor-state.json"


@dataclass
class MonitorReport:
    """The outcome of one monitor run."""

    healthy: bool
    checked_at: str
    results: list[CheckResult]
    #: "unhealthy", "recovered" or None when the state did not change.
    transition: str | None = None
    previous_healthy: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "checked_at": self.checked_at,
            "transition": self.transition,
            "previous_healthy": self.previous_healthy,
            "failures": [r.to_dict() for r in self.failures],
            "checks": [r.to_dict() for r in self.results],
            "notes": list(self.notes),
        }


def state_path(config: Config) -> Path:
    return resolve_backup_dir(config) / STATE_FILE


def read_state(config: Config) -> dict[str, Any] | None:
    """The last monitor verdict, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(state_path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("healthy"), bool) else None


def _write_state(config: Config, report: MonitorReport) -> str | None:
    path = state_path(config)
    data = {
        "healthy": report.healthy,
        "checked_at": report.checked_at,
        "failing": [r.key for r in report.failures],
    }
    if not path.parent.is_dir():
        return f"monitor state not saved: {path.parent} is not a directory"
    try:
        atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        return f"monitor state not saved to {path}: {describe(exc)}"
    return None


def monitor(config: Config, *, now: datetime | None = None) -> MonitorReport:
    """Run the health checks, save the verdict and notify when it changed.

    Configuration errors raise :class:`ConfigError`; everything about the backups
    themselves ends up in the report, never in an exception.
    """
    settings = monitor_settings(config)
    # Only when configured: without a notify table nothing may import smtplib & co.
    if config.sections.get("notify"):
        from migration_guard.monitoring.notify import notify_settings

        notify_settings(config)  # a broken notify table must stop the monitor, not hide in the log
    moment = now or utc_now()
    _, results = run_checks(config, settings=settings, now=moment)
    healthy = not any(r.failed for r in results)
    previous = read_state(config)
    previous_healthy = previous["healthy"] if previous else None
    report = MonitorReport(
        healthy=healthy,
        checked_at=format_time(moment),
        results=results,
        previous_healthy=previous_healthy,
    )
    # No earlier verdict counts as healthy: a first run that finds problems must tell someone.
    was_healthy = previous_healthy is not False
    if was_healthy and not healthy:
        report.transition = "unhealthy"
    elif not was_healthy and healthy:
        report.transition = "recovered"
    problem = _write_state(config, report)
    if problem:
        report.notes.append(problem)
        log.warning("%s", problem)
    if report.transition == "unhealthy":
        failures = report.failures
        emit(
            config,
            Event(
                subject="monitor",
                outcome="unhealthy",
                summary=f"backups unhealthy: {len(failures)} check(s) failed: "
                + "; ".join(r.summary for r in failures[:3]),
                details=[f"{r.key}: {r.summary}" for r in failures],
                data={"failing": [r.key for r in failures]},
            ),
        )
    elif report.transition == "recovered":
        emit(
            config,
            Event(
                subject="monitor",
                outcome="recovered",
                summary="backups healthy again: every check passes",
                details=[f"{r.key}: {r.summary}" for r in results if r.status == "ok"],
            ),
        )
    return report

"""``status``, ``monitor``, ``drill`` and ``schedule``: plain functions over
:mod:`migration_guard.monitoring`, one per command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migration_guard.errors import UsageError

if TYPE_CHECKING:
    from migration_guard.config import Config
    from migration_guard.monitoring.drill import DrillResult
    from migration_guard.monitoring.monitor import MonitorReport
    from migration_guard.monitoring.status import StatusReport

SCHEDULE_KINDS = ("cron", "systemd")


def status(config: Config) -> StatusReport:
    """The state of the backups; see :func:`migration_guard.monitoring.status.status`."""
    from migration_guard.monitoring.status import status as build

    return build(config)


def monitor(config: Config) -> MonitorReport:
    """Run the health checks and notify on state changes."""
    from migration_guard.monitoring.monitor import monitor as run

    return run(config)


def drill(config: Config, *, url: str | None, backup_id: str | None = None) -> DrillResult:
    """Restore a backup into a scratch database and compare it with its manifest."""
    from migration_guard.monitoring.drill import drill as run

    return run(config, url=url, backup_id=backup_id)


def schedule(config: Config, kind: str = "cron") -> str:
    """Crontab lines (``cron``) or systemd units (``systemd``) for the configured jobs."""
    from migration_guard.monitoring.schedule import render_cron, render_systemd, schedule_settings

    if kind not in SCHEDULE_KINDS:
        raise UsageError(
            f"unknown schedule kind {kind!r}; choose one of {', '.join(SCHEDULE_KINDS)}"
        )
    settings = schedule_settings(config)
    return render_cron(settings) if kind == "cron" else render_systemd(settings)

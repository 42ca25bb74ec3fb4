"""``status``, ``monitor``, ``drill`` and ``schedule``: plain functions over
:mod:`migration_guard.monitoring`, one per command, and the CLI's only way in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, overload

from migration_guard.errors import UsageError

if TYPE_CHECKING:
    from migration_guard.config import Config
    from migration_guard.monitoring.drill import DrillResult
    from migration_guard.monitoring.monitor import MonitorReport
    from migration_guard.monitoring.status import StatusReport as StatusReport

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


@overload
def schedule(config: Config, kind: str = ..., output_dir: None = None) -> str: ...
@overload
def schedule(config: Config, kind: str, output_dir: str | Path) -> list[Path]: ...
def schedule(
    config: Config, kind: str = "cron", output_dir: str | Path | None = None
) -> str | list[Path]:
    """The schedule of the configured jobs.

    Without ``output_dir``: crontab lines (``cron``) or systemd units (``systemd``)
    as text. With ``output_dir`` (``systemd`` only): the unit files are written
    there and their paths returned.
    """
    from migration_guard.monitoring.schedule import (
        render_cron,
        render_systemd,
        schedule_settings,
        write_units,
    )

    if kind not in SCHEDULE_KINDS:
        raise UsageError(
            f"unknown schedule kind {kind!r}; choose one of {', '.join(SCHEDULE_KINDS)}"
        )
    if output_dir is not None and kind != "systemd":
        raise UsageError("--output-dir needs --systemd")
    settings = schedule_settings(config)
    if output_dir is not None:
        return write_units(settings, Path(output_dir))
    return render_cron(settings) if kind == "cron" else render_systemd(settings)

"""Ready-to-install schedules: crontab lines or systemd service + timer units.

``[tool.migration_guard.schedule]`` gives each job a cron expression (five
fields or ``@daily``-style aliases); ``false`` or ``""`` disables a job. The
defaults are the original plan: full backup daily at 02:00, incremental hourly
(MySQL/MariaDB: the binary log; emitted commented out for another configured
dialect), critical tables every 6 hours, the monitor daily at 08:30 and a
restore drill monthly. systemd ``OnCalendar`` values are derived from the same expressions.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_guard.config import KEY_ENV, MYSQL_FAMILY, SCRATCH_URL_ENV, URL_ENV, Config
from migration_guard.errors import ConfigError
from migration_guard.monitoring import sections
from migration_guard.monitoring.cron import parse_cron, to_on_calendar

JOBS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # name: (default cron, description, migration-guard arguments)
    "full": ("0 2 * * *", "full backup", ("backup", "--type", "full")),
    "incremental": ("0 * * * *", "incremental backup", ("backup", "--type", "incremental")),
    "critical": (
        "0 */6 * * *",
        "backup of the critical (protected) tables",
        ("backup", "--type", "critical"),
    ),
    "monitor": ("30 8 * * *", "backup health monitor", ("monitor",)),
    "drill": ("0 4 1 * *", "monthly restore drill", ("drill",)),
}
DEFAULT_LOG_FILE = ".migration-guard/migration-guard.log"
_TYPES: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys(JOBS, (str, bool)),
    **dict.fromkeys(
        ("log_file", "command", "working_directory", "environment_file", "unit_prefix"), str
    ),
}
_UNIT_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Job:
    name: str
    cron: str
    description: str
    arguments: tuple[str, ...]
    #: Why the job is emitted commented out (None: it is active).
    disabled_because: str | None = None


@dataclass(frozen=True)
class ScheduleSettings:
    jobs: tuple[Job, ...]
    log_file: str
    #: The migration-guard executable as argv (absolute: cron and systemd have no venv PATH).
    command: tuple[str, ...]
    working_directory: str
    config_file: str | None
    environment_file: str | None
    unit_prefix: str = "migration-guard"


# -- settings ---------------------------------------------------------------------------------
def _project_dir(config: Config) -> Path:
    return Path(config.source).resolve().parent if config.source else Path.cwd()


def schedule_settings(config: Config) -> ScheduleSettings:
    """Validated ``[tool.migration_guard.schedule]`` with the jobs to emit."""
    table: Mapping[str, Any] = config.sections.get("schedule", {}) or {}
    where = sections.where(config, "schedule")
    raw = sections.read(config, "schedule", table, _TYPES)
    for name in JOBS:
        if raw.get(name) is True:
            raise ConfigError(
                f"{where}: schedule.{name} must be a cron expression or false",
                key=f"schedule.{name}",
            )
    jobs: list[Job] = []
    for name, (default, description, arguments) in JOBS.items():
        value = raw.get(name, default)
        if value is False or value == "":
            continue
        cron = " ".join(parse_cron(str(value), key=f"schedule.{name}"))
        reason = None
        if name == "incremental":
            reason = _no_incremental(config)
        elif name == "critical" and not config.protected_tables:
            reason = "no protected_tables are configured, so there is no critical set to back up"
        jobs.append(Job(name, cron, description, arguments, reason))
    project = _project_dir(config)
    log_file = Path(str(raw.get("log_file", DEFAULT_LOG_FILE))).expanduser()
    if not log_file.is_absolute():
        log_file = project / log_file
    command = tuple(shlex.split(str(raw["command"]))) if raw.get("command") else _default_command()
    working = Path(str(raw.get("working_directory", project))).expanduser()
    prefix = str(raw.get("unit_prefix", "migration-guard"))
    if not _UNIT_PREFIX.match(prefix):
        raise ConfigError(
            f"{where}: schedule.unit_prefix may hold letters, digits, '.', '_' and '-' only",
            key="schedule.unit_prefix",
        )
    environment = raw.get("environment_file")
    return ScheduleSettings(
        jobs=tuple(jobs),
        log_file=str(log_file),
        command=command,
        working_directory=str(working.resolve() if not working.is_absolute() else working),
        config_file=str(Path(config.source).resolve()) if config.source else None,
        environment_file=str(environment) if environment else None,
        unit_prefix=prefix,
    )


def _no_incremental(config: Config) -> str | None:
    """Why the configured database takes no incremental backups, or None.

    They read the MySQL/MariaDB binary log; another dialect's hourly line is
    emitted commented out. Without a URL (it comes from the job's environment)
    the line is emitted: the first run says it if the server has no binary log.
    """
    from sqlalchemy.engine import make_url

    text = config.url or os.environ.get(URL_ENV)
    if not text:
        return None
    try:
        dialect = make_url(text).get_backend_name()
    except Exception:  # a bad URL is reported by the jobs themselves
        return None
    if dialect in MYSQL_FAMILY:
        return None
    return (
        f"incremental backups read the MySQL/MariaDB binary log, and the database is "
        f"{dialect}: take full backups more often instead (schedule.full), or set "
        "schedule.incremental = false"
    )


def _default_command() -> tuple[str, ...]:
    found = shutil.which("migration-guard")
    if found:
        return (str(Path(found).absolute()),)
    beside = Path(sys.executable).parent / "migration-guard"
    if beside.is_file() and os.access(beside, os.X_OK):
        return (str(beside.absolute()),)
    return (str(Path(sys.executable).absolute()), "-m", "migration_guard")


def _argv(settings: ScheduleSettings, job: Job) -> list[str]:
    argv = [*settings.command, *job.arguments]
    if settings.config_file:
        argv += ["--config-file", settings.config_file]
    return argv


# -- renderers --------------------------------------------------------------------------------
def render_cron(settings: ScheduleSettings) -> str:
    """Crontab lines; output is appended to ``log_file``."""
    lines = [
        "# migration-guard schedule (generated by `migration-guard schedule --cron`)",
        f"# Secrets ({URL_ENV}, {KEY_ENV}, {SCRATCH_URL_ENV}...)",
        "# come from the environment_file or the crontab's environment, never from these lines.",
        "SHELL=/bin/sh",
    ]
    log_file = shlex.quote(settings.log_file)
    log_dir = shlex.quote(os.path.dirname(settings.log_file) or ".")
    for job in settings.jobs:
        command = " ".join(shlex.quote(part) for part in _argv(settings, job))
        prefix = f"cd {shlex.quote(settings.working_directory)} && mkdir -p {log_dir} && "
        if settings.environment_file:
            prefix += f"set -a && . {shlex.quote(settings.environment_file)} && set +a && "
        # cron turns an unescaped % into a newline.
        line = f"{job.cron} {prefix}{command} >> {log_file} 2>&1".replace("%", "\\%")
        lines.append("")
        lines.append(f"# {job.description}")
        if job.disabled_because:
            lines.append(f"# disabled: {job.disabled_because}")
            lines.append(f"# {line}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def systemd_units(settings: ScheduleSettings) -> dict[str, str]:
    """File name -> content of every ``.service`` and ``.timer`` unit."""
    units: dict[str, str] = {}
    for job in settings.jobs:
        if job.disabled_because:
            continue
        name = f"{settings.unit_prefix}-{job.name}"
        command = " ".join(_systemd_quote(part) for part in _argv(settings, job))
        service = [
            "[Unit]",
            f"Description=migration-guard: {job.description}",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"WorkingDirectory={settings.working_directory}",
        ]
        if settings.environment_file:
            service.append(f"EnvironmentFile={settings.environment_file}")
        log_dir = os.path.dirname(settings.log_file) or "."
        service += [
            f"ExecStartPre=/bin/mkdir -p {_systemd_quote(log_dir)}",
            f"ExecStart={command}",
            f"StandardOutput=append:{settings.log_file}",
            f"StandardError=append:{settings.log_file}",
        ]
        units[f"{name}.service"] = "\n".join(service) + "\n"
        units[f"{name}.timer"] = (
            "\n".join(
                [
                    "[Unit]",
                    f"Description=migration-guard: {job.description} (timer)",
                    "",
                    "[Timer]",
                    f"OnCalendar={to_on_calendar(job.cron, key=f'schedule.{job.name}')}",
                    "Persistent=true",
                    f"Unit={name}.service",
                    "",
                    "[Install]",
                    "WantedBy=timers.target",
                ]
            )
            + "\n"
        )
    return units


def _systemd_quote(part: str) -> str:
    if re.match(r"^[A-Za-z0-9_@%+=:,./-]+$", part):
        return part.replace("%", "%%")
    escaped = part.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def render_systemd(settings: ScheduleSettings) -> str:
    """Every unit, each introduced by a ``# file: NAME`` line, plus the disabled jobs."""
    parts = [
        "# migration-guard schedule (generated by `migration-guard schedule --systemd`)",
        "# Save each unit below under /etc/systemd/system/ (or ~/.config/systemd/user/), then:",
        "#   systemctl daemon-reload && systemctl enable --now "
        + " ".join(
            f"{settings.unit_prefix}-{j.name}.timer"
            for j in settings.jobs
            if not j.disabled_because
        ),
    ]
    for job in settings.jobs:
        if job.disabled_because:
            parts.append(f"# {job.name} ({job.cron}) not emitted: {job.disabled_because}")
    for file_name, content in systemd_units(settings).items():
        parts.append("")
        parts.append(f"# file: {file_name}")
        parts.append(content.rstrip("\n"))
    return "\n".join(parts) + "\n"


def write_units(settings: ScheduleSettings, directory: Path) -> list[Path]:
    """Write the systemd units into ``directory`` atomically; the paths written."""
    from migration_guard.backup.catalog import atomic_write_bytes

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, content in systemd_units(settings).items():
        path = directory / file_name
        atomic_write_bytes(path, content.encode("utf-8"), mode=0o644)
        written.append(path)
    return written

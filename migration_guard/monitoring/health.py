"""The health-check framework: results, settings, the context checks read, and the runner.

A check is a callable ``(context) -> list[CheckResult]`` registered by name in
:data:`HEALTH_CHECKS` (entry point group ``migration_guard.health_checks``); the
built-ins live in :mod:`migration_guard.monitoring.checks`. The
``backup_location`` check always runs: a location that cannot be read makes the
monitor unhealthy, never "healthy because nothing was found".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.backup.catalog import Catalog, resolve_backup_dir
from migration_guard.backup.manifest import BACKUP_TYPES, parse_time, utc_now
from migration_guard.config import BACKUP_DIR_ENV, Config
from migration_guard.durations import format_duration, parse_duration, parse_size
from migration_guard.errors import ConfigError, MigrationGuardError, describe
from migration_guard.events import Event
from migration_guard.monitoring import sections
from migration_guard.monitoring.eventlog import read_events
from migration_guard.registry import Registry

if TYPE_CHECKING:
    from migration_guard.backup.manifest import Manifest

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
#: Types a scheduled job produces; safety backups (taken before a restore) are not judged.
MONITORED_TYPES = tuple(t for t in BACKUP_TYPES if t != "safety")


@dataclass
class CheckResult:
    """The verdict of one check on one subject (a backup type, the storage...)."""

    check: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)
    subject: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    @property
    def key(self) -> str:
        return f"{self.check}:{self.subject}" if self.subject else self.check

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "status": self.status,
            "summary": self.summary,
            "details": list(self.details),
        }


@dataclass(frozen=True)
class MonitorSettings:
    """``[tool.migration_guard.monitor]``; see docs/operations.md."""

    #: Maximum age per backup type; ``"*"`` applies to every type found.
    max_age: Mapping[str, timedelta] = field(default_factory=lambda: {"full": timedelta(hours=26)})
    min_size: int = 1
    max_shrink: float = 0.5
    max_growth: float = 10.0
    max_consecutive_failures: int = 3
    verify_within: timedelta | None = timedelta(days=35)
    drill_within: timedelta | None = timedelta(days=35)
    max_storage: int | None = None
    #: How old the newest point a source can be restored to may be (None: only reported).
    max_recovery_gap: timedelta | None = None
    checks: tuple[str, ...] = ()
    #: Sub-tables of custom checks, by check name.
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class HealthContext:
    """What a check may look at. ``manifests`` is newest first."""

    config: Config
    settings: MonitorSettings
    now: datetime
    backup_dir: Path
    manifests: list[Manifest]
    events: list[Event]
    #: Why the location could not be read (None: it was read).
    location_error: str | None = None
    catalog_problems: list[str] = field(default_factory=list)

    def of_type(self, backup_type: str) -> list[Manifest]:
        return [m for m in self.manifests if m.type == backup_type]

    def types_present(self) -> list[str]:
        return [t for t in MONITORED_TYPES if any(m.type == t for m in self.manifests)]

    def age(self, moment: str) -> timedelta:
        """How long before the check run ``moment`` (a manifest or event time) was."""
        return self.now - parse_time(moment)

    def ago(self, moment: str) -> str:
        return f"{format_duration(self.age(moment))} ago"


HealthCheck = Callable[[HealthContext], "list[CheckResult]"]

#: Built-in check name -> its module in :mod:`migration_guard.monitoring.checks`, in run order.
_BUILTIN_MODULES = {
    "backup_location": "catalog",
    "max_age": "catalog",
    "min_size": "catalog",
    "last_backup_failed": "failures",
    "consecutive_failures": "failures",
    "verify_within": "proofs",
    "drill_within": "proofs",
    "max_storage": "storage",
    "offsite_copies": "offsite",
    "protection_drift": "protection",
    "max_recovery_gap": "recovery",
}
BUILTIN_CHECKS = tuple(_BUILTIN_MODULES)
HEALTH_CHECKS: Registry[HealthCheck] = Registry(
    "migration_guard.health_checks",
    "health check",
    {
        name: f"migration_guard.monitoring.checks.{module}:check_{name}"
        for name, module in _BUILTIN_MODULES.items()
    },
)

# Durations and sizes accept numbers here so that their parsers, not a bare type error,
# explain the accepted forms ("26h", "10MB").
_TYPES: dict[str, tuple[type, ...]] = {
    "max_age": (str, int, float, dict),
    "min_size": (str, int, float),
    "max_shrink": (int, float),
    "max_growth": (int, float),
    "max_consecutive_failures": (int,),
    "verify_within": (str, int, float, bool),
    "drill_within": (str, int, float, bool),
    "max_storage": (str, int, float),
    "max_recovery_gap": (str, int, float, bool),
    "checks": (str, list),
}


def _window(value: Any, key: str) -> timedelta | None:
    return None if value is False else parse_duration(value, key=key)


def _positive_ratio(value: Any, key: str, example: str, where: str) -> float:
    if value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive number, e.g. {example}", key=key)
    return float(value)


def _at_least_one(value: Any, key: str, where: str) -> int:
    if value < 1:
        raise ConfigError(f"{where}: {key} must be an integer of at least 1", key=key)
    return int(value)


#: How each setting's value is turned into its :class:`MonitorSettings` field.
_PARSERS: dict[str, Callable[[Any, str, str], Any]] = {
    "max_age": lambda value, key, where: _max_age(value, where),
    "min_size": lambda value, key, where: parse_size(value, key=key),
    "max_storage": lambda value, key, where: parse_size(value, key=key),
    "verify_within": lambda value, key, where: _window(value, key),
    "drill_within": lambda value, key, where: _window(value, key),
    "max_recovery_gap": lambda value, key, where: _window(value, key),
    "max_shrink": lambda value, key, where: _positive_ratio(value, key, "0.5", where),
    "max_growth": lambda value, key, where: _positive_ratio(value, key, "10", where),
    "max_consecutive_failures": lambda value, key, where: _at_least_one(value, key, where),
}


def _check_names(value: str | list[Any], where: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not all(isinstance(name, str) for name in names):
        raise ConfigError(
            f"{where}: monitor.checks must be a list of check names", key="monitor.checks"
        )
    known = HEALTH_CHECKS.names()
    for name in names:
        if name not in known:
            raise ConfigError(
                f"{where}: monitor.checks: unknown health check {name!r}; known health "
                f"checks: {', '.join(known)}",
                key="monitor.checks",
            )
    return tuple(names)


def monitor_settings(config: Config) -> MonitorSettings:
    """Validated ``[tool.migration_guard.monitor]``; ConfigError names the bad key.

    A sub-table named after a check listed in ``checks`` holds that custom check's settings.
    """
    raw: Mapping[str, Any] = config.sections.get("monitor", {}) or {}
    where = sections.where(config, "monitor")
    listed = raw.get("checks")
    listed_names = (
        [listed] if isinstance(listed, str) else listed if isinstance(listed, list) else []
    )
    plugins: dict[str, Mapping[str, Any]] = {
        key: value
        for key, value in raw.items()
        if isinstance(value, Mapping) and key != "max_age" and key in listed_names
    }
    given = sections.read(
        config, "monitor", {k: v for k, v in raw.items() if k not in plugins}, _TYPES
    )
    values: dict[str, Any] = {}
    if "checks" in given:
        values["checks"] = _check_names(given.pop("checks"), where)
    for key, value in given.items():
        values[key] = _PARSERS[key](value, f"monitor.{key}", where)
    values["plugins"] = plugins
    return MonitorSettings(**values)


def _max_age(value: Any, where: str) -> dict[str, timedelta]:
    if isinstance(value, Mapping):
        ages: dict[str, timedelta] = {}
        for backup_type, text in value.items():
            if backup_type not in MONITORED_TYPES and backup_type != "*":
                raise ConfigError(
                    f"{where}: monitor.max_age.{backup_type}: unknown backup type; known "
                    f"types: {', '.join(MONITORED_TYPES)}",
                    key=f"monitor.max_age.{backup_type}",
                )
            ages[backup_type] = parse_duration(text, key=f"monitor.max_age.{backup_type}")
        return ages
    return {"*": parse_duration(value, key="monitor.max_age")}


# -- context ----------------------------------------------------------------------------------
def build_context(config: Config, settings: MonitorSettings, now: datetime) -> HealthContext:
    """Read the catalog and the event log; a location that cannot be read is noted, not raised."""
    directory = resolve_backup_dir(config)
    context = HealthContext(config, settings, now, directory, [], [])
    if not directory.exists():
        context.location_error = (
            f"the backup location {directory} does not exist; no backup was ever written "
            f"there (check backup_dir / {BACKUP_DIR_ENV})"
        )
        return context
    if not directory.is_dir():
        context.location_error = f"the backup location {directory} is not a directory"
        return context
    if not os.access(directory, os.R_OK | os.X_OK):
        context.location_error = f"the backup location {directory} is not readable"
        return context
    catalog = Catalog(directory)
    try:
        context.manifests = catalog.list()
    except MigrationGuardError as exc:
        context.location_error = str(exc)
        return context
    except OSError as exc:
        context.location_error = f"cannot read {directory}: {describe(exc)}"
        return context
    context.catalog_problems = list(catalog.problems)
    try:
        context.events = read_events(config)
    except OSError as exc:
        context.catalog_problems.append(f"cannot read the event log: {describe(exc)}")
    return context


def run_checks(
    config: Config,
    *,
    settings: MonitorSettings | None = None,
    now: datetime | None = None,
    names: Sequence[str] | None = None,
) -> tuple[HealthContext, list[CheckResult]]:
    """Run the configured checks (``backup_location`` always). A crashing check fails."""
    settings = settings or monitor_settings(config)
    context = build_context(config, settings, now or utc_now())
    wanted = list(names or settings.checks or HEALTH_CHECKS.names())
    if "backup_location" not in wanted:
        wanted.insert(0, "backup_location")
    results: list[CheckResult] = []
    for name in wanted:
        check = HEALTH_CHECKS.get(name)
        try:
            results.extend(check(context))
        except Exception as exc:
            results.append(
                CheckResult(name, FAILED, f"the check crashed: {type(exc).__name__}: {exc}")
            )
    return context, results


__all__ = [
    "BUILTIN_CHECKS",
    "HEALTH_CHECKS",
    "CheckResult",
    "HealthContext",
    "MonitorSettings",
    "monitor_settings",
    "run_checks",
]

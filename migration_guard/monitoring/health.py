"""Health checks: a registry (entry point group ``migration_guard.health_checks``).

A check is a callable ``(context) -> list[CheckResult]``. The built-ins cover
backup age per type, size and its growth or shrink, failed and repeatedly failed
backups, verification and restore-drill recency, storage use and protection drift.
The ``backup_location`` check always runs: a location that cannot be read makes
the monitor unhealthy, never "healthy because nothing was found".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.backup.manifest import BACKUP_TYPES, parse_time
from migration_guard.config import Config
from migration_guard.errors import ConfigError
from migration_guard.durations import (
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)
from migration_guard.monitoring.events import Event
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


HealthCheck = Callable[[HealthContext], "list[CheckResult]"]

BUILTIN_CHECKS = (
    "backup_location",
    "max_age",
    "min_size",
    "last_backup_failed",
    "consecutive_failures",
    "verify_within",
    "drill_within",
    "max_storage",
    "protection_drift",
)
HEALTH_CHECKS: Registry[HealthCheck] = Registry(
    "migration_guard.health_checks",
    "health check",
    {name: f"migration_guard.monitoring.health:check_{name}" for name in BUILTIN_CHECKS},
)

_DURATION_KEYS = ("verify_within", "drill_within")
_KEYS = (
    "max_age",
    "min_size",
    "max_shrink",
    "max_growth",
    "max_consecutive_failures",
    "verify_within",
    "drill_within",
    "max_storage",
    "checks",
)


def monitor_settings(config: Config) -> MonitorSettings:
    """Validated ``[tool.migration_guard.monitor]``; ConfigError names the bad key."""
    raw: Mapping[str, Any] = config.sections.get("monitor", {}) or {}
    where = f"{config.source or 'config'}: [tool.migration_guard.monitor]"
    values: dict[str, Any] = {}
    plugins: dict[str, Mapping[str, Any]] = {}
    checks_raw = raw.get("checks")
    if checks_raw is not None:
        if isinstance(checks_raw, str):
            checks_raw = [checks_raw]
        if not isinstance(checks_raw, list) or not all(isinstance(c, str) for c in checks_raw):
            raise ConfigError(
                f"{where}: monitor.checks must be a list of check names", key="monitor.checks"
            )
        known = HEALTH_CHECKS.names()
        for name in checks_raw:
            if name not in known:
                raise ConfigError(
                    f"{where}: monitor.checks: unknown health check {name!r}; known health "
                    f"checks: {', '.join(known)}",
                    key="monitor.checks",
                )
        values["checks"] = tuple(checks_raw)
    for key, value in raw.items():
        if key == "checks":
            continue
        if isinstance(value, Mapping) and key != "max_age" and key in values.get("checks", ()):
            plugins[key] = value
            continue
        if key not in _KEYS:
            raise ConfigError(
                f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(_KEYS))}",
                key=f"monitor.{key}",
            )
        dotted = f"monitor.{key}"
        if key == "max_age":
            values[key] = _max_age(value, where)
        elif key in _DURATION_KEYS:
            values[key] = None if value is False else parse_duration(value, key=dotted)
        elif key in ("min_size", "max_storage"):
            values[key] = parse_size(value, key=dotted)
        elif key in ("max_shrink", "max_growth"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(
                    f"{where}: {dotted} must be a positive number, e.g. "
                    f"{'0.5' if key == 'max_shrink' else '10'}",
                    key=dotted,
                )
            values[key] = float(value)
        elif key == "max_consecutive_failures":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where}: {dotted} must be an integer of at least 1", key=dotted)
            values[key] = value
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
    from migration_guard.backup.catalog import Catalog, resolve_backup_dir
    from migration_guard.errors import MigrationGuardError
    from migration_guard.monitoring.events import read_events

    directory = resolve_backup_dir(config)
    context = HealthContext(config, settings, now, directory, [], [])
    if not directory.exists():
        context.location_error = (
            f"the backup location {directory} does not exist; no backup was ever written "
            "there (check backup_dir / MIGRATION_GUARD_BACKUP_DIR)"
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
        context.location_error = f"cannot read {directory}: {exc.strerror or exc}"
        return context
    context.catalog_problems = list(catalog.problems)
    try:
        context.events = read_events(config)
    except OSError as exc:
        context.catalog_problems.append(f"cannot read the event log: {exc.strerror or exc}")
    return context


def _age(now: datetime, moment: str) -> timedelta:
    return now - parse_time(moment)


def _ago(now: datetime, moment: str) -> str:
    return f"{format_duration(_age(now, moment))} ago"


# -- built-in checks --------------------------------------------------------------------------
def check_backup_location(context: HealthContext) -> list[CheckResult]:
    """The location must be readable and every manifest in it valid."""
    if context.location_error:
        return [CheckResult("backup_location", FAILED, context.location_error)]
    if context.catalog_problems:
        return [
            CheckResult(
                "backup_location",
                FAILED,
                f"{len(context.catalog_problems)} manifest(s) in {context.backup_dir} "
                "cannot be read",
                details=context.catalog_problems,
            )
        ]
    return [
        CheckResult(
            "backup_location", OK, f"{len(context.manifests)} backup(s) in {context.backup_dir}"
        )
    ]


def check_max_age(context: HealthContext) -> list[CheckResult]:
    """The newest backup of each type must be younger than its ``max_age``."""
    if context.location_error:
        return []
    ages = dict(context.settings.max_age)
    default = ages.pop("*", None)
    limits = dict(ages)
    if default is not None:
        for backup_type in {"full", *(t for t in context.types_present() if t != "tables")}:
            limits.setdefault(backup_type, default)
    results = []
    for backup_type, limit in sorted(limits.items()):
        newest = context.of_type(backup_type)
        if not newest:
            results.append(
                CheckResult(
                    "max_age",
                    FAILED,
                    f"no {backup_type} backup at all (expected one at least every "
                    f"{format_duration(limit)})",
                    subject=backup_type,
                )
            )
            continue
        age = _age(context.now, newest[0].finished_at)
        status = FAILED if age > limit else OK
        results.append(
            CheckResult(
                "max_age",
                status,
                f"newest {backup_type} backup {newest[0].id} is {format_duration(age)} old "
                f"(limit {format_duration(limit)})",
                subject=backup_type,
            )
        )
    return results


def _total_rows(manifest: Manifest) -> int | None:
    counts = [entry.rows for entry in manifest.tables.values() if entry.ref is None]
    if not counts or any(count is None for count in counts):
        return None
    return sum(count for count in counts if count is not None)


def _comparable_size(manifest: Manifest) -> int:
    plain = manifest.artifact.plain_size
    return plain if plain is not None else manifest.artifact.size


def check_min_size(context: HealthContext) -> list[CheckResult]:
    """An empty, too small, shrunken or exploded newest backup per type is flagged."""
    if context.location_error:
        return []
    settings = context.settings
    results = []
    for backup_type in context.types_present():
        history = context.of_type(backup_type)
        newest = history[0]
        problems: list[str] = []
        if newest.artifact.size == 0 or newest.artifact.plain_size == 0:
            problems.append(f"{newest.id} is a 0-byte backup")
        if not newest.tables:
            problems.append(f"{newest.id} contains no table at all")
        elif _total_rows(newest) == 0:
            problems.append(
                f"{newest.id} is an empty dump: 0 rows in {len(newest.tables)} table(s)"
            )
        if newest.artifact.size < settings.min_size:
            problems.append(
                f"{newest.id} is {format_size(newest.artifact.size)}, below "
                f"min_size {format_size(settings.min_size)}"
            )
        previous = [
            m for m in history[1:] if set(m.tables) == set(newest.tables) or backup_type != "tables"
        ]
        if previous and _comparable_size(previous[0]) > 0:
            ratio = _comparable_size(newest) / _comparable_size(previous[0])
            if ratio < settings.max_shrink:
                problems.append(
                    f"{newest.id} shrank to {ratio:.0%} of the previous {backup_type} backup "
                    f"{previous[0].id} ({format_size(_comparable_size(newest))} vs "
                    f"{format_size(_comparable_size(previous[0]))}; max_shrink "
                    f"{settings.max_shrink:g})"
                )
            elif ratio > settings.max_growth:
                problems.append(
                    f"{newest.id} grew {ratio:.1f}x against the previous {backup_type} backup "
                    f"{previous[0].id} (max_growth {settings.max_growth:g})"
                )
        if problems:
            results.append(
                CheckResult("min_size", FAILED, problems[0], details=problems, subject=backup_type)
            )
        else:
            results.append(
                CheckResult(
                    "min_size",
                    OK,
                    f"newest {backup_type} backup is {format_size(newest.artifact.size)}",
                    subject=backup_type,
                )
            )
    return results


def _backup_runs(context: HealthContext, backup_type: str) -> list[tuple[str, bool, str]]:
    """(time, succeeded, text) of the backup runs of one type, newest first.

    Successes come from the catalog (it survives a lost event log), failures from events.
    """
    runs = [(m.finished_at, True, m.id) for m in context.of_type(backup_type)]
    for event in context.events:
        if (
            event.subject == "backup"
            and event.outcome == "failure"
            and event.data.get("type") == backup_type
        ):
            runs.append((event.timestamp, False, event.summary))
    runs.sort(key=lambda run: parse_time(run[0]), reverse=True)
    return runs


def _failed_types(context: HealthContext) -> list[str]:
    types = set(context.types_present())
    for event in context.events:
        if event.subject == "backup" and event.outcome == "failure":
            backup_type = event.data.get("type")
            if isinstance(backup_type, str) and backup_type in MONITORED_TYPES:
                types.add(backup_type)
    return [t for t in MONITORED_TYPES if t in types]


def check_last_backup_failed(context: HealthContext) -> list[CheckResult]:
    """The most recent run of each backup type must have succeeded."""
    if context.location_error:
        return []
    results = []
    for backup_type in _failed_types(context):
        runs = _backup_runs(context, backup_type)
        if not runs:
            continue
        moment, succeeded, text = runs[0]
        if succeeded:
            results.append(
                CheckResult(
                    "last_backup_failed",
                    OK,
                    f"last {backup_type} backup succeeded ({_ago(context.now, moment)})",
                    subject=backup_type,
                )
            )
        else:
            results.append(
                CheckResult(
                    "last_backup_failed",
                    FAILED,
                    f"the last {backup_type} backup failed {_ago(context.now, moment)}: {text}",
                    subject=backup_type,
                )
            )
    return results


def check_consecutive_failures(context: HealthContext) -> list[CheckResult]:
    """No backup type may fail ``max_consecutive_failures`` times in a row."""
    if context.location_error:
        return []
    limit = context.settings.max_consecutive_failures
    results = []
    for backup_type in _failed_types(context):
        streak = 0
        for _, succeeded, _text in _backup_runs(context, backup_type):
            if succeeded:
                break
            streak += 1
        status = FAILED if streak >= limit else OK
        results.append(
            CheckResult(
                "consecutive_failures",
                status,
                f"{streak} consecutive failed {backup_type} backup(s) (limit {limit})",
                subject=backup_type,
            )
        )
    return results


def check_verify_within(context: HealthContext) -> list[CheckResult]:
    """Some backup must have been verified (level 1 or more) within ``verify_within``,
    and the most recent verification must have passed."""
    window = context.settings.verify_within
    if context.location_error:
        return []
    if window is None:
        return [CheckResult("verify_within", SKIPPED, "verify_within is off")]
    verified = [
        m
        for m in context.manifests
        if m.verification.last_verified_at and (m.verification.level or 0) >= 1
    ]
    if not verified:
        return [
            CheckResult(
                "verify_within",
                FAILED,
                "no backup was ever verified; run `migration-guard backups verify "
                "ID` or `migration-guard drill`",
            )
        ]
    latest = max(verified, key=lambda m: parse_time(m.verification.last_verified_at or ""))
    moment = latest.verification.last_verified_at or ""
    if latest.verification.ok is False:
        return [
            CheckResult(
                "verify_within",
                FAILED,
                f"the last verification ({latest.id}, {_ago(context.now, moment)}) FAILED",
                details=list(latest.verification.details),
            )
        ]
    if _age(context.now, moment) > window:
        return [
            CheckResult(
                "verify_within",
                FAILED,
                f"no backup verified within {format_duration(window)}; the last "
                f"verification was {_ago(context.now, moment)} ({latest.id})",
            )
        ]
    return [CheckResult("verify_within", OK, f"{latest.id} verified {_ago(context.now, moment)}")]


def check_drill_within(context: HealthContext) -> list[CheckResult]:
    """A restore drill (restore test) must have passed within ``drill_within``."""
    window = context.settings.drill_within
    if context.location_error:
        return []
    if window is None:
        return [CheckResult("drill_within", SKIPPED, "drill_within is off")]
    tested = [m for m in context.manifests if m.verification.restore_test_at]
    failed_drills = [e for e in context.events if e.subject == "drill" and e.outcome == "failure"]
    if not tested:
        if failed_drills:
            return [
                CheckResult(
                    "drill_within",
                    FAILED,
                    f"the last restore drill failed: {failed_drills[0].summary}",
                )
            ]
        return [
            CheckResult(
                "drill_within",
                FAILED,
                "no restore drill was ever run; run `migration-guard drill --url SCRATCH_URL`",
            )
        ]
    latest = max(tested, key=lambda m: parse_time(m.verification.restore_test_at or ""))
    moment = latest.verification.restore_test_at or ""
    if failed_drills and parse_time(failed_drills[0].timestamp) > parse_time(moment):
        return [
            CheckResult(
                "drill_within",
                FAILED,
                f"the last restore drill failed "
                f"{_ago(context.now, failed_drills[0].timestamp)}: "
                f"{failed_drills[0].summary}",
                details=failed_drills[0].details,
            )
        ]
    if latest.verification.restore_test_ok is not True:
        return [
            CheckResult(
                "drill_within",
                FAILED,
                f"the last restore drill ({latest.id}, {_ago(context.now, moment)}) FAILED",
                details=list(latest.verification.details),
            )
        ]
    if _age(context.now, moment) > window:
        return [
            CheckResult(
                "drill_within",
                FAILED,
                f"no restore drill within {format_duration(window)}; the last one "
                f"was {_ago(context.now, moment)} ({latest.id})",
            )
        ]
    return [
        CheckResult(
            "drill_within", OK, f"restore drill of {latest.id} passed {_ago(context.now, moment)}"
        )
    ]


def storage_used(directory: Path) -> int:
    """Bytes of every file directly in the backup directory."""
    total = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def check_max_storage(context: HealthContext) -> list[CheckResult]:
    """The backup directory must not hold more than ``max_storage``."""
    limit = context.settings.max_storage
    if context.location_error:
        return []
    if limit is None:
        return [CheckResult("max_storage", SKIPPED, "no max_storage set")]
    try:
        used = storage_used(context.backup_dir)
    except OSError as exc:
        return [
            CheckResult(
                "max_storage", FAILED, f"cannot measure {context.backup_dir}: {exc.strerror or exc}"
            )
        ]
    status = FAILED if used > limit else OK
    return [CheckResult("max_storage", status, f"{format_size(used)} used of {format_size(limit)}")]


def check_protection_drift(context: HealthContext) -> list[CheckResult]:
    """Protection installed in the database must still be intact (triggers, grants)."""
    from migration_guard.errors import MigrationGuardError
    from migration_guard.protect.operations import protect_status

    url = context.config.url or os.environ.get("MIGRATION_GUARD_URL")
    if not url:
        return [
            CheckResult(
                "protection_drift",
                SKIPPED,
                "no database URL (url or MIGRATION_GUARD_URL) to check protection",
            )
        ]
    try:
        state = protect_status(context.config, url=url)
    except MigrationGuardError as exc:
        return [CheckResult("protection_drift", FAILED, f"cannot check protection: {exc}")]
    except Exception as exc:  # a crashing check must fail, never pass
        return [
            CheckResult(
                "protection_drift", FAILED, f"cannot check protection: {type(exc).__name__}"
            )
        ]
    if not state.installed:
        return [
            CheckResult(
                "protection_drift",
                SKIPPED,
                "protection is not installed (`migration-guard protect install`)",
            )
        ]
    if state.drifted:
        details = list(state.drift) + [
            f"table {table.table}: drifted" for table in state.tables if table.drifted
        ]
        return [
            CheckResult(
                "protection_drift",
                FAILED,
                "the installed protection differs from the configuration; run "
                "`migration-guard protect status`",
                details=details,
            )
        ]
    return [CheckResult("protection_drift", OK, "protection installed as configured")]


def run_checks(
    config: Config,
    *,
    settings: MonitorSettings | None = None,
    now: datetime | None = None,
    names: Sequence[str] | None = None,
) -> tuple[HealthContext, list[CheckResult]]:
    """Run the configured checks (``backup_location`` always). A crashing check fails."""
    from migration_guard.backup.manifest import utc_now

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
    "storage_used",
]

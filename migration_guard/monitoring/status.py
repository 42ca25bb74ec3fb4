"""``status``: what the backups look like right now, in one report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from migration_guard.backup.manifest import parse_time
from migration_guard.config import Config
from migration_guard.monitoring.checks.recovery import recovery_points
from migration_guard.monitoring.checks.storage import storage_used
from migration_guard.monitoring.health import MONITORED_TYPES

if TYPE_CHECKING:
    from migration_guard.backup.manifest import Manifest

FAILURE_OUTCOMES = ("failure", "unhealthy")


@dataclass
class TypeStatus:
    """The newest backup of one type."""

    type: str
    count: int
    last_id: str
    finished_at: str
    age_seconds: int
    size: int
    plain_size: int | None
    tables: int
    rows: int | None
    encrypted: bool
    verified: bool
    verified_at: str | None
    verification_level: int | None
    restore_tested: bool
    restore_test_ok: bool | None
    restore_test_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StatusReport:
    backup_dir: str
    generated_at: str
    location_error: str | None = None
    types: list[TypeStatus] = field(default_factory=list)
    #: Per source: the newest point it can be restored to (``RecoveryPoint.to_dict``).
    recovery: list[dict[str, Any]] = field(default_factory=list)
    backups: int = 0
    storage_bytes: int | None = None
    retention: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    upgrades: list[dict[str, Any]] = field(default_factory=list)
    monitor: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_dir": self.backup_dir,
            "generated_at": self.generated_at,
            "location_error": self.location_error,
            "types": [t.to_dict() for t in self.types],
            "recovery": self.recovery,
            "backups": self.backups,
            "storage_bytes": self.storage_bytes,
            "retention": self.retention,
            "failures": self.failures,
            "upgrades": self.upgrades,
            "monitor": self.monitor,
            "problems": self.problems,
        }


def _type_status(manifests: list[Manifest], now: datetime) -> TypeStatus:
    newest = manifests[0]
    rows_known = [e.rows for e in newest.tables.values() if e.ref is None]
    rows = (
        sum(r for r in rows_known if r is not None)
        if rows_known and None not in rows_known
        else None
    )
    verification = newest.verification
    return TypeStatus(
        type=newest.type,
        count=len(manifests),
        last_id=newest.id,
        finished_at=newest.finished_at,
        age_seconds=int((now - parse_time(newest.finished_at)).total_seconds()),
        size=newest.artifact.size,
        plain_size=newest.artifact.plain_size,
        tables=len(newest.tables),
        rows=rows,
        encrypted=newest.encrypted,
        verified=newest.verified,
        verified_at=verification.last_verified_at if verification.ok is not None else None,
        verification_level=verification.level,
        restore_tested=verification.restore_test_at is not None,
        restore_test_ok=verification.restore_test_ok,
        restore_test_at=verification.restore_test_at,
    )


def status(config: Config, *, now: datetime | None = None, limit: int = 10) -> StatusReport:
    """Per-type newest backups, the newest recovery point of each source, retention,
    storage, recent failures and upgrades.

    Never raises for an unreadable location: the report carries ``location_error``.
    """
    from migration_guard.backup.catalog import Catalog, resolve_backup_dir
    from migration_guard.backup.engine import backup_settings
    from migration_guard.backup.manifest import format_time, utc_now
    from migration_guard.backup.retention import plan_prune
    from migration_guard.errors import MigrationGuardError, describe
    from migration_guard.monitoring.eventlog import read_audit, read_events
    from migration_guard.monitoring.monitor import read_state

    moment = now or utc_now()
    directory = resolve_backup_dir(config)
    settings = backup_settings(config)
    report = StatusReport(backup_dir=str(directory), generated_at=format_time(moment))
    report.retention = {
        "keep_days": settings.keep_days,
        "keep_daily": settings.keep_daily,
        "keep_weekly": settings.keep_weekly,
        "keep_monthly": settings.keep_monthly,
        "auto_prune": settings.auto_prune,
    }
    if not directory.is_dir():
        report.location_error = (
            f"the backup location {directory} does not exist or is not a directory"
        )
        return report
    catalog = Catalog(directory)
    try:
        manifests = catalog.list()
        report.storage_bytes = storage_used(directory)
    except (MigrationGuardError, OSError) as exc:
        report.location_error = str(exc)
        return report
    report.problems = list(catalog.problems)
    report.backups = len(manifests)
    for backup_type in (*MONITORED_TYPES, "safety"):
        of_type = [m for m in manifests if m.type == backup_type]
        if of_type:
            report.types.append(_type_status(of_type, moment))
    report.recovery = [point.to_dict() for point in recovery_points(manifests, moment)]
    due: list[str] = []
    if manifests:
        try:
            due = plan_prune(manifests, moment, settings.retention).delete_ids
        except MigrationGuardError as exc:
            report.problems.append(f"retention cannot be evaluated: {exc}")
    report.retention.update(
        {
            "kept": len(manifests) - len(due),
            "due_for_pruning": due,
            "oldest": manifests[-1].id if manifests else None,
            "oldest_finished_at": manifests[-1].finished_at if manifests else None,
        }
    )
    try:
        report.failures = [
            e.to_dict() for e in read_events(config, outcomes=FAILURE_OUTCOMES, limit=limit)
        ]
    except OSError as exc:
        report.problems.append(f"cannot read the event log: {describe(exc)}")
    report.upgrades = read_audit(config, limit=5)
    report.monitor = read_state(config)
    return report

"""How far back a restore of each database would go: the newest point you can recover to.

A point is the end of a full or incremental backup whose archive is not known to
be bad (its last verification did not fail) and, for an incremental, whose whole
chain back to its full backup is in the catalog and not known to be bad either.
``max_recovery_gap`` (``[tool.migration_guard.monitor]``) fails the check when
the newest point of a source is older than that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from migration_guard.backup.manifest import parse_time
from migration_guard.backup.retention import source_of
from migration_guard.durations import format_duration
from migration_guard.monitoring.health import FAILED, OK, CheckResult, HealthContext

if TYPE_CHECKING:
    from migration_guard.backup.manifest import Manifest

#: The backup types that restore a whole database.
RECOVERY_TYPES = ("full", "incremental")


@dataclass(frozen=True)
class RecoveryPoint:
    """The newest point one source can be restored to, and the backup that holds it."""

    source: str
    backup_id: str
    type: str
    point: str
    age_seconds: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _usable(manifest: Manifest, by_id: dict[str, Manifest]) -> bool:
    """Not known to be bad, and its chain is whole (back to a backup with no parent)."""
    seen: set[str] = set()
    current: Manifest | None = manifest
    while current is not None:
        if current.verification.ok is False or current.id in seen:
            return False
        seen.add(current.id)
        if not current.parent:
            return current.type != "incremental"
        current = by_id.get(current.parent)
    return False


def recovery_points(manifests: Iterable[Manifest], now: datetime) -> list[RecoveryPoint]:
    """The newest recovery point of every source, oldest point first."""
    listed = list(manifests)
    by_id = {m.id: m for m in listed}
    newest: dict[str, Manifest] = {}
    for manifest in listed:
        if manifest.type not in RECOVERY_TYPES or not _usable(manifest, by_id):
            continue
        source = source_of(manifest)
        if source not in newest or manifest.finished > newest[source].finished:
            newest[source] = manifest
    points = [
        RecoveryPoint(
            source=source,
            backup_id=m.id,
            type=m.type,
            point=m.finished_at,
            age_seconds=int((now - parse_time(m.finished_at)).total_seconds()),
        )
        for source, m in newest.items()
    ]
    return sorted(points, key=lambda p: -p.age_seconds)


def check_max_recovery_gap(context: HealthContext) -> list[CheckResult]:
    """The newest recovery point of each source must be younger than ``max_recovery_gap``."""
    if context.location_error:
        return []
    limit = context.settings.max_recovery_gap
    results = []
    for point in recovery_points(context.manifests, context.now):
        age = context.age(point.point)
        summary = (
            f"newest recovery point of {point.source} is {format_duration(age)} old "
            f"({point.type} backup {point.backup_id})"
        )
        if limit is None:
            results.append(CheckResult("max_recovery_gap", OK, summary, subject=point.source))
            continue
        status = FAILED if age > limit else OK
        summary += f" (limit {format_duration(limit)})"
        details = (
            [
                "take an incremental backup (migration-guard backup --type incremental) or a "
                "full backup now, and check the schedule that should have taken one"
            ]
            if status == FAILED
            else []
        )
        results.append(
            CheckResult("max_recovery_gap", status, summary, details=details, subject=point.source)
        )
    return results

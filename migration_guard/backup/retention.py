"""Retention: which backups to keep and which to delete. Pure; no file is touched here.

A backup is kept when any rule selects it:

* it is younger than ``keep_days`` days (default 30, as in the original plan);
* it is the newest backup of one of the ``keep_daily`` most recent days that have a
  backup (likewise ``keep_weekly`` ISO weeks and ``keep_monthly`` months);
* it is the newest backup, or the newest backup whose verification passed;
* a kept backup needs it (its parent, or a table it refers to).

Everything else is deleted. Nothing is planned when the listing looks wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from migration_guard.backup.manifest import Manifest
from migration_guard.config import BACKUP_DIR_ENV
from migration_guard.errors import BackupError, ConfigError

POLICY_KEYS = ("keep_days", "keep_daily", "keep_weekly", "keep_monthly")


@dataclass(frozen=True)
class RetentionPolicy:
    """How many backups to keep. A count of 0 disables that rule."""

    keep_days: int = 30
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0

    def __post_init__(self) -> None:
        for key in POLICY_KEYS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{key} must be a whole number >= 0, not {value!r}", key=key)

    def describe(self) -> str:
        return ", ".join(f"{key}={getattr(self, key)}" for key in POLICY_KEYS)


@dataclass
class PrunePlan:
    """The decision for every backup: kept (with every reason) or deleted (with one)."""

    keep: list[tuple[str, list[str]]] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)

    @property
    def delete_ids(self) -> list[str]:
        return [backup_id for backup_id, _ in self.delete]

    @property
    def keep_ids(self) -> list[str]:
        return [backup_id for backup_id, _ in self.keep]

    def to_dict(self) -> dict[str, Any]:
        return {
            "keep": [{"id": i, "reasons": r} for i, r in self.keep],
            "delete": [{"id": i, "reason": r} for i, r in self.delete],
        }


def _bucket_rule(
    ordered: Sequence[Manifest],
    count: int,
    bucket: Callable[[datetime], Hashable],
    label: str,
    reasons: dict[str, list[str]],
) -> None:
    """Keep the newest backup of each of the ``count`` most recent buckets."""
    if count <= 0:
        return
    seen: set[Hashable] = set()
    for manifest in ordered:
        key = bucket(manifest.started)
        if key in seen:
            continue
        if len(seen) >= count:
            break
        seen.add(key)
        reasons[manifest.id].append(f"{label} {key}")


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def plan_prune(manifests: Iterable[Manifest], now: datetime, policy: RetentionPolicy) -> PrunePlan:
    """Decide which backups to keep and which to delete.

    Raises :class:`BackupError` instead of planning when the listing looks wrong:
    no backups at all, or the same id twice.
    """
    ordered = sorted(manifests, key=lambda m: (m.started, m.id), reverse=True)
    if not ordered:
        raise BackupError(
            "refusing to prune: the backup listing is empty; check backup_dir / "
            f"{BACKUP_DIR_ENV} points at the right location"
        )
    ids = [m.id for m in ordered]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise BackupError(f"refusing to prune: backup ids listed twice: {', '.join(duplicates)}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)

    reasons: dict[str, list[str]] = {m.id: [] for m in ordered}
    reasons[ordered[0].id].append("newest backup")
    newest_verified = next((m for m in ordered if m.verified_ok), None)
    if newest_verified is not None:
        reasons[newest_verified.id].append("newest verified backup")
    if policy.keep_days > 0:
        cutoff = now - timedelta(days=policy.keep_days)
        for manifest in ordered:
            if manifest.started >= cutoff:
                reasons[manifest.id].append(f"younger than keep_days={policy.keep_days}")
    _bucket_rule(ordered, policy.keep_daily, _day, "newest of day", reasons)
    _bucket_rule(ordered, policy.keep_weekly, _week, "newest of week", reasons)
    _bucket_rule(ordered, policy.keep_monthly, _month, "newest of month", reasons)

    by_id = {m.id: m for m in ordered}
    pending = [m.id for m in ordered if reasons[m.id]]
    while pending:
        child = pending.pop()
        for needed in sorted(by_id[child].referenced_ids()):
            if needed not in by_id:
                continue
            was_kept = bool(reasons[needed])
            note = f"needed by kept backup {child}"
            if note not in reasons[needed]:
                reasons[needed].append(note)
            if not was_kept:
                pending.append(needed)

    plan = PrunePlan()
    for manifest in ordered:
        if reasons[manifest.id]:
            plan.keep.append((manifest.id, reasons[manifest.id]))
        else:
            plan.delete.append((manifest.id, f"not selected by the policy ({policy.describe()})"))
    return plan

"""Retention: which backups to keep and which to delete. Pure; no file is touched here.

As restic's ``forget``, the policy applies to each group of backups separately:
a group is one source database (its URL without user and password) and one
backup type, so a nightly ``full`` and an evening ``critical`` backup of the
same database each fill their own daily, weekly and monthly slots. Within its
group a backup is kept when any rule selects it:

* it is younger than ``keep_days`` days (default 30, as in the original plan);
* it is the newest backup of one of the ``keep_daily`` most recent days that have a
  backup (likewise ``keep_weekly`` ISO weeks and ``keep_monthly`` months);
* it is the newest backup of its group, or the newest one verified at level 1
  or higher whose verification passed (the re-read right after writing, level
  0, does not count). So the newest verified full backup of every source stays.

Across groups, a backup is also kept when a kept backup needs it (its parent, or
a table it refers to), and when it is pinned by a running restore or
verification. A chain (a full backup and the incremental backups built on it,
each naming its parent) is kept or deleted whole: one kept member keeps every
member, since an incremental is useless without the backups before it and a
chain cut short loses the points in time after the cut. Everything else is
deleted. Nothing is planned when the listing looks wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
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
    #: The (source, type) groups the policy was applied to, in order of their newest backup.
    groups: list[PruneGroup] = field(default_factory=list)
    #: Why nothing is deleted now (a restore is running), or None.
    paused: str | None = None
    #: What happened to the offsite copies of the deleted backups (one line each).
    offsite: list[str] = field(default_factory=list)
    #: Every chain (root id, member ids oldest first, kept), newest root first.
    chains: list[tuple[str, list[str], bool]] = field(default_factory=list)

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
            "groups": [group.to_dict() for group in self.groups],
            "paused": self.paused,
            "offsite": list(self.offsite),
            "chains": [
                {"root": root, "members": members, "kept": kept}
                for root, members, kept in self.chains
            ],
        }


@dataclass
class PruneGroup:
    """The backups of one source database and one type, newest first."""

    source: str
    type: str
    keep: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "type": self.type, "keep": self.keep, "delete": self.delete}


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


def source_of(manifest: Manifest) -> str:
    """The database a backup came from: ``dialect://host:port/database``, no user or password."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(manifest.source_url)
    except Exception:  # an odd URL is still a source of its own
        return manifest.source_url
    where = f"{url.host or ''}{f':{url.port}' if url.port else ''}"
    return f"{manifest.dialect}://{where}/{url.database or ''}"


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def _check_listing(ordered: Sequence[Manifest]) -> None:
    if not ordered:
        raise BackupError(
            "refusing to prune: the backup listing is empty; check backup_dir / "
            f"{BACKUP_DIR_ENV} points at the right location"
        )
    ids = [m.id for m in ordered]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise BackupError(f"refusing to prune: backup ids listed twice: {', '.join(duplicates)}")


def _select_in_group(
    group: Sequence[Manifest], now: datetime, policy: RetentionPolicy, reasons: dict[str, list[str]]
) -> None:
    """Apply the policy to one group (newest first)."""
    reasons[group[0].id].append("newest backup of its group")
    newest_verified = next((m for m in group if m.verified), None)
    if newest_verified is not None:
        reasons[newest_verified.id].append(
            f"newest verified backup of its group (level {newest_verified.verification.level})"
        )
    if policy.keep_days > 0:
        cutoff = now - timedelta(days=policy.keep_days)
        for manifest in group:
            if manifest.started >= cutoff:
                reasons[manifest.id].append(f"younger than keep_days={policy.keep_days}")
    _bucket_rule(group, policy.keep_daily, _day, "newest of day", reasons)
    _bucket_rule(group, policy.keep_weekly, _week, "newest of week", reasons)
    _bucket_rule(group, policy.keep_monthly, _month, "newest of month", reasons)


def _keep_dependencies(ordered: Sequence[Manifest], reasons: dict[str, list[str]]) -> None:
    """Keep every backup a kept backup needs, transitively."""
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


def chains_of(ordered: Sequence[Manifest]) -> dict[str, list[str]]:
    """Root id -> the ids of its chain, oldest first, for every backup with incrementals.

    A backup whose parent is not listed (a broken chain) roots a chain of its own.
    """
    by_id = {m.id: m for m in ordered}
    chains: dict[str, list[str]] = {}
    for manifest in sorted(ordered, key=lambda m: (m.started, m.id)):
        root, seen = manifest, {manifest.id}
        while root.parent in by_id and root.parent not in seen:
            root = by_id[root.parent]
            seen.add(root.id)
        chains.setdefault(root.id, []).append(manifest.id)
    return {root: members for root, members in chains.items() if len(members) > 1}


def _keep_chains_whole(chains: Mapping[str, list[str]], reasons: dict[str, list[str]]) -> None:
    for root, members in chains.items():
        kept = [member for member in members if reasons[member]]
        if not kept:
            continue
        for member in members:
            if not reasons[member]:
                reasons[member].append(f"in the chain of {root}, kept whole ({kept[-1]} is kept)")


def plan_prune(
    manifests: Iterable[Manifest],
    now: datetime,
    policy: RetentionPolicy,
    *,
    pinned: Mapping[str, str] | None = None,
    paused: str | None = None,
) -> PrunePlan:
    """Decide which backups to keep and which to delete.

    ``pinned`` maps the id of a backup in use to a description of its user; it
    is kept, and so is everything it needs. ``paused`` (why nothing may be
    deleted now) turns every deletion into a keep that says so.

    Raises :class:`BackupError` instead of planning when the listing looks wrong:
    no backups at all, or the same id twice.
    """
    ordered = sorted(manifests, key=lambda m: (m.started, m.id), reverse=True)
    _check_listing(ordered)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)

    groups: dict[tuple[str, str], list[Manifest]] = {}
    for manifest in ordered:
        groups.setdefault((source_of(manifest), manifest.type), []).append(manifest)
    reasons: dict[str, list[str]] = {m.id: [] for m in ordered}
    for group in groups.values():
        _select_in_group(group, now, policy, reasons)
    for backup_id, holder in (pinned or {}).items():
        if backup_id in reasons:
            reasons[backup_id].append(f"pinned: {holder}")
    _keep_dependencies(ordered, reasons)
    chains = chains_of(ordered)
    _keep_chains_whole(chains, reasons)
    _keep_dependencies(ordered, reasons)
    if paused:
        for manifest in ordered:
            if not reasons[manifest.id]:
                reasons[manifest.id].append(f"pruning paused: {paused}")

    plan = PrunePlan(paused=paused)
    root_of = {member: root for root, members in chains.items() for member in members}
    for manifest in ordered:
        if reasons[manifest.id]:
            plan.keep.append((manifest.id, reasons[manifest.id]))
        elif manifest.id in root_of:
            plan.delete.append(
                (
                    manifest.id,
                    f"its chain ({root_of[manifest.id]}, {len(chains[root_of[manifest.id]])} "
                    f"backups) is deleted whole: the policy ({policy.describe()}) keeps none "
                    "of them",
                )
            )
        else:
            plan.delete.append((manifest.id, f"not selected by the policy ({policy.describe()})"))
    deleted = set(plan.delete_ids)
    position = {m.id: index for index, m in enumerate(ordered)}
    roots = sorted(chains, key=position.__getitem__)
    plan.chains = [(root, chains[root], root not in deleted) for root in roots]
    for (source, backup_type), members in groups.items():
        decided = PruneGroup(source, backup_type)
        for manifest in members:
            (decided.delete if manifest.id in deleted else decided.keep).append(manifest.id)
        plan.groups.append(decided)
    return plan

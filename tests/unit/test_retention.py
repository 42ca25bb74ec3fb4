"""Retention planning: pure logic over manifests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration_guard.backup.manifest import (
    Artifact,
    Manifest,
    TableEntry,
    Verification,
    format_time,
    new_backup_id,
)
from migration_guard.backup.retention import (
    PrunePlan,
    RetentionPolicy,
    plan_prune,
    source_of,
)
from migration_guard.errors import BackupError, ConfigError

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=timezone.utc)


def make(
    age: timedelta,
    *,
    verified: bool | None = None,
    parent: str | None = None,
    refs: dict[str, str] | None = None,
    backup_type: str = "full",
    source: str = "sqlite:///app.db",
    level: int = 1,
) -> Manifest:
    """A backup ``age`` old; ``verified`` is the outcome of a verification at ``level``."""
    started = NOW - age
    tables = {name: TableEntry(ref=ref) for name, ref in (refs or {}).items()}
    return Manifest(
        id=new_backup_id(backup_type, started),
        type=backup_type,
        source_url=source,
        dialect=source.split(":")[0].split("+")[0],
        started_at=format_time(started),
        finished_at=format_time(started + timedelta(seconds=5)),
        artifact=Artifact("x.mgb", 10, "0" * 64, "zstd", None, "sqlite-db"),
        backend="sqlite",
        tool_version="0.1.0",
        created_by="test@host",
        parent=parent,
        tables=tables,
        verification=Verification(ok=verified, level=None if verified is None else level),
    )


def decisions(plan: PrunePlan) -> tuple[set[str], set[str]]:
    return set(plan.keep_ids), set(plan.delete_ids)


def test_empty_listing_is_refused() -> None:
    with pytest.raises(BackupError, match="empty"):
        plan_prune([], NOW, RetentionPolicy())


def test_duplicate_ids_are_refused() -> None:
    backup = make(timedelta(days=40))
    with pytest.raises(BackupError, match="twice"):
        plan_prune([backup, backup], NOW, RetentionPolicy())


def test_keep_days_keeps_young_and_deletes_old() -> None:
    young = make(timedelta(days=3))
    old = make(timedelta(days=31))
    older = make(timedelta(days=90))
    keep, delete = decisions(plan_prune([old, young, older], NOW, RetentionPolicy(keep_days=30)))
    assert keep == {young.id}
    assert delete == {old.id, older.id}


def test_newest_backup_is_kept_even_when_old() -> None:
    only = make(timedelta(days=400))
    plan = plan_prune([only], NOW, RetentionPolicy(keep_days=1))
    assert plan.keep_ids == [only.id]
    assert "newest backup of its group" in plan.keep[0][1]


def test_newest_verified_backup_is_kept() -> None:
    newest = make(timedelta(days=40), verified=False)
    verified = make(timedelta(days=50), verified=True)
    older_verified = make(timedelta(days=60), verified=True)
    keep, delete = decisions(
        plan_prune([newest, verified, older_verified], NOW, RetentionPolicy(keep_days=30))
    )
    assert verified.id in keep
    assert older_verified.id in delete


def test_parent_and_table_references_of_kept_backups_are_kept() -> None:
    base = make(timedelta(days=100))
    middle = make(timedelta(days=60), parent=base.id, backup_type="incremental")
    referenced = make(timedelta(days=90))
    child = make(
        timedelta(days=1), parent=middle.id, refs={"t": referenced.id}, backup_type="incremental"
    )
    unrelated = make(timedelta(days=95))  # older than the newest full backup: not kept
    plan = plan_prune([base, middle, referenced, child, unrelated], NOW, RetentionPolicy())
    keep, delete = decisions(plan)
    assert {base.id, middle.id, referenced.id, child.id} <= keep
    assert delete == {unrelated.id}
    reasons = dict(plan.keep)
    assert any(middle.id in reason for reason in reasons[base.id])


def test_daily_weekly_monthly_buckets() -> None:
    same_day_new = make(timedelta(days=40, hours=1))
    same_day_old = make(timedelta(days=40, hours=3))
    previous_day = make(timedelta(days=41, hours=1))
    three_months_ago = make(timedelta(days=95))
    backups = [same_day_new, same_day_old, previous_day, three_months_ago]
    keep, _ = decisions(plan_prune(backups, NOW, RetentionPolicy(keep_days=0, keep_daily=2)))
    assert keep == {same_day_new.id, previous_day.id}
    keep, _ = decisions(plan_prune(backups, NOW, RetentionPolicy(keep_days=0, keep_monthly=3)))
    assert same_day_new.id in keep and three_months_ago.id in keep
    assert same_day_old.id not in keep
    keep, _ = decisions(plan_prune(backups, NOW, RetentionPolicy(keep_days=0, keep_weekly=1)))
    assert keep == {same_day_new.id}


@pytest.mark.parametrize("bad", [-1, "3", 1.5, True])
def test_policy_rejects_bad_values(bad: object) -> None:
    with pytest.raises(ConfigError, match="keep_days"):
        RetentionPolicy(keep_days=bad)  # type: ignore[arg-type]


def test_retention_from_backup_settings_reads_only_its_keys() -> None:
    from migration_guard.backup.settings import backup_settings
    from migration_guard.config import Config

    config = Config(sections={"backup": {"keep_days": 7, "keep_weekly": 4, "auto_prune": True}})
    assert backup_settings(config).retention == RetentionPolicy(keep_days=7, keep_weekly=4)


SOURCES = ("sqlite:///app.db", "mysql+pymysql://app@db/shop", "mysql+pymysql://backup@db:3306/shop")
backup_sets = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=400 * 24),  # age in hours
        st.sampled_from([None, True, False]),
        st.integers(min_value=-1, max_value=30),  # index of the parent, -1 none
        st.sampled_from(["sqlite:///app.db", "mysql+pymysql://app@db/shop"]),
        st.sampled_from(["full", "critical"]),
        st.sampled_from([0, 1, 2]),  # verification level
    ),
    min_size=1,
    max_size=25,
)
policies = st.builds(
    RetentionPolicy,
    keep_days=st.integers(0, 60),
    keep_daily=st.integers(0, 10),
    keep_weekly=st.integers(0, 6),
    keep_monthly=st.integers(0, 6),
)


def newest(manifests: list[Manifest]) -> Manifest:
    return max(manifests, key=lambda m: (m.started, m.id))


def groups_of(manifests: list[Manifest]) -> dict[tuple[str, str], list[Manifest]]:
    groups: dict[tuple[str, str], list[Manifest]] = {}
    for manifest in manifests:
        groups.setdefault((source_of(manifest), manifest.type), []).append(manifest)
    return groups


def assert_bucket_rule(
    group: list[Manifest], count: int, bucket: Callable[[Manifest], object], keep: set[str]
) -> None:
    """The newest backup of each of the ``count`` most recent buckets of ``group`` is kept."""
    newest_of: dict[object, Manifest] = {}
    for manifest in sorted(group, key=lambda m: (m.started, m.id)):
        newest_of[bucket(manifest)] = manifest
    recent = sorted(newest_of.values(), key=lambda m: (m.started, m.id), reverse=True)[:count]
    assert {m.id for m in recent} <= keep


@settings(max_examples=200, deadline=None)
@given(backup_sets, policies, st.sets(st.integers(0, 30), max_size=3), st.booleans())
def test_invariants_hold_for_arbitrary_sets(
    specs: list[tuple[int, bool | None, int, str, str, int]],
    policy: RetentionPolicy,
    pinned_indexes: set[int],
    paused: bool,
) -> None:
    manifests: list[Manifest] = []
    for age, verified, parent_index, source, backup_type, level in specs:
        parent = manifests[parent_index].id if 0 <= parent_index < len(manifests) else None
        manifests.append(
            make(
                timedelta(hours=age),
                verified=verified,
                parent=parent,
                source=source,
                backup_type=backup_type,
                level=level,
            )
        )
    pinned = {manifests[i].id: "restore by pid 1" for i in pinned_indexes if i < len(manifests)}
    plan = plan_prune(
        manifests, NOW, policy, pinned=pinned, paused="a restore runs" if paused else None
    )
    keep, delete = decisions(plan)
    all_ids = {m.id for m in manifests}
    assert keep | delete == all_ids
    assert not keep & delete
    assert len(plan.keep) + len(plan.delete) == len(manifests)
    if paused:
        assert not delete
    assert set(pinned) <= keep
    by_id = {m.id: m for m in manifests}
    for kept in keep:
        assert by_id[kept].referenced_ids() & all_ids <= keep
    if policy.keep_days:
        cutoff = NOW - timedelta(days=policy.keep_days)
        assert {m.id for m in manifests if m.started >= cutoff} <= keep
    groups = groups_of(manifests)
    assert {(g.source, g.type) for g in plan.groups} == set(groups)
    for group_plan in plan.groups:
        members = groups[(group_plan.source, group_plan.type)]
        assert set(group_plan.keep) | set(group_plan.delete) == {m.id for m in members}
        assert set(group_plan.keep) <= keep and set(group_plan.delete) <= delete
    for group in groups.values():
        assert newest(group).id in keep
        proven = [m for m in group if m.verified]
        if proven:
            assert newest(proven).id in keep
        assert_bucket_rule(group, policy.keep_daily, lambda m: m.started.date(), keep)
        assert_bucket_rule(group, policy.keep_weekly, lambda m: m.started.isocalendar()[:2], keep)
        assert_bucket_rule(group, policy.keep_monthly, lambda m: m.started.strftime("%Y-%m"), keep)
    for backup_id, reasons in plan.keep:
        assert reasons, backup_id
        if by_id[backup_id].verification.level == 0:  # the re-read after writing proves nothing
            assert not any("verified" in reason for reason in reasons), reasons


def test_a_group_is_one_database_whatever_the_user_or_driver() -> None:
    app = make(timedelta(days=1), source="mysql+pymysql://app@db/shop")
    backup = make(timedelta(days=2), source="mysql+mysqldb://backup:secret@db/shop")
    crm = make(timedelta(days=3), source="mysql+pymysql://app@db/crm")
    assert source_of(app) == source_of(backup) == "mysql://db/shop"
    assert source_of(crm) == "mysql://db/crm"
    plan = plan_prune([app, backup, crm], NOW, RetentionPolicy(keep_days=0))
    assert [(g.source, g.type, g.keep, g.delete) for g in plan.groups] == [
        ("mysql://db/shop", "full", [app.id], [backup.id]),
        ("mysql://db/crm", "full", [crm.id], []),
    ]
    assert "secret" not in str(plan.to_dict())


# -- 120 simulated days: a nightly full backup, an evening critical one, auto_prune after each --
SIMULATION = RetentionPolicy(keep_days=7, keep_daily=14, keep_weekly=8, keep_monthly=4)


def simulated_backup(moment: datetime, backup_type: str, level: int | None, ok: bool) -> Manifest:
    manifest = make(NOW - moment, backup_type=backup_type, source=SOURCES[1])
    manifest.verification = Verification(
        last_verified_at=format_time(moment + timedelta(minutes=5)), level=level, ok=ok
    )
    return manifest


def test_120_days_of_nightly_full_and_evening_critical_backups() -> None:
    start = datetime(2024, 3, 3, tzinfo=timezone.utc)  # a Sunday
    history: list[Manifest] = []
    alive: dict[str, Manifest] = {}
    for day in range(120):
        midnight = start + timedelta(days=day)
        sunday = midnight.weekday() == 6
        # The full backup is verified at level 1 on Sundays; the verification of the last
        # Sunday fails. Every other backup only gets the re-read after writing (level 0).
        failed = day >= 119 - 6 and sunday
        runs = [
            simulated_backup(midnight.replace(hour=2), "full", 1 if sunday else 0, not failed),
            simulated_backup(midnight.replace(hour=20), "critical", 0, True),
        ]
        for manifest in runs:
            history.append(manifest)
            alive[manifest.id] = manifest
            now = manifest.started + timedelta(minutes=10)
            plan = plan_prune(alive.values(), now, SIMULATION)
            for deleted in plan.delete_ids:
                del alive[deleted]
            proven = [m for m in history if m.type == "full" and m.verified]
            assert newest(proven).id in alive, f"day {day}: the newest verified full is gone"
    end = history[-1].started + timedelta(minutes=10)
    # Pruning every day decides exactly what one prune of the whole history decides.
    once = plan_prune(history, end, SIMULATION)
    assert set(once.keep_ids) == set(alive)

    for backup_type in ("full", "critical"):
        kept = [m for m in alive.values() if m.type == backup_type]
        made = [m for m in history if m.type == backup_type]
        days = {m.started.date() for m in kept}
        last_days = sorted({m.started.date() for m in made}, reverse=True)[:14]
        assert set(last_days) <= days, f"{backup_type}: a daily slot is empty"
        weeks = {m.started.isocalendar()[:2] for m in kept}
        last_weeks = sorted({m.started.isocalendar()[:2] for m in made}, reverse=True)[:8]
        assert set(last_weeks) <= weeks, f"{backup_type}: a weekly slot is empty"
        months = {m.started.strftime("%Y-%m") for m in kept}
        assert months == {"2024-03", "2024-04", "2024-05", "2024-06"}, backup_type
        for month in months:  # the month's slot holds its last backup
            last = newest([m for m in made if m.started.strftime("%Y-%m") == month])
            assert last.id in alive, f"{backup_type}: {month}"
    # A slot of one type never stands in for the other: 14 daily, 8 weekly, 4 monthly slots
    # each (overlapping), plus the newest verified full backup.
    per_type = {t: sum(m.type == t for m in alive.values()) for t in ("full", "critical")}
    assert 14 <= per_type["critical"] <= 14 + 8 + 4
    assert 14 <= per_type["full"] <= 14 + 8 + 4 + 1
    failed_check = newest([m for m in history if m.verification.ok is False])
    proven = newest([m for m in history if m.type == "full" and m.verified])
    assert proven.started < failed_check.started and proven.id in alive
    reasons = dict(once.keep)
    assert any("newest verified backup" in r for r in reasons[proven.id])


@pytest.mark.parametrize(
    ("ok", "level", "expected"),
    [
        (True, 0, False),  # the re-read right after writing proves less than a verification
        (True, 1, True),
        (True, 2, True),
        (False, 2, False),
        (None, None, False),
        (True, None, False),
    ],
)
def test_verified_means_a_passed_verification_of_level_one_or_more(
    ok: bool | None, level: int | None, expected: bool
) -> None:
    backup = make(timedelta(days=1))
    backup.verification = Verification(ok=ok, level=level)
    assert backup.verified is expected
    # Retention keeps the newest backup that is verified in exactly this sense.
    older = make(timedelta(days=40), verified=True, level=1)
    plan = plan_prune([backup, older], NOW, RetentionPolicy(keep_days=7))
    newest_verified = backup if expected else older
    assert any("newest verified backup" in r for r in dict(plan.keep)[newest_verified.id])


def _simulated_days(days: int) -> tuple[list[Manifest], dict[str, str]]:
    """A nightly full backup at 02:00 and hourly incrementals after it, for ``days`` days;
    the backups, and each one's chain root."""
    manifests: list[Manifest] = []
    root_of: dict[str, str] = {}
    midnight = NOW.replace(hour=0)
    for day in range(days, -1, -1):
        full_at = midnight - timedelta(days=day) + timedelta(hours=2)
        if full_at > NOW:
            break
        full = make(NOW - full_at, source="mysql+pymysql://db/shop")
        manifests.append(full)
        root_of[full.id] = full.id
        parent = full
        for hour in range(1, 24):
            if full_at + timedelta(hours=hour) > NOW:
                break
            incremental = make(
                NOW - full_at - timedelta(hours=hour),
                parent=parent.id,
                backup_type="incremental",
                source="mysql+pymysql://db/shop",
            )
            manifests.append(incremental)
            root_of[incremental.id] = full.id
            parent = incremental
    return manifests, root_of


@pytest.mark.parametrize(
    "policy",
    [
        RetentionPolicy(keep_days=3),
        RetentionPolicy(keep_days=0, keep_daily=4),
        RetentionPolicy(keep_days=1, keep_daily=2, keep_weekly=2),
    ],
)
def test_simulated_days_of_full_and_hourly_incrementals_keep_or_delete_whole_chains(
    policy: RetentionPolicy,
) -> None:
    manifests, root_of = _simulated_days(20)
    plan = plan_prune(manifests, NOW, policy)
    keep, delete = decisions(plan)
    by_id = {m.id: m for m in manifests}
    for backup_id in keep:  # everything a kept backup depends on is kept
        parent = by_id[backup_id].parent
        assert parent is None or parent in keep
    for root in set(root_of.values()):  # a chain is kept whole or deleted whole
        members = {i for i, r in root_of.items() if r == root}
        assert members <= keep or members <= delete, (root, members & keep, members & delete)
    assert {root for root, members, kept in plan.chains if kept} == {root_of[i] for i in keep}
    newest = max(manifests, key=lambda m: m.started)
    assert newest.id in keep
    assert delete, "twenty days are more than any of these policies keeps"
    deleted_reason = dict(plan.delete)[next(iter(delete))]
    assert "deleted whole" in deleted_reason


def test_a_kept_root_keeps_its_incrementals() -> None:
    """The newest full backup of a month is kept by keep_monthly: its chain stays whole,
    so every point in time of that day can still be restored."""
    manifests, root_of = _simulated_days(40)
    plan = plan_prune(manifests, NOW, RetentionPolicy(keep_days=0, keep_monthly=2))
    keep, _ = decisions(plan)
    for backup_id in keep:
        members = {i for i, r in root_of.items() if r == root_of[backup_id]}
        assert members <= keep

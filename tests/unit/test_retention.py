"""Retention planning: pure logic over manifests."""

from __future__ import annotations

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
from migration_guard.backup.retention import PrunePlan, RetentionPolicy, plan_prune
from migration_guard.errors import BackupError, ConfigError

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=timezone.utc)


def make(
    age: timedelta,
    *,
    verified: bool | None = None,
    parent: str | None = None,
    refs: dict[str, str] | None = None,
    backup_type: str = "full",
) -> Manifest:
    started = NOW - age
    tables = {name: TableEntry(ref=ref) for name, ref in (refs or {}).items()}
    return Manifest(
        id=new_backup_id(backup_type, started),
        type=backup_type,
        source_url="sqlite:///app.db",
        dialect="sqlite",
        started_at=format_time(started),
        finished_at=format_time(started + timedelta(seconds=5)),
        artifact=Artifact("x.mgb", 10, "0" * 64, "zstd", None, "sqlite-db"),
        backend="sqlite",
        tool_version="0.1.0",
        created_by="test@host",
        parent=parent,
        tables=tables,
        verification=Verification(ok=verified),
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
    assert "newest backup" in plan.keep[0][1]


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
    unrelated = make(timedelta(days=80))
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


backup_sets = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=400 * 24),  # age in hours
        st.sampled_from([None, True, False]),
        st.integers(min_value=-1, max_value=30),  # index of the parent, -1 none
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


@settings(max_examples=200, deadline=None)
@given(backup_sets, policies)
def test_invariants_hold_for_arbitrary_sets(
    specs: list[tuple[int, bool | None, int]], policy: RetentionPolicy
) -> None:
    manifests: list[Manifest] = []
    for age, verified, parent_index in specs:
        parent = manifests[parent_index].id if 0 <= parent_index < len(manifests) else None
        manifests.append(make(timedelta(hours=age), verified=verified, parent=parent))
    plan = plan_prune(manifests, NOW, policy)
    keep, delete = decisions(plan)
    all_ids = {m.id for m in manifests}
    assert keep | delete == all_ids
    assert not keep & delete
    assert len(plan.keep) + len(plan.delete) == len(manifests)
    newest = max(manifests, key=lambda m: (m.started, m.id))
    assert newest.id in keep
    verified_ones = [m for m in manifests if m.verified_ok]
    if verified_ones:
        assert max(verified_ones, key=lambda m: (m.started, m.id)).id in keep
    by_id = {m.id: m for m in manifests}
    for kept in keep:
        assert by_id[kept].referenced_ids() & all_ids <= keep
    if policy.keep_days:
        cutoff = NOW - timedelta(days=policy.keep_days)
        assert {m.id for m in manifests if m.started >= cutoff} <= keep
    for backup_id, reasons in plan.keep:
        assert reasons, backup_id

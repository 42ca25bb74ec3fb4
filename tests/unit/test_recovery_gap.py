"""The newest recovery point of each source, and the ``max_recovery_gap`` check."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from migration_guard.config import Config
from migration_guard.errors import ConfigError
from migration_guard.monitoring.checks.catalog import check_min_size
from migration_guard.monitoring.checks.recovery import check_max_recovery_gap, recovery_points
from migration_guard.monitoring.health import HealthContext, MonitorSettings, monitor_settings
from tests.unit.test_retention import NOW, make

SHOP = "mysql+pymysql://db/shop"


def _context(manifests: list, gap: timedelta | None) -> HealthContext:  # type: ignore[type-arg]
    ordered = sorted(manifests, key=lambda m: m.started, reverse=True)
    settings = MonitorSettings(max_recovery_gap=gap)
    return HealthContext(Config(), settings, NOW, Path("/nowhere"), ordered, [])


def test_the_newest_point_is_the_newest_incremental_of_a_whole_chain() -> None:
    full = make(timedelta(hours=5), source=SHOP)
    first = make(timedelta(hours=4), parent=full.id, backup_type="incremental", source=SHOP)
    second = make(timedelta(hours=3), parent=first.id, backup_type="incremental", source=SHOP)
    other = make(timedelta(hours=10), source="sqlite:///app.db")
    (oldest, newest) = recovery_points([full, first, second, other], NOW)
    assert (oldest.backup_id, newest.backup_id) == (other.id, second.id)
    assert newest.type == "incremental" and 3 * 3600 - 10 < newest.age_seconds <= 3 * 3600


def test_a_broken_or_failed_chain_is_no_recovery_point() -> None:
    full = make(timedelta(hours=5), source=SHOP)
    bad = make(
        timedelta(hours=4),
        parent=full.id,
        backup_type="incremental",
        source=SHOP,
        verified=False,
    )
    after_bad = make(timedelta(hours=3), parent=bad.id, backup_type="incremental", source=SHOP)
    orphan = make(timedelta(hours=1), parent="gone", backup_type="incremental", source=SHOP)
    (point,) = recovery_points([full, bad, after_bad, orphan], NOW)
    assert point.backup_id == full.id


def test_max_recovery_gap_fails_when_the_newest_point_is_older() -> None:
    full = make(timedelta(hours=5), source=SHOP)
    incremental = make(timedelta(hours=3), parent=full.id, backup_type="incremental", source=SHOP)
    (failed,) = check_max_recovery_gap(_context([full, incremental], timedelta(hours=2)))
    assert failed.failed and incremental.id in failed.summary and failed.details
    (passed,) = check_max_recovery_gap(_context([full, incremental], timedelta(hours=4)))
    assert passed.status == "ok" and "limit 4h" in passed.summary
    (reported,) = check_max_recovery_gap(_context([full, incremental], None))
    assert reported.status == "ok" and "limit" not in reported.summary


def test_an_incremental_is_not_an_empty_dump_for_min_size() -> None:
    full = make(timedelta(hours=5), source=SHOP)
    incremental = make(timedelta(hours=3), parent=full.id, backup_type="incremental", source=SHOP)
    results = check_min_size(_context([full, incremental], None))
    by_type = {r.subject: r for r in results}
    assert by_type["incremental"].status == "ok", by_type["incremental"]


@pytest.mark.parametrize("value", ["soon", -3, True])
def test_a_bad_max_recovery_gap_names_the_key(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        monitor_settings(Config(sections={"monitor": {"max_recovery_gap": value}}))
    assert "max_recovery_gap" in str(caught.value)
    assert monitor_settings(
        Config(sections={"monitor": {"max_recovery_gap": "2h"}})
    ).max_recovery_gap == timedelta(hours=2)

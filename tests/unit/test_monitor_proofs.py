"""Issue 12.8: ``verify_within`` and ``drill_within`` count from the oldest unproven backup.

Manifests are written into a real backup directory and judged at chosen times;
the state transitions go through the real ``monitor``; ``verify_after_backup =
"level1"`` through a real SQLite backup.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from migration_guard.backup import create, list_backups
from migration_guard.backup.settings import backup_settings
from migration_guard.config import Config
from migration_guard.errors import ConfigError
from migration_guard.monitoring.health import CheckResult, run_checks
from migration_guard.monitoring.monitor import monitor
from tests.unit.test_backup_trust_logic import NOW, write_manifest
from tests.unit.test_pins import backup_dir  # noqa: F401 - fixture

SHOP = "mysql+pymysql://app@db/shop"
CRM = "mysql+pymysql://app@db/crm"
#: Only the proofs can fail: the other checks are switched off or generous.
ONLY_PROOFS = {"max_age": "1000d", "verify_within": "35d", "drill_within": "35d"}


def judge(check: str, at: timedelta = timedelta(0), **monitor: object) -> CheckResult:
    config = Config(sections={"monitor": {**ONLY_PROOFS, **monitor}})
    _, results = run_checks(config, now=NOW + at, names=[check])
    (result,) = [r for r in results if r.check == check]
    return result


@pytest.mark.parametrize("check", ["verify_within", "drill_within"])
def test_a_fresh_backup_is_not_a_failure_but_an_old_unproven_one_is(
    backup_dir: Path,  # noqa: F811
    check: str,
) -> None:
    first = write_manifest(backup_dir, NOW - timedelta(hours=1), level=0)
    fresh = judge(check)
    assert not fresh.failed, fresh.summary
    assert first.id in fresh.summary and "not proven yet" in fresh.summary
    stale = judge(check, at=timedelta(days=36))
    assert stale.failed and first.id in stale.summary, stale.summary


def test_the_reread_after_writing_is_not_a_verification(backup_dir: Path) -> None:  # noqa: F811
    write_manifest(backup_dir, NOW - timedelta(days=40), level=0, ok=True)
    assert judge("verify_within").failed


def test_a_newer_verified_backup_of_the_source_proves_the_older_ones(
    backup_dir: Path,  # noqa: F811
) -> None:
    write_manifest(backup_dir, NOW - timedelta(days=90), level=None, ok=None)
    write_manifest(backup_dir, NOW - timedelta(days=60), level=0)
    proven = write_manifest(backup_dir, NOW - timedelta(days=50), level=1)
    result = judge("verify_within")
    assert not result.failed and proven.id in result.summary, result.summary
    # ...until a backup written after it waits longer than the window.
    later = write_manifest(backup_dir, NOW - timedelta(days=40), level=0)
    result = judge("verify_within")
    assert result.failed and later.id in result.summary
    assert f"backups verify {later.id}" in result.summary


def test_another_source_proves_nothing(backup_dir: Path) -> None:  # noqa: F811
    shop = write_manifest(backup_dir, NOW - timedelta(days=40), source=SHOP, level=0)
    write_manifest(backup_dir, NOW - timedelta(days=1), source=CRM, level=1)
    result = judge("verify_within")
    assert result.failed and shop.id in result.summary and "mysql://db/shop" in result.summary


def test_safety_backups_are_not_judged(backup_dir: Path) -> None:  # noqa: F811
    write_manifest(backup_dir, NOW - timedelta(days=40), backup_type="safety", level=0)
    assert not judge("verify_within").failed


def test_a_failed_last_verification_fails_even_inside_the_window(
    backup_dir: Path,  # noqa: F811
) -> None:
    failed = write_manifest(backup_dir, NOW - timedelta(days=2), level=1, ok=False)
    result = judge("verify_within")
    assert result.failed and failed.id in result.summary and "FAILED" in result.summary


def test_healthy_after_the_first_backup_then_the_stale_transition_is_reported(
    backup_dir: Path,  # noqa: F811
) -> None:
    write_manifest(backup_dir, NOW - timedelta(hours=1), level=0)
    config = Config(sections={"monitor": {**ONLY_PROOFS, "checks": ["verify_within"]}})

    first = monitor(config, now=NOW)
    assert first.healthy, [f.summary for f in first.failures]
    stale = monitor(config, now=NOW + timedelta(days=36))
    assert not stale.healthy and stale.transition == "unhealthy"
    assert [f.check for f in stale.failures] == ["verify_within"]


def test_verify_after_backup_level1_keeps_the_monitor_healthy(
    backup_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    database = tmp_path / "app.db"
    connection = sqlite3.connect(database)
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    connection.commit()
    connection.close()
    config = Config(sections={"backup": {"verify_after_backup": "level1"}})

    manifest = create(config, url=f"sqlite:///{database}")
    (stored,) = list_backups(config)
    assert stored.id == manifest.id
    assert stored.verification.level == 1 and stored.verification.ok is True
    checks = Config(sections={"monitor": ONLY_PROOFS, "backup": {"verify_after_backup": "level1"}})
    _, results = run_checks(checks, now=stored.finished + timedelta(days=100))
    (verify_within,) = [r for r in results if r.check == "verify_within"]
    assert not verify_within.failed, verify_within.summary
    assert not list(backup_dir.glob("*.pin")), "the verification left its pin behind"


def test_verify_after_backup_names_its_values() -> None:
    assert backup_settings(Config(sections={"backup": {"verify_after_backup": "level1"}}))
    with pytest.raises(ConfigError, match="quick, level1, full, off"):
        backup_settings(Config(sections={"backup": {"verify_after_backup": "level2"}}))

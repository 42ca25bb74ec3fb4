"""``backups prune [--dry-run]`` shows the (source, type) groups, in text and JSON."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.manifest import utc_now
from migration_guard.cli import main
from migration_guard.config import Config
from migration_guard.monitoring.eventlog import read_events
from tests.unit.test_backup_trust_logic import write_manifest
from tests.unit.test_pins import backup_dir, holder  # noqa: F401 - fixtures

SHOP = "mysql+pymysql://app@db/shop"
CRM = "mysql+pymysql://app@db/crm"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout + result.stderr


def a_week_of_policy(directory: Path) -> None:
    (directory / "pyproject.toml").write_text("[tool.migration_guard.backup]\nkeep_days = 7\n")


def test_dry_run_lists_the_groups_and_changes_nothing(backup_dir: Path) -> None:  # noqa: F811
    a_week_of_policy(backup_dir.parent)
    now = utc_now()
    old_shop = write_manifest(backup_dir, now - timedelta(days=40), source=SHOP, level=0)
    new_shop = write_manifest(backup_dir, now - timedelta(days=20), source=SHOP, level=0)
    critical = write_manifest(backup_dir, now - timedelta(days=30), backup_type="critical")
    crm = write_manifest(backup_dir, now - timedelta(days=50), source=CRM, level=1)
    files = sorted(p.name for p in backup_dir.iterdir())

    code, text = run("backups", "prune", "--dry-run")
    assert code == 0, text
    assert "mysql://db/shop (full): 1 kept, 1 would delete" in text
    assert "mysql://db/shop (critical): 1 kept, 0 would delete" in text
    assert "mysql://db/crm (full): 1 kept, 0 would delete" in text
    assert f"  would delete {old_shop.id}: not selected by the policy" in text
    assert f"  keep {crm.id}: newest backup of its group; newest verified backup" in text
    assert "1 backup(s) would delete, 3 kept" in text
    assert sorted(p.name for p in backup_dir.iterdir()) == files

    code, out = run("backups", "prune", "--dry-run", "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    assert data["dry_run"] is True and data["paused"] is None
    groups = {(g["source"], g["type"]): (g["keep"], g["delete"]) for g in data["groups"]}
    assert groups == {
        ("mysql://db/shop", "full"): ([new_shop.id], [old_shop.id]),
        ("mysql://db/shop", "critical"): ([critical.id], []),
        ("mysql://db/crm", "full"): ([crm.id], []),
    }
    assert [d["id"] for d in data["delete"]] == [old_shop.id]

    code, text = run("backups", "prune")
    assert code == 0, text
    assert f"  deleted {old_shop.id}" in text
    assert not Catalog(backup_dir).manifest_path(old_shop.id).exists()


def test_dry_run_says_a_restore_pauses_pruning(backup_dir: Path, holder) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    a_week_of_policy(backup_dir.parent)
    now = utc_now()
    old = write_manifest(backup_dir, now - timedelta(days=40))
    new = write_manifest(backup_dir, now - timedelta(days=20))
    process = holder(new.id, "restore")

    code, text = run("backups", "prune", "--dry-run")
    assert code == 0, text
    assert f"nothing is deleted now: a restore of {new.id} is running" in text
    assert f"pid {process.pid}" in text
    assert f"  keep {old.id}: pruning paused" in text
    code, text = run("backups", "prune")
    assert code == 0 and Catalog(backup_dir).manifest_path(old.id).exists(), text
    (event,) = read_events(Config(), subjects=["prune"])
    assert event.outcome == "success" and "prune deleted 0 backup(s) (paused: a restore" in (
        event.summary
    )

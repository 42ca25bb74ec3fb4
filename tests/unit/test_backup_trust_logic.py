"""Issue 12, "backups you can trust at the trust boundaries": retention and passphrases.

Retention is driven through the public ``prune(config, dry_run=True, now=...)``
over manifests written into a real backup directory; passphrases through real
(tiny SQLite) backups whose archive headers are read as docs/format.md describes.
The tests were written before the fixes and failed on the code of the time.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from migration_guard.backup import create, prune, verify
from migration_guard.backup.manifest import (
    Artifact,
    Manifest,
    Verification,
    format_time,
    new_backup_id,
)
from migration_guard.config import Config

KEY_VARIABLES = (
    "MIGRATION_GUARD_KEY",
    "MIGRATION_GUARD_KEY_FILE",
    "MIGRATION_GUARD_PASSPHRASE",
    "MIGRATION_GUARD_URL",
    "MIGRATION_GUARD_CONFIG",
)
NOW = datetime(2024, 6, 30, 23, 0, tzinfo=timezone.utc)
ARCHIVE_MAGIC = b"\x89MGARC\r\n"


@pytest.fixture
def backup_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "backups"
    directory.mkdir()
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(directory))
    monkeypatch.chdir(tmp_path)
    return directory


def write_manifest(
    backup_dir: Path,
    started: datetime,
    *,
    backup_type: str = "full",
    source: str = "mysql+pymysql://app@db/shop",
    level: int | None = 0,
    ok: bool | None = True,
) -> Manifest:
    """A backup's manifest in the catalog. ``level=0, ok=True`` is what
    verify_after_backup = "quick" records: the re-read right after writing."""
    backup_id = new_backup_id(backup_type, started)
    manifest = Manifest(
        id=backup_id,
        type=backup_type,
        source_url=source,
        dialect="mysql",
        started_at=format_time(started),
        finished_at=format_time(started + timedelta(minutes=2)),
        artifact=Artifact(f"{backup_id}.mgb", 10, "0" * 64, "zstd", None, "mysql-sql"),
        backend="mysqldump",
        tool_version="0.1.0",
        created_by="cron@db",
        verification=Verification(
            last_verified_at=format_time(started + timedelta(minutes=3))
            if ok is not None
            else None,
            level=level,
            ok=ok,
        ),
    )
    (backup_dir / f"{backup_id}.manifest.json").write_text(manifest.to_json())
    (backup_dir / f"{backup_id}.mgb").write_bytes(b"x" * 10)
    return manifest


def policy(**settings: Any) -> Config:
    return Config(sections={"backup": settings})


# -- 4. retention per (source, type) -----------------------------------------------------------
def test_nightly_full_and_evening_critical_each_get_their_own_slots(backup_dir: Path) -> None:
    fulls: list[Manifest] = []
    for days_ago in range(120):
        day = (NOW - timedelta(days=days_ago)).replace(hour=0, minute=0)
        fulls.append(write_manifest(backup_dir, day.replace(hour=2)))
        write_manifest(backup_dir, day.replace(hour=20), backup_type="critical")
    settings = policy(keep_days=7, keep_daily=14, keep_weekly=8, keep_monthly=4)

    plan = prune(settings, dry_run=True, now=NOW)
    kept = set(plan.keep_ids)
    cutoff = NOW - timedelta(days=7)
    old_fulls_kept = [m for m in fulls if m.id in kept and m.started < cutoff]
    assert old_fulls_kept, "no full backup older than keep_days survives"
    by_day = {m.started.date(): m for m in fulls}
    recent_days = sorted(by_day, reverse=True)[:14]
    missing_days = [str(d) for d in recent_days if by_day[d].id not in kept]
    assert not missing_days, f"daily slots without their full backup: {missing_days}"
    months = sorted({m.started.strftime("%Y-%m") for m in fulls}, reverse=True)[:4]
    kept_months = {m.started.strftime("%Y-%m") for m in old_fulls_kept}
    assert set(months) <= kept_months, f"monthly full backups kept for {sorted(kept_months)}"


def test_newest_full_verified_at_level_one_is_never_pruned(backup_dir: Path) -> None:
    checked = write_manifest(backup_dir, NOW - timedelta(days=60), level=1, ok=True)
    write_manifest(backup_dir, NOW - timedelta(days=40), level=0, ok=True)  # quick re-read only
    write_manifest(backup_dir, NOW - timedelta(days=1), level=None, ok=None)  # never verified

    plan = prune(policy(keep_days=7), dry_run=True, now=NOW)
    assert checked.id in plan.keep_ids, dict(plan.delete).get(checked.id)


def test_newest_verified_full_of_each_source_is_never_pruned(backup_dir: Path) -> None:
    shop = write_manifest(
        backup_dir, NOW - timedelta(days=30), source="mysql+pymysql://app@db/shop", level=1
    )
    write_manifest(
        backup_dir, NOW - timedelta(days=10), source="mysql+pymysql://app@db/crm", level=1
    )

    plan = prune(policy(keep_days=7), dry_run=True, now=NOW)
    assert shop.id in plan.keep_ids, dict(plan.delete).get(shop.id)


def test_a_critical_subset_does_not_replace_the_verified_full_backup(backup_dir: Path) -> None:
    full = write_manifest(backup_dir, NOW - timedelta(days=20), level=1)
    for days_ago in range(3):
        write_manifest(
            backup_dir, NOW - timedelta(days=days_ago, hours=1), backup_type="critical", level=1
        )

    plan = prune(policy(keep_days=7), dry_run=True, now=NOW)
    assert full.id in plan.keep_ids, dict(plan.delete).get(full.id)


# -- 6. passphrases ------------------------------------------------------------------------------
def archive_header(path: Path) -> dict[str, Any]:
    """The JSON header of an archive (docs/format.md, "Layout")."""
    data = path.read_bytes()
    assert data[:8] == ARCHIVE_MAGIC
    (length,) = struct.unpack(">I", data[10:14])
    header: dict[str, Any] = json.loads(data[14 : 14 + length])
    return header


def tiny_sqlite(path: Path) -> str:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("INSERT INTO t (name) VALUES ('x')")
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def test_passphrase_archives_have_their_own_salt_and_fingerprint(
    backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", "correct horse battery staple")
    source = tiny_sqlite(tmp_path / "app.db")
    config = Config()
    first = create(config, url=source)
    second = create(config, url=source)
    assert first.encrypted and second.encrypted
    one = archive_header(backup_dir / f"{first.id}.mgb")["encryption"]
    two = archive_header(backup_dir / f"{second.id}.mgb")["encryption"]
    assert one["key_kind"] == two["key_kind"] == "passphrase"

    assert one["kdf"]["salt"] != two["kdf"]["salt"], "the same scrypt salt in every archive"
    assert one["key_fingerprint"] != two["key_fingerprint"], "a passphrase-wide verifier"
    fingerprints = [m.artifact.encryption.key_fingerprint for m in (first, second)]  # type: ignore[union-attr]
    assert fingerprints[0] is None or fingerprints[0] != fingerprints[1]
    assert verify(config, first.id).ok and verify(config, second.id).ok


def test_passphrase_scrypt_cost_is_at_least_two_to_the_seventeenth(
    backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", "correct horse battery staple")
    backup = create(Config(), url=tiny_sqlite(tmp_path / "app.db"))
    kdf = archive_header(backup_dir / f"{backup.id}.mgb")["encryption"]["kdf"]
    assert kdf["name"] == "scrypt"
    assert kdf["n"] >= 2**17, kdf

"""Manifest round trips, ids, URL redaction and the on-disk catalog."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.backup import catalog as catalog_module
from migration_guard.backup.catalog import Catalog, atomic_write_bytes, resolve_backup_dir
from migration_guard.backup.manifest import (
    Artifact,
    Encryption,
    Manifest,
    ManifestError,
    TableEntry,
    Verification,
    format_time,
    is_backup_id,
    new_backup_id,
    parse_time,
    redact_url,
)
from migration_guard.config import Config
from migration_guard.errors import UnknownBackupError


def sample(backup_id: str | None = None, *, started: datetime | None = None) -> Manifest:
    started = started or datetime(2024, 5, 1, 8, 30, tzinfo=timezone.utc)
    return Manifest(
        id=backup_id or new_backup_id("full", started),
        type="full",
        source_url=redact_url("mysql+pymysql://app:s3cret@db.example/shop"),
        dialect="mysql",
        started_at=format_time(started),
        finished_at=format_time(started + timedelta(seconds=3)),
        artifact=Artifact(
            file="x.mgb",
            size=123,
            sha256="ab" * 32,
            compression="zstd",
            encryption=Encryption(key_fingerprint="mgk1:abcd"),
            stream_format="mysql-sql",
            plain_size=456,
        ),
        backend="mysqldump",
        tool_version="0.1.0",
        created_by="me@host",
        server_version="11.4.2-MariaDB",
        binlog={"file": "bin.000003", "position": 1234, "gtid": "0-1-42"},
        tables={
            "customers": TableEntry(rows=10, checksum=987654, size=16384, ddl_sha256="ff" * 32),
            "orders": TableEntry(ref="20240401T000000Z-full-abcdef"),
        },
        objects={"views": ["v_sales"], "triggers": 2},
        labels={"revision": "abc123"},
        verification=Verification(last_verified_at=format_time(started), level=1, ok=True),
    )


def test_manifest_round_trip_and_reference_entries() -> None:
    manifest = sample()
    text = manifest.to_json()
    data = json.loads(text)
    assert data["schema_version"] == 1
    assert data["tables"]["orders"] == {"ref": "20240401T000000Z-full-abcdef"}
    assert data["tables"]["customers"]["rows"] == 10
    assert data["artifact"]["encryption"]["algorithm"] == "AES-256-GCM-STREAM"
    assert Manifest.from_json(text) == manifest
    assert manifest.referenced_ids() == {"20240401T000000Z-full-abcdef"}


def test_source_url_never_contains_the_password() -> None:
    manifest = sample()
    assert "s3cret" not in manifest.to_json()
    assert "***" not in manifest.source_url
    assert manifest.source_url == "mysql+pymysql://app@db.example/shop"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "not a migration-guard manifest"),
        ('{"kind": "migration-guard-manifest", "schema_version": 99}', "newer"),
        ('{"kind": "migration-guard-manifest", "schema_version": 1}', "malformed"),
    ],
)
def test_bad_manifests_are_named(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(text, source="x.manifest.json")


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_ids_sort_like_their_time(moment: datetime) -> None:
    moment = moment.replace(tzinfo=timezone.utc, microsecond=0)
    later = moment + timedelta(seconds=1)
    first, second = new_backup_id("full", moment), new_backup_id("safety", later)
    assert is_backup_id(first) and is_backup_id(second)
    assert first < second
    assert parse_time(format_time(moment)) == moment


def test_backup_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIGRATION_GUARD_BACKUP_DIR", raising=False)
    config = Config(source=str(tmp_path / "pyproject.toml"))
    assert resolve_backup_dir(config) == tmp_path / ".migration-guard" / "backups"
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path / "elsewhere"))
    assert resolve_backup_dir(config) == tmp_path / "elsewhere"


def test_only_backups_with_a_manifest_are_listed(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    older = sample(started=datetime(2024, 1, 1, tzinfo=timezone.utc))
    newer = sample(started=datetime(2024, 2, 1, tzinfo=timezone.utc))
    for manifest in (older, newer):
        catalog.archive_path(manifest.id).write_bytes(b"data")
        catalog.write_manifest(manifest)
    orphan = new_backup_id("full")
    catalog.archive_path(orphan).write_bytes(b"archive without manifest")
    assert [m.id for m in catalog.list()] == [newer.id, older.id]
    assert catalog.get(newer.id) == newer
    assert catalog.get(newer.id[:20]).id == newer.id
    with pytest.raises(UnknownBackupError, match=newer.id):
        catalog.get(orphan)


def test_unknown_and_ambiguous_ids(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    first = sample(started=datetime(2024, 1, 1, tzinfo=timezone.utc))
    second = sample(started=datetime(2024, 1, 2, tzinfo=timezone.utc))
    catalog.write_manifest(first)
    catalog.write_manifest(second)
    with pytest.raises(UnknownBackupError, match="most recent"):
        catalog.get("nope")
    with pytest.raises(UnknownBackupError, match="ambiguous"):
        catalog.get("2024")
    with pytest.raises(UnknownBackupError, match=r"\(none\)"):
        Catalog(tmp_path / "empty").get("x")


def test_broken_manifest_is_skipped_or_raised_when_strict(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    good = sample()
    catalog.write_manifest(good)
    (tmp_path / f"{new_backup_id('full')}.manifest.json").write_text("{broken")
    assert [m.id for m in catalog.list()] == [good.id]
    assert catalog.problems and "not valid JSON" in catalog.problems[0]
    with pytest.raises(ManifestError):
        catalog.list(strict=True)


def test_update_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    manifest = sample()
    catalog.write_manifest(manifest)
    manifest.verification = Verification(level=2, ok=False, details=["checksum differs"])
    catalog.update(manifest)
    assert catalog.get(manifest.id).verification.details == ["checksum differs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{manifest.id}.manifest.json"]
    assert (tmp_path / f"{manifest.id}.manifest.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(UnknownBackupError):
        catalog.update(sample())


def test_atomic_write_keeps_old_content_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "file"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_leftovers_of_killed_runs_are_cleaned(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    dead_id = new_backup_id("full")
    partial = catalog.partial_path(dead_id)
    partial.write_bytes(b"half an archive")
    tmp_manifest = tmp_path / f"{dead_id}.manifest.json.999.tmp"
    tmp_manifest.write_text("{")
    stale_lock = catalog.lock_path(dead_id)
    stale_lock.write_text("999999999")
    past = catalog_module.PROCESS_START - 60
    for path in (partial, tmp_manifest):
        os.utime(path, (past, past))
    removed = catalog.cleanup_leftovers()
    assert sorted(p.name for p in removed) == sorted([partial.name, tmp_manifest.name])
    assert list(tmp_path.iterdir()) == []


def test_live_or_young_leftovers_are_not_touched(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    live_id = new_backup_id("full")
    young_id = new_backup_id("full")
    past = catalog_module.PROCESS_START - 60
    with catalog.lock(live_id):
        catalog.partial_path(live_id).write_bytes(b"being written")
        os.utime(catalog.partial_path(live_id), (past, past))
        catalog.partial_path(young_id).write_bytes(b"sibling run started after us")
        os.utime(catalog.partial_path(young_id), (time.time(), time.time()))
        assert catalog.cleanup_leftovers() == []
        assert catalog.partial_path(live_id).exists()
    assert catalog.partial_path(young_id).exists()
    assert not catalog.lock_path(live_id).exists()


def test_delete_removes_manifest_and_archive(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    manifest = sample()
    catalog.archive_path(manifest.id).write_bytes(b"x")
    catalog.write_manifest(manifest)
    catalog.delete(manifest.id)
    assert catalog.list() == []
    assert list(tmp_path.iterdir()) == []

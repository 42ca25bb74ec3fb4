"""Offsite copies under S3 Object Lock (``offsite_lock_days``), against moto's S3 server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.storage import open_storage
from migration_guard.backup.storage.s3 import S3Storage
from migration_guard.config import OFFSITE_ENV, OFFSITE_LOCK_DAYS_ENV, load_config
from tests.conftest import unique_name, use_s3_endpoint
from tests.db.test_offsite import (
    _aged_prune,
    _backup,
    _random_database,
    _run,
    _url,
    make_project,
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_project(tmp_path, monkeypatch)


@pytest.fixture
def locked_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A bucket created with Object Lock (and so versioning) on the test S3 server."""
    use_s3_endpoint(monkeypatch, s3_endpoint)
    name = unique_name("mg-lock").replace("_", "-")
    boto3.client("s3").create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def _lock_days(monkeypatch: pytest.MonkeyPatch, location: str, days: int = 30) -> None:
    monkeypatch.setenv(OFFSITE_ENV, location)
    monkeypatch.setenv(OFFSITE_LOCK_DAYS_ENV, str(days))


def _assert_locked(bucket: str, key: str, days: int = 30) -> str:
    answer = boto3.client("s3").head_object(Bucket=bucket, Key=key)
    assert answer["ObjectLockMode"] == "COMPLIANCE"
    expected = datetime.now(timezone.utc) + timedelta(days=days)
    assert abs(answer["ObjectLockRetainUntilDate"] - expected) < timedelta(hours=1)
    return str(answer["VersionId"])


def test_a_locked_copy_refuses_deletion(
    project: Path, locked_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{locked_bucket}/p"
    _lock_days(monkeypatch, location)

    backup_id = _backup(project)

    client = boto3.client("s3")
    for key in (f"p/{backup_id}.mgb", f"p/{backup_id}.manifest.json"):
        version = _assert_locked(locked_bucket, key)
        # The application's own credentials cannot remove the locked version...
        with pytest.raises(ClientError) as refused:
            client.delete_object(Bucket=locked_bucket, Key=key, VersionId=version)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        # ...nor hide it for good: the version is still there to read.
        assert client.get_object(Bucket=locked_bucket, Key=key, VersionId=version)["Body"].read()
    assert _run("backups", "verify", backup_id)[0] == 0


@pytest.mark.slow
def test_a_multipart_copy_is_locked_too(
    project: Path, locked_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lock_days(monkeypatch, f"s3://{locked_bucket}/p", days=7)
    monkeypatch.setattr(S3Storage, "part_size", 5 * 1024 * 1024)
    monkeypatch.setattr(S3Storage, "multipart_threshold", 5 * 1024 * 1024)
    _random_database(project / "big.db", 12)

    code, output = _run("backup", "--url", _url(project, "big.db"), "--format", "json")

    assert code == 0, output
    backup_id = json.loads(output)["id"]
    version = _assert_locked(locked_bucket, f"p/{backup_id}.mgb", days=7)
    with pytest.raises(ClientError):
        boto3.client("s3").delete_object(
            Bucket=locked_bucket, Key=f"p/{backup_id}.mgb", VersionId=version
        )
    # sync's copy (a file put, multipart as well) is locked the same way
    boto3.client("s3").delete_object(Bucket=locked_bucket, Key=f"p/{backup_id}.manifest.json")
    code, output = _run("backups", "sync")
    assert code == 0, output
    _assert_locked(locked_bucket, f"p/{backup_id}.manifest.json", days=7)


def test_retention_leaves_locked_copies_alone_and_says_so(
    project: Path, locked_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{locked_bucket}/p"
    _lock_days(monkeypatch, location)
    old = [_backup(project), _backup(project)]
    newest = _backup(project)
    until = boto3.client("s3").head_object(Bucket=locked_bucket, Key=f"p/{old[0]}.mgb")[
        "ObjectLockRetainUntilDate"
    ]

    notes = _aged_prune(project)  # 60 days from now by the policy; the lock is real time

    assert [m.id for m in Catalog.for_config(load_config()).list()] == [newest]
    for backup_id in old:
        (note,) = [n for n in notes if backup_id in n]
        assert note.startswith(f"kept the copy of {backup_id} in {location}: locked until ")
        assert until.strftime("%Y-%m-%dT%H:%M") in note
    names = open_storage(location).list()
    for backup_id in [*old, newest]:
        assert {f"{backup_id}.mgb", f"{backup_id}.manifest.json"} <= set(names)
    # No delete was even tried: no delete marker hides a copy.
    versions = boto3.client("s3").list_object_versions(Bucket=locked_bucket)
    assert not versions.get("DeleteMarkers")


def test_a_dry_run_prune_shows_the_locked_copies(
    project: Path, locked_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{locked_bucket}/p"
    _lock_days(monkeypatch, location)
    old = _backup(project)
    _backup(project)
    (project / "pyproject.toml").write_text(
        "[tool.migration_guard.backup]\nkeep_days = 0\n", encoding="utf-8"
    )

    code, output = _run("backups", "prune", "--dry-run")

    assert code == 0, output
    assert f"would delete {old}" in output
    assert f"offsite: kept the copy of {old} in {location}: locked until " in output
    code, output = _run("backups", "prune", "--dry-run", "--format", "json")
    assert any("locked until" in note for note in json.loads(output)["offsite"])
    assert old in Catalog.for_config(load_config()).ids()


def test_a_dry_run_prune_names_the_copies_it_would_delete(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{s3_bucket}/p"
    monkeypatch.setenv(OFFSITE_ENV, location)
    old = _backup(project)
    _backup(project)
    (project / "pyproject.toml").write_text(
        "[tool.migration_guard.backup]\nkeep_days = 0\n", encoding="utf-8"
    )

    code, output = _run("backups", "prune", "--dry-run")

    assert code == 0, output
    assert f"offsite: would delete the copy of {old} in {location}" in output
    assert f"{old}.mgb" in open_storage(location).list()


def test_lock_days_on_a_bucket_without_object_lock_fail_the_copy(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{s3_bucket}/p"
    _lock_days(monkeypatch, location)

    code, output = _run("backup", "--url", _url(project))

    assert code == 1, output
    assert location in output
    assert "has no Object Lock" in output
    assert "The local backup is kept" in output
    (kept,) = Catalog.for_config(load_config()).list()
    assert (project / "backups" / kept.artifact.file).is_file()
    client = boto3.client("s3")
    assert not client.list_objects_v2(Bucket=s3_bucket).get("Contents")
    assert not client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")


def test_lock_days_on_a_file_location_fail_the_copy(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lock_days(monkeypatch, f"file://{project / 'nas'}")

    code, output = _run("backup", "--url", _url(project))

    assert code == 1, output
    assert "cannot lock objects against deletion" in output
    assert not list((project / "nas").glob("*.mgb")) if (project / "nas").exists() else True


@pytest.mark.parametrize("value", ["-1", "thirty", "1.5"])
def test_bad_lock_days_are_a_usage_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(OFFSITE_LOCK_DAYS_ENV, value)

    code, output = _run("backups", "list")

    assert code == 2, output
    assert "offsite_lock_days" in output

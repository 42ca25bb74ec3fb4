"""Offsite copies uploaded while the archive is written (issue 14), against moto's S3 server.

The upload overlaps the dump, yet nothing is visible in the bucket before the
local backup is complete and verified; a failed or interrupted backup leaves
no object and no multipart upload behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import tracemalloc
from pathlib import Path
from typing import Any

import boto3
import pytest

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.engine import create
from migration_guard.backup.storage import open_storage
from migration_guard.backup.storage.s3 import S3Storage
from migration_guard.config import OFFSITE_ENV, load_config
from migration_guard.errors import BackupError
from tests.conftest import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    start_s3_server,
    stop_s3_server,
    use_s3_endpoint,
)
from tests.db.test_offsite import _backup, _random_database, _run, _url, make_project
from tests.db.test_ops import WebhookServer

PART = 5 * 1024 * 1024


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_project(tmp_path, monkeypatch)


def _objects(bucket: str) -> list[str]:
    answer = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return [str(item["Key"]) for item in answer.get("Contents", [])]


def _uploads(bucket: str) -> list[dict[str, Any]]:
    return list(boto3.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def _parts(bucket: str) -> int:
    client = boto3.client("s3")
    return sum(
        len(client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", []))
        for u in _uploads(bucket)
    )


@pytest.mark.slow
def test_the_upload_overlaps_the_dump_and_is_published_only_at_the_end(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(S3Storage, "part_size", PART)
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    _random_database(project / "big.db", 24)
    seen: list[tuple[int, list[str], int]] = []

    def look(done: int, _total: int | None) -> None:
        if done >= (len(seen) + 1) * 4 * PART // 2:  # every 10 MiB written
            # The dump waits here: a part that arrives now went up while it ran.
            deadline = time.monotonic() + 20
            while not _parts(s3_bucket) and time.monotonic() < deadline:
                time.sleep(0.05)
            seen.append((done, _objects(s3_bucket), _parts(s3_bucket)))

    manifest = create(load_config(), url=_url(project, "big.db"), progress=look, compress="none")

    assert seen, "the dump reported no progress"
    assert all(objects == [] for _done, objects, _parts in seen)  # nothing visible meanwhile
    assert max(parts for _done, _objects, parts in seen) >= 1  # parts went up during the dump
    assert _objects(s3_bucket) == [f"p/{manifest.id}.manifest.json", f"p/{manifest.id}.mgb"]
    assert not _uploads(s3_bucket)
    with open_storage(f"s3://{s3_bucket}/p").get(f"{manifest.id}.mgb") as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == manifest.artifact.sha256


@pytest.mark.slow
@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_a_backup_that_fails_during_the_dump_leaves_nothing_offsite(
    project: Path,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    interruption: type[BaseException],
) -> None:
    monkeypatch.setattr(S3Storage, "part_size", PART)
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    _random_database(project / "big.db", 24)
    parts_before_failure: list[int] = []

    def fail_late(done: int, _total: int | None) -> None:
        if done > 4 * PART and not parts_before_failure:
            deadline = time.monotonic() + 20
            while not _parts(s3_bucket) and time.monotonic() < deadline:
                time.sleep(0.05)  # the parts written so far are on their way up
            parts_before_failure.append(_parts(s3_bucket))
            raise interruption("stopped in the middle of the dump")

    with pytest.raises(interruption):
        create(load_config(), url=_url(project, "big.db"), progress=fail_late, compress="none")

    assert parts_before_failure and parts_before_failure[0] >= 1
    assert _objects(s3_bucket) == []
    assert _uploads(s3_bucket) == []  # aborted: no stored part remains
    assert Catalog.for_config(load_config()).list() == []


def test_a_backup_whose_verification_fails_is_never_published_offsite(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.backup import creation

    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    (project / "pyproject.toml").write_text(
        '[tool.migration_guard.backup]\nverify_after_backup = "level1"\n', encoding="utf-8"
    )

    def failing_verify(config: Any, backup_id: str, **_: Any) -> None:
        catalog = Catalog.for_config(config)
        manifest = catalog.get(backup_id)
        manifest.verification.ok = False
        manifest.verification.details = ["injected: the archive does not read back"]
        catalog.update(manifest)

    monkeypatch.setattr(creation, "verify", failing_verify)

    with pytest.raises(BackupError, match="verification after the backup failed"):
        create(load_config(), url=_url(project))

    assert _objects(s3_bucket) == []
    assert _uploads(s3_bucket) == []


@pytest.mark.slow
def test_a_100_mb_archive_streams_in_parts_without_being_held_in_memory(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(S3Storage, "part_size", PART)
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    _random_database(project / "big.db", 100)  # incompressible: the archive is ~100 MB too
    uploaded: list[int] = []
    original = S3Storage._upload_part

    def counting(
        self: S3Storage, key: str, upload_id: str, number: int, chunk: bytes
    ) -> dict[str, Any]:
        uploaded.append(len(chunk))
        return original(self, key, upload_id, number, chunk)

    monkeypatch.setattr(S3Storage, "_upload_part", counting)
    config = load_config()

    def traced(url: str) -> tuple[Any, int]:
        tracemalloc.start()
        try:
            made = create(config, url=url, compress="none")
            return made, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    _small, baseline = traced(_url(project))  # a few KB: boto3's own memory, the writer's
    uploaded.clear()
    manifest, peak = traced(_url(project, "big.db"))

    size = manifest.artifact.size
    assert size > 100 * 1024 * 1024
    assert len(uploaded) == math.ceil(size / PART)
    assert sum(uploaded) == size and max(uploaded) == PART
    # At most a few parts in memory (filling, queued, on the wire), never the archive.
    growth = peak - baseline
    assert growth < 6 * PART, f"{growth >> 20} MiB more than a tiny backup, archive {size >> 20}"
    info = open_storage(f"s3://{s3_bucket}/p").head(f"{manifest.id}.mgb")
    assert info is not None and info.size == size
    assert not _uploads(s3_bucket)
    assert _run("backups", "verify", manifest.id)[0] == 0


def test_drill_runs_from_the_offsite_copy_when_the_local_one_is_gone(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    backup_id = _backup(project)
    shutil.rmtree(project / "backups")

    code, output = _run("drill", "--url", "sqlite://", "--format", "json")

    assert code == 0, output
    result = json.loads(output)
    assert (result["id"], result["ok"]) == (backup_id, True)


def test_drill_of_a_named_backup_fetches_its_copy(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    first = _backup(project)
    _backup(project)
    (project / "backups" / f"{first}.mgb").unlink()
    (project / "backups" / f"{first}.manifest.json").unlink()

    code, output = _run("drill", "--url", "sqlite://", "--id", first[:25], "--format", "json")

    assert code == 0, output
    assert json.loads(output)["id"] == first


def test_a_failed_copy_reaches_the_webhook_without_credentials(
    project: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3_endpoint(monkeypatch, s3_endpoint)
    location = "s3://no-such-bucket-mg/p"
    monkeypatch.setenv(OFFSITE_ENV, location)
    webhook = WebhookServer()
    try:
        (project / "pyproject.toml").write_text(
            f'[tool.migration_guard.notify]\nwebhook = "{webhook.url}"\n', encoding="utf-8"
        )
        code, output = _run("backup", "--url", _url(project))
    finally:
        webhook.close()

    assert code == 1, output
    assert location in output
    (event,) = [e for e in webhook.received if e["event"] == "offsite.failure"]
    assert event["data"]["locations"] == [location]
    assert event["backup_id"] == Catalog.for_config(load_config()).list()[0].id
    text = json.dumps(webhook.received) + output
    assert S3_SECRET_KEY not in text and S3_ACCESS_KEY not in text


def test_refused_credentials_keep_the_local_backup_and_name_the_location(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This server checks credentials (moto's IAM emulation): the test key is unknown to it.
    process, endpoint = start_s3_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        use_s3_endpoint(monkeypatch, endpoint)
        location = "s3://any-bucket/p"
        monkeypatch.setenv(OFFSITE_ENV, location)

        code, output = _run("backup", "--url", _url(project))
    finally:
        stop_s3_server(process)

    assert code == 1, output
    assert location in output
    assert "InvalidAccessKeyId" in output or "403" in output or "Forbidden" in output, output
    assert S3_SECRET_KEY not in output and S3_ACCESS_KEY not in output
    assert len(Catalog.for_config(load_config()).list()) == 1

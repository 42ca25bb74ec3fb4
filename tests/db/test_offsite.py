"""Offsite copies (issue 14) against a real S3-protocol server: moto's, on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.storage import STORAGES, open_storage
from migration_guard.backup.storage.s3 import S3Storage
from migration_guard.cli import main
from migration_guard.config import OFFSITE_ENV, load_config
from tests.conftest import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    start_s3_server,
    stop_s3_server,
    use_s3_endpoint,
)

ENVIRONMENT = (
    "MIGRATION_GUARD_KEY",
    "MIGRATION_GUARD_KEY_FILE",
    "MIGRATION_GUARD_PASSPHRASE",
    "MIGRATION_GUARD_URL",
    "MIGRATION_GUARD_CONFIG",
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_project(tmp_path, monkeypatch)


def make_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory with a SQLite database of 200 rows and its backup directory."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("MIGRATION_GUARD_KEY", _key())
    monkeypatch.chdir(tmp_path)
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
        db.executemany(
            "INSERT INTO customers VALUES (?, ?)", [(i, f"c{i}@example.com") for i in range(200)]
        )
    return tmp_path


def _key() -> str:
    from migration_guard.backup.engine import keygen

    return keygen()


def _url(project: Path, name: str = "app.db") -> str:
    return f"sqlite:///{project / name}"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _backup(project: Path) -> str:
    code, output = _run("backup", "--url", _url(project), "--format", "json")
    assert code == 0, output
    backup_id: str = json.loads(output)["id"]
    return backup_id


def test_storage_registry_has_file_and_s3() -> None:
    assert {"file", "s3"} <= set(STORAGES.names())
    assert open_storage("/tmp/somewhere").url == "/tmp/somewhere"


def test_backup_is_copied_to_every_location(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{s3_bucket}/prod/app"
    directory = project / "second-copy"
    monkeypatch.setenv(OFFSITE_ENV, f"{location}, file://{directory}")

    backup_id = _backup(project)

    manifest = Catalog.for_config(load_config()).get(backup_id)
    for where in (location, f"file://{directory}"):
        storage = open_storage(where)
        assert storage.list() == [f"{backup_id}.manifest.json", f"{backup_id}.mgb"]
        info = storage.head(f"{backup_id}.mgb")
        assert info is not None
        assert info.size == manifest.artifact.size
        # Uploaded while written: S3 takes metadata before the digest is known, so the
        # archive's SHA-256 is the manifest's, and the object must match it byte for byte.
        assert info.sha256 in (None, manifest.artifact.sha256)
        with storage.get(f"{backup_id}.mgb") as stream:
            assert hashlib.sha256(stream.read()).hexdigest() == manifest.artifact.sha256
        manifest_info = storage.head(f"{backup_id}.manifest.json")
        local_manifest = project / "backups" / f"{backup_id}.manifest.json"
        assert manifest_info is not None
        assert manifest_info.sha256 == hashlib.sha256(local_manifest.read_bytes()).hexdigest()
    code, output = _run("backups", "verify", backup_id)
    assert code == 0, output
    assert f"{location}/{backup_id}.mgb: {manifest.artifact.size} bytes, SHA-256 matches" in output


def test_restore_after_the_local_directory_is_deleted(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    backup_id = _backup(project)
    shutil.rmtree(project / "backups")

    code, output = _run("restore", backup_id[:20], "--url", _url(project, "restored.db"), "--yes")

    assert code == 0, output
    with sqlite3.connect(project / "restored.db") as db:
        assert db.execute("SELECT count(*), max(email) FROM customers").fetchone() == (
            200,
            "c9@example.com",
        )
    assert (project / "backups" / f"{backup_id}.mgb").is_file()


def test_verify_after_the_local_archive_is_deleted(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    backup_id = _backup(project)
    (project / "backups" / f"{backup_id}.mgb").unlink()

    code, output = _run("backups", "verify", backup_id)

    assert code == 0, output
    assert "SHA-256 matches" in output


def _flip_byte_in_bucket(bucket: str, key: str) -> None:

    client = boto3.client("s3")
    answer = client.get_object(Bucket=bucket, Key=key)
    data = bytearray(answer["Body"].read())
    data[len(data) // 2] ^= 0x01
    # The recorded metadata stays: only reading the object back can catch this.
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data), Metadata=answer["Metadata"])


def test_a_flipped_byte_in_the_bucket_fails_verify_naming_the_copy(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{s3_bucket}/p"
    monkeypatch.setenv(OFFSITE_ENV, location)
    backup_id = _backup(project)
    _flip_byte_in_bucket(s3_bucket, f"p/{backup_id}.mgb")

    code, output = _run("backups", "verify", backup_id)

    assert code == 1, output
    assert f"{location}/{backup_id}.mgb: SHA-256 differs from the manifest" in output


def test_a_tampered_copy_is_never_restored_from(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    backup_id = _backup(project)
    _flip_byte_in_bucket(s3_bucket, f"p/{backup_id}.mgb")
    shutil.rmtree(project / "backups")

    code, output = _run("restore", backup_id, "--url", _url(project, "restored.db"), "--yes")

    assert code == 2, output  # unknown backup: no copy verified
    assert f"unknown backup id {backup_id!r}" in output
    assert not (project / "backups" / f"{backup_id}.mgb").exists()
    assert not (project / "restored.db").exists()


def test_a_missing_object_fails_verify_naming_the_copy(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:

    location = f"s3://{s3_bucket}/p"
    monkeypatch.setenv(OFFSITE_ENV, location)
    backup_id = _backup(project)
    boto3.client("s3").delete_object(Bucket=s3_bucket, Key=f"p/{backup_id}.mgb")

    code, output = _run("backups", "verify", backup_id)

    assert code == 1, output
    assert f"{location}/{backup_id}.mgb is missing" in output


def test_a_failed_upload_keeps_the_local_backup_exits_1_and_reports(
    project: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.monitoring.eventlog import read_events

    use_s3_endpoint(monkeypatch, s3_endpoint)
    location = "s3://no-such-bucket-mg/p"
    monkeypatch.setenv(OFFSITE_ENV, location)

    code, output = _run("backup", "--url", _url(project))

    assert code == 1, output
    assert location in output
    assert "The local backup is kept" in output
    assert "migration-guard backups sync" in output
    config = load_config()
    (kept,) = Catalog.for_config(config).list()
    code, verified = _run("backups", "verify", kept.id)  # the local copy itself is whole
    assert "archive intact" in verified
    (event,) = read_events(config, subjects=["offsite"])
    assert event.name == "offsite.failure"
    assert event.backup_id == kept.id
    assert event.data["locations"] == [location]


def _random_database(path: Path, megabytes: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        db.executemany(
            "INSERT INTO blobs VALUES (?, ?)",
            [(i, os.urandom(1024 * 1024)) for i in range(megabytes)],
        )


@pytest.mark.slow
def test_a_server_killed_during_a_multipart_upload(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    process, endpoint = start_s3_server()
    try:
        use_s3_endpoint(monkeypatch, endpoint)
        boto3.client("s3").create_bucket(Bucket="doomed")
        monkeypatch.setattr(S3Storage, "multipart_threshold", 5 * 1024 * 1024)
        monkeypatch.setattr(S3Storage, "part_size", 5 * 1024 * 1024)
        monkeypatch.setenv(OFFSITE_ENV, "s3://doomed/p")
        _random_database(project / "big.db", 40)
        killed = threading.Event()
        kills: list[int] = []

        def kill_once_an_upload_runs() -> None:
            client = boto3.client("s3")
            while not killed.is_set():
                try:
                    if client.list_multipart_uploads(Bucket="doomed").get("Uploads"):
                        os.kill(process.pid, signal.SIGKILL)  # type: ignore[attr-defined]
                        kills.append(1)
                        killed.set()
                except Exception:
                    return
                time.sleep(0.005)

        watcher = threading.Thread(target=kill_once_an_upload_runs, daemon=True)
        watcher.start()
        code, output = _run("backup", "--url", _url(project, "big.db"))
        killed.set()
        watcher.join(5)
    finally:
        stop_s3_server(process)

    assert kills, "the upload finished before the server could be killed"
    assert code == 1, output
    assert "s3://doomed/p" in output
    (kept,) = Catalog.for_config(load_config()).list()
    assert (project / "backups" / kept.artifact.file).stat().st_size == kept.artifact.size


@pytest.mark.slow
def test_an_interrupted_multipart_upload_is_aborted(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(S3Storage, "part_size", 5 * 1024 * 1024)
    source = project / "archive.bin"
    source.write_bytes(os.urandom(12 * 1024 * 1024))
    storage = S3Storage(f"s3://{s3_bucket}/p")
    storage.multipart_threshold = 5 * 1024 * 1024
    reads = 0
    original = S3Storage._read_part

    def interrupted_after_one_part(self: S3Storage, handle):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        if reads == 2:
            raise KeyboardInterrupt  # Ctrl-C between two parts
        return original(self, handle)

    monkeypatch.setattr(S3Storage, "_read_part", interrupted_after_one_part)
    with pytest.raises(KeyboardInterrupt):
        storage.put("x.mgb", source, sha256="0" * 64)

    client = boto3.client("s3")
    assert not client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
    assert storage.head("x.mgb") is None


@pytest.mark.slow
def test_the_multipart_path_stores_the_whole_file(project: Path, s3_bucket: str) -> None:
    import hashlib

    source = project / "archive.bin"
    source.write_bytes(os.urandom(11 * 1024 * 1024 + 123))
    storage = S3Storage(f"s3://{s3_bucket}/p")
    storage.multipart_threshold = storage.part_size = 5 * 1024 * 1024
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    storage.put("x.mgb", source, sha256=digest)

    info = storage.head("x.mgb")
    assert info is not None
    assert (info.size, info.sha256) == (source.stat().st_size, digest)
    with storage.get("x.mgb") as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == digest


def test_credentials_never_reach_any_output(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    outputs = []
    backup_id = _backup(project)
    outputs.append(_run("backups", "verify", backup_id)[1])
    outputs.append(_run("backups", "list", "--format", "json")[1])
    monkeypatch.setenv(OFFSITE_ENV, "s3://no-such-bucket-mg/p")
    outputs.append(_run("backup", "--url", _url(project))[1])
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    outputs.append(_run("backup", "--url", _url(project))[1])
    written = [p.read_bytes().decode("utf-8", "replace") for p in project.rglob("*") if p.is_file()]
    for text in outputs + written:
        assert S3_SECRET_KEY not in text
        assert S3_ACCESS_KEY not in text
    assert "no-such-bucket-mg" in outputs[2]
    assert "127.0.0.1:9" in outputs[3]


def test_credentials_in_an_offsite_url_are_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OFFSITE_ENV, "s3://AKIAX:topsecretvalue@bucket/p")

    code, output = _run("backup", "--url", _url(project))

    assert code == 2
    assert "must not carry credentials" in output
    assert "topsecretvalue" not in output


def test_an_unreachable_bucket_never_blocks_a_restore(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.monitoring.eventlog import read_events

    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    backup_id = _backup(project)
    with sqlite3.connect(project / "app.db") as db:
        db.execute("DELETE FROM customers WHERE id < 100")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the bucket is gone

    code, output = _run("restore", backup_id, "--url", _url(project), "--yes")

    assert code == 0, output
    with sqlite3.connect(project / "app.db") as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (200,)
    config = load_config()
    safety = [m for m in Catalog.for_config(config).list() if m.type == "safety"]
    assert len(safety) == 1  # the target's state before the restore, kept locally
    (event,) = read_events(config, subjects=["offsite"])
    assert event.backup_id == safety[0].id


def test_full_verification_after_the_backup_then_the_copies(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "pyproject.toml").write_text(
        f'[tool.migration_guard]\noffsite = ["s3://{s3_bucket}/p"]\n'
        '[tool.migration_guard.backup]\nverify_after_backup = "full"\n',
        encoding="utf-8",
    )

    backup_id = _backup(project)

    assert open_storage(f"s3://{s3_bucket}/p").list() == [
        f"{backup_id}.manifest.json",
        f"{backup_id}.mgb",
    ]


def test_list_names_every_location_of_each_backup(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:

    location = f"s3://{s3_bucket}/p"
    monkeypatch.setenv(OFFSITE_ENV, location)
    first = _backup(project)
    second = _backup(project)
    boto3.client("s3").delete_object(Bucket=s3_bucket, Key=f"p/{first}.manifest.json")

    code, output = _run("backups", "list", "--format", "json")

    assert code == 0, output
    locations = {item["id"]: item["locations"] for item in json.loads(output)}
    local = str(project / "backups")
    assert locations == {first: [local], second: [local, location]}


def test_a_backup_whose_copy_failed_stays_listed_locally(
    project: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3_endpoint(monkeypatch, s3_endpoint)
    monkeypatch.setenv(OFFSITE_ENV, "s3://no-such-bucket-mg/p")
    assert _run("backup", "--url", _url(project))[0] == 1

    result = CliRunner().invoke(main, ["backups", "list", "--format", "json"])

    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)
    assert item["locations"] == [str(project / "backups")]
    assert "cannot list the offsite copies in s3://no-such-bucket-mg/p" in result.stderr


def test_sync_copies_what_a_failed_upload_left_missing(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{s3_bucket}/p"
    monkeypatch.setenv(OFFSITE_ENV, location)
    copied = _backup(project)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the endpoint is down
    assert _run("backup", "--url", _url(project))[0] == 1
    code, output = _run("backups", "sync")
    assert code == 1
    assert "FAILED s3://" in output
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # up again
    (missing,) = [m.id for m in Catalog.for_config(load_config()).list() if m.id != copied]

    code, output = _run("backups", "sync", "--format", "json")

    assert code == 0, output
    assert json.loads(output)["copied"] == [{"id": missing, "location": location}]
    assert _run("backups", "verify", missing)[0] == 0
    assert json.loads(_run("backups", "sync", "--format", "json")[1])["copied"] == []


def test_sync_without_a_location_is_a_usage_error(project: Path) -> None:
    code, output = _run("backups", "sync")

    assert code == 2
    assert "no offsite location is configured" in output


def test_an_unknown_storage_is_refused_before_the_backup(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OFFSITE_ENV, "gs://bucket/p")

    code, output = _run("backup", "--url", _url(project))

    assert code == 2
    assert "unknown storage 'gs'; known storages: file, s3" in output
    assert Catalog.for_config(load_config()).list() == []


def test_an_s3_location_without_a_bucket_is_refused_before_the_backup(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OFFSITE_ENV, "s3:///prefix-only")

    code, output = _run("backup", "--url", _url(project))

    assert code == 2
    assert "write s3://BUCKET/PREFIX" in output
    assert Catalog.for_config(load_config()).list() == []


def _aged_prune(project: Path) -> list[str]:
    from datetime import timedelta

    from migration_guard.backup.engine import prune
    from migration_guard.backup.manifest import utc_now

    (project / "pyproject.toml").write_text(
        "[tool.migration_guard.backup]\nkeep_days = 7\n", encoding="utf-8"
    )
    plan = prune(load_config(), now=utc_now() + timedelta(days=60))
    return plan.offsite


def test_retention_prunes_the_copies_in_every_location(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{s3_bucket}/p"
    mounted = f"file://{project / 'nas'}"
    monkeypatch.setenv(OFFSITE_ENV, f"{location},{mounted}")
    old = [_backup(project), _backup(project)]
    newest = _backup(project)

    notes = _aged_prune(project)

    assert [m.id for m in Catalog.for_config(load_config()).list()] == [newest]
    for where in (location, mounted):
        assert open_storage(where).list() == [f"{newest}.manifest.json", f"{newest}.mgb"]
        assert all(f"deleted the copy of {i} in {where}" in notes for i in old)


def test_retention_keeps_a_copy_it_cannot_delete_and_says_so(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = f"s3://{s3_bucket}/p"
    monkeypatch.setenv(OFFSITE_ENV, location)
    old = _backup(project)
    _backup(project)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the storage refuses

    (note,) = _aged_prune(project)

    assert note.startswith(f"copies in {location} kept: cannot list")
    assert old not in Catalog.for_config(load_config()).ids()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    assert f"{old}.mgb" in open_storage(location).list()


def _offsite_check(output: str) -> dict[str, object]:
    data = json.loads(output)
    results = data["checks"] if isinstance(data, dict) else data
    (check,) = [c for c in results if c["check"] == "offsite_copies"]
    return dict(check)


def test_monitor_fails_while_the_newest_backup_lacks_a_copy(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:

    location = f"s3://{s3_bucket}/p"
    monkeypatch.setenv(OFFSITE_ENV, location)
    backup_id = _backup(project)
    assert _offsite_check(_run("monitor", "--format", "json")[1])["status"] == "ok"
    boto3.client("s3").delete_object(Bucket=s3_bucket, Key=f"p/{backup_id}.mgb")

    code, output = _run("monitor", "--format", "json")

    assert code == 1, output
    check = _offsite_check(output)
    assert check["status"] == "failed"
    assert f"no copy in {location}" in str(check["summary"])
    assert _run("backups", "sync")[0] == 0
    assert _offsite_check(_run("monitor", "--format", "json")[1])["status"] == "ok"

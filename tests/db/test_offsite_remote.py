"""``backup_dir = "s3://BUCKET/PREFIX"``: backups kept only in object storage (issue 14).

The local directory is then a cache of manifests and state; the archive goes
straight from the archive writer into the upload, and an operation that reads
an archive fetches it and removes it afterwards.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.engine import create
from migration_guard.backup.storage import open_storage
from migration_guard.config import BACKUP_DIR_ENV, OFFSITE_ENV, load_config
from tests.conftest import MYSQL_ADMIN_URL, unique_name
from tests.db.test_offsite import _backup, _random_database, _run, _url, make_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_project(tmp_path, monkeypatch)


@pytest.fixture
def remote(project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    location = f"s3://{s3_bucket}/prod/app"
    monkeypatch.setenv(BACKUP_DIR_ENV, location)
    return location


def _archives_on_disk(project: Path) -> list[Path]:
    return [p for p in project.rglob("*") if ".mgb" in p.name]


def _keys(bucket: str) -> list[str]:
    answer = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(str(item["Key"]) for item in answer.get("Contents", []))


def test_backup_list_verify_restore_with_backup_dir_in_s3(
    project: Path, remote: str, s3_bucket: str
) -> None:
    backup_id = _backup(project)

    assert _keys(s3_bucket) == [
        f"prod/app/{backup_id}.manifest.json",
        f"prod/app/{backup_id}.mgb",
    ]
    assert _archives_on_disk(project) == []  # no archive is kept locally
    code, output = _run("backups", "list", "--format", "json")
    assert code == 0, output
    (item,) = json.loads(output)
    assert (item["id"], item["locations"]) == (backup_id, [remote])

    code, output = _run("backups", "verify", backup_id)
    assert code == 0, output
    assert f"{remote}/{backup_id}.mgb" in output and "SHA-256 matches" in output
    assert _archives_on_disk(project) == []

    code, output = _run("restore", backup_id, "--url", _url(project, "restored.db"), "--yes")
    assert code == 0, output
    with sqlite3.connect(project / "restored.db") as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (200,)
    assert _archives_on_disk(project) == []


def test_a_wiped_cache_is_rebuilt_from_the_bucket(
    project: Path, remote: str, s3_bucket: str
) -> None:
    first = _backup(project)
    second = _backup(project)
    shutil.rmtree(project / ".migration-guard")

    code, output = _run("backups", "list", "--format", "json")

    assert code == 0, output
    assert [item["id"] for item in json.loads(output)] == [second, first]
    code, output = _run("restore", first, "--url", _url(project, "restored.db"), "--yes")
    assert code == 0, output
    code, output = _run("drill", "--url", "sqlite://", "--format", "json")
    assert code == 0, output
    assert json.loads(output)["id"] == second


@pytest.mark.slow
def test_local_scratch_holds_no_archive_while_the_backup_runs(
    project: Path, remote: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.backup.storage.s3 import S3Storage

    monkeypatch.setattr(S3Storage, "part_size", 5 * 1024 * 1024)
    _random_database(project / "big.db", 20)
    largest: list[int] = [0]

    def look(_done: int, _total: int | None) -> None:
        sizes = [p.stat().st_size for p in (project / ".migration-guard").rglob("*") if p.is_file()]
        largest[0] = max([largest[0], *sizes])

    manifest = create(load_config(), url=_url(project, "big.db"), progress=look)

    assert manifest.artifact.size > 20 * 1024 * 1024
    assert largest[0] < 1024 * 1024  # manifests and state only
    assert _keys(s3_bucket)[-1] == f"prod/app/{manifest.id}.mgb"


def test_retention_prunes_the_bucket(project: Path, remote: str, s3_bucket: str) -> None:
    from tests.db.test_offsite import _aged_prune

    old = _backup(project)
    newest = _backup(project)

    notes = _aged_prune(project)

    assert f"deleted the copy of {old} in {remote}" in notes
    assert _keys(s3_bucket) == [f"prod/app/{newest}.manifest.json", f"prod/app/{newest}.mgb"]
    assert Catalog.for_config(load_config()).ids() == [newest]


def test_an_unreachable_backup_dir_fails_the_backup_and_keeps_nothing(
    project: Path, remote: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens

    code, output = _run("backup", "--url", _url(project))

    assert code == 1, output
    assert remote in output
    assert "Nothing was kept" in output
    assert Catalog.for_config(load_config()).ids() == []


def test_an_offsite_copy_beside_a_backup_dir_in_s3(
    project: Path, remote: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounted = f"file://{project / 'nas'}"
    monkeypatch.setenv(OFFSITE_ENV, mounted)

    backup_id = _backup(project)

    assert open_storage(mounted).list() == [f"{backup_id}.manifest.json", f"{backup_id}.mgb"]
    (item,) = json.loads(_run("backups", "list", "--format", "json")[1])
    assert item["locations"] == [remote, mounted]


@pytest.fixture
def mysql_project(mysql_admin_engine: sa.Engine) -> Iterator[str]:
    name = unique_name("mg_remote")
    url = f"{MYSQL_ADMIN_URL.rstrip('/')}/{name}?charset=utf8mb4"
    with mysql_admin_engine.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE `{name}`"))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL)"
            )
            connection.execute(
                sa.text("INSERT INTO orders VALUES (:i, :n)"),
                [{"i": i, "n": f"order {i}"} for i in range(500)],
            )
        yield url
    finally:
        engine.dispose()
        with mysql_admin_engine.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.mark.mysql
def test_mariadb_backup_and_restore_with_backup_dir_in_s3(
    project: Path, remote: str, mysql_project: str
) -> None:
    code, output = _run("backup", "--url", mysql_project, "--format", "json")
    assert code == 0, output
    backup_id = json.loads(output)["id"]
    assert _archives_on_disk(project) == []
    engine = sa.create_engine(mysql_project)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM orders WHERE id >= 100")

        assert _run("backups", "verify", backup_id)[0] == 0
        code, output = _run("restore", backup_id, "--url", mysql_project, "--yes")

        assert code == 0, output
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM orders").scalar() == 500
    finally:
        engine.dispose()
    assert _archives_on_disk(project) == []

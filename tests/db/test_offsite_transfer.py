"""How an offsite copy travels (issue 14), against moto's S3 server.

Every request that carries data carries a CRC32 the server checks, even when
the AWS configuration asks for checksums only where an operation requires them;
the last part of a streamed archive goes up while the local copy is still being
checked (never published before).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from migration_guard.backup import publish
from migration_guard.backup.engine import create
from migration_guard.backup.storage import open_storage
from migration_guard.backup.storage.s3 import S3Storage
from migration_guard.config import OFFSITE_ENV, load_config
from tests.db.test_offsite import _random_database, _url, make_project
from tests.db.test_offsite_stream import _objects, _parts, _uploads

PART = 5 * 1024 * 1024


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_project(tmp_path, monkeypatch)


def _checksums(bucket: str, key: str) -> dict[str, Any]:
    """The checksum the server stored with the object."""
    answer = boto3.client("s3").get_object_attributes(
        Bucket=bucket, Key=key, ObjectAttributes=["Checksum"]
    )
    return dict(answer.get("Checksum", {}))


@pytest.mark.slow
def test_every_upload_carries_a_crc32_even_where_the_configuration_asks_for_none(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(S3Storage, "part_size", PART)
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    _random_database(project / "big.db", 12)

    manifest = create(load_config(), url=_url(project, "big.db"), compress="none")

    archive = _checksums(s3_bucket, f"p/{manifest.id}.mgb")
    # Each part was sent with its CRC32; the object keeps the checksum of the parts' CRC32s.
    assert archive.get("ChecksumType") == "COMPOSITE" and archive.get("ChecksumCRC32")
    assert "ChecksumCRC32" in _checksums(s3_bucket, f"p/{manifest.id}.manifest.json")
    # A file put whole (backups sync, small objects) carries one too.
    storage = open_storage(f"s3://{s3_bucket}/q")
    local = project / "backups" / f"{manifest.id}.manifest.json"
    storage.put("m.json", local, sha256="0" * 64)
    assert "ChecksumCRC32" in _checksums(s3_bucket, "q/m.json")


@pytest.mark.slow
def test_the_last_part_goes_up_while_the_local_copy_is_checked(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(S3Storage, "part_size", PART)
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    _random_database(project / "big.db", 12)  # three parts, the last one short
    seen: list[tuple[int, list[str]]] = []
    original = publish.quick_verification

    def checking(path: Path, manifest: Any) -> Any:
        # The archive is complete, its local check not yet done: every part may go up now.
        parts = -(-path.stat().st_size // PART)
        deadline = time.monotonic() + 10
        while _parts(s3_bucket) < parts and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.append((_parts(s3_bucket) - parts, _objects(s3_bucket)))
        return original(path, manifest)

    monkeypatch.setattr(publish, "quick_verification", checking)

    manifest = create(load_config(), url=_url(project, "big.db"), compress="none")

    assert seen == [(0, [])]  # all parts uploaded, nothing published yet
    assert _objects(s3_bucket) == [f"p/{manifest.id}.manifest.json", f"p/{manifest.id}.mgb"]
    assert not _uploads(s3_bucket)

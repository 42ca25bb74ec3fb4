"""How an offsite copy travels (issue 14), against moto's S3 server.

Every request that carries data carries one checksum the server checks: a CRC32
by default, a Content-MD5 where the AWS configuration asks for flexible checksums
only where an operation requires them (``when_required``, the setting that
S3-compatible services without them need); the last part of a streamed archive
goes up while the local copy is still being checked (never published before).
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


def _sent_headers(storage: S3Storage) -> list[tuple[str, dict[str, str]]]:
    """(operation, request headers) of every request ``storage``'s client sends from now."""
    sent: list[tuple[str, dict[str, str]]] = []

    def capture(request: Any, event_name: str, **_: Any) -> None:
        sent.append(
            (event_name.rsplit(".", 1)[-1], {k.lower(): v for k, v in request.headers.items()})
        )

    storage._client.meta.events.register("before-send.s3", capture)
    return sent


def _stream(storage: S3Storage, name: str, size: int) -> None:
    upload = storage.open_upload(name)
    assert upload is not None
    upload.write(bytes(range(256)) * (size // 256))
    upload.commit()


@pytest.mark.slow
def test_every_upload_carries_a_crc32_by_default(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(S3Storage, "part_size", PART)
    monkeypatch.setenv(OFFSITE_ENV, f"s3://{s3_bucket}/p")
    monkeypatch.delenv("AWS_REQUEST_CHECKSUM_CALCULATION", raising=False)
    _random_database(project / "big.db", 12)

    manifest = create(load_config(), url=_url(project, "big.db"), compress="none")

    archive = _checksums(s3_bucket, f"p/{manifest.id}.mgb")
    # Each part was sent with its CRC32; the object keeps the checksum of the parts' CRC32s.
    assert archive.get("ChecksumType") == "COMPOSITE" and archive.get("ChecksumCRC32")
    assert "ChecksumCRC32" in _checksums(s3_bucket, f"p/{manifest.id}.manifest.json")
    # A file put whole (backups sync, small objects) carries one too, and no MD5 beside it.
    storage = open_storage(f"s3://{s3_bucket}/q")
    assert isinstance(storage, S3Storage)
    sent = _sent_headers(storage)
    local = project / "backups" / f"{manifest.id}.manifest.json"
    storage.put("m.json", local, sha256="0" * 64)
    _stream(storage, "s.bin", 2 * PART + 1024)
    assert "ChecksumCRC32" in _checksums(s3_bucket, "q/m.json")
    carrying = [headers for operation, headers in sent if operation in ("PutObject", "UploadPart")]
    assert len(carrying) == 4
    assert all("x-amz-checksum-crc32" in h and "content-md5" not in h for h in carrying)


@pytest.mark.slow
def test_where_the_configuration_wants_no_flexible_checksums_uploads_carry_a_content_md5(
    project: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: an S3-compatible service that refuses ``x-amz-checksum-*`` headers is used
    with ``request_checksum_calculation = when_required``, as its documentation says;
    the copies must still go up, each request still checked by the server (Content-MD5)."""
    monkeypatch.setattr(S3Storage, "part_size", PART)
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    local = project / "small.bin"
    local.write_bytes(b"x" * 1000)
    storage = open_storage(f"s3://{s3_bucket}/q")
    assert isinstance(storage, S3Storage)
    sent = _sent_headers(storage)

    storage.put("small.bin", local, sha256="0" * 64)
    _stream(storage, "s.bin", 2 * PART + 1024)

    carrying = [(op, h) for op, h in sent if op in ("PutObject", "UploadPart")]
    assert [op for op, _ in carrying] == ["PutObject", "UploadPart", "UploadPart", "UploadPart"]
    for _operation, headers in carrying:
        assert "content-md5" in headers
        assert not any(name.startswith("x-amz-checksum") for name in headers)
        assert "x-amz-sdk-checksum-algorithm" not in headers
    created = [h for op, h in sent if op == "CreateMultipartUpload"]
    assert created and "x-amz-checksum-algorithm" not in created[0]
    assert _objects(s3_bucket) == ["q/s.bin", "q/small.bin"]
    with storage.get("s.bin") as stream:
        assert stream.read() == bytes(range(256)) * ((2 * PART + 1024) // 256)
    assert not _uploads(s3_bucket)


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

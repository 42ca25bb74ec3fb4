"""The ``s3`` storage: AWS S3 and S3-compatible services (MinIO, Ceph RGW, Garage, B2, R2).

Endpoint, region and credentials come only from the standard AWS
configuration exactly as boto3 reads it (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
profiles, instance roles); migration-guard's own configuration names only
the bucket and prefix, and no message carries a credential.

A file up to :data:`MULTIPART_THRESHOLD` is one ``PutObject`` streamed from
the open file; a larger one a multipart upload of :attr:`S3Storage.part_size`
parts, read one part at a time (never the whole file in memory). Every
request that carries data carries its CRC32 (``x-amz-checksum-crc32``), which
the server checks before it stores anything, so a part damaged in transit is
refused; a multipart upload is created with ``ChecksumAlgorithm=CRC32`` and
completed with every part's CRC32, so the stored object keeps a composite
checksum of its parts. No Content-MD5 is computed besides it (one checksum,
the cheaper one: see docs/performance.md). Where the AWS configuration says
``request_checksum_calculation = when_required`` (what S3-compatible services
without these flexible checksums ask their users to set), no ``x-amz-checksum``
header is sent and every request carries a Content-MD5 instead, which every
S3-compatible service checks. The end-to-end proof remains the SHA-256 of the
authenticated manifest, which ``backups verify`` reads back.

A multipart upload that fails or is interrupted, Ctrl-C included, is aborted
so that no half-written object or orphaned part is left behind. (A SIGKILL
cannot be caught: docs/backups.md recommends the bucket lifecycle rule that
removes incomplete uploads.) ``open_upload`` streams an archive while it is
written (:mod:`~migration_guard.backup.storage.s3upload`).

With a retention date (``offsite_lock_days``) every object is uploaded under
S3 Object Lock in *compliance* mode: until that date nobody, whoever's
credentials they hold, can delete or overwrite that version, and the
retention can be extended but never shortened. (Governance mode would let
anyone holding ``s3:BypassGovernanceRetention`` remove it, which is what an
attacker with stolen administrative credentials would use.) A service that
ignores the lock headers of a multipart upload gets the retention set
explicitly afterwards (``PutObjectRetention``); a bucket without Object Lock
is refused by :meth:`S3Storage.check_lock` before anything is uploaded.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import importlib.util
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from migration_guard.backup.storage.base import ObjectInfo, Storage, StorageError, Upload
from migration_guard.errors import ConfigError, ToolMissingError, translate

#: Files larger than this go up as a multipart upload.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
#: The size of one part (S3's minimum is 5 MiB for every part but the last): small enough
#: that the last part of a streamed upload, sent once the archive ends, is short.
PART_SIZE = 8 * 1024 * 1024
#: Parts of one streamed upload on the wire at once.
UPLOAD_THREADS = 2
#: The object metadata key that records the SHA-256 given to ``put``.
SHA256_METADATA = "sha256"
#: The Object Lock mode of locked uploads (see the module's docstring for why not governance).
LOCK_MODE = "COMPLIANCE"
#: The checksum every upload carries and the server verifies (see the module's docstring).
CHECKSUM = "CRC32"
#: botocore's setting (``AWS_REQUEST_CHECKSUM_CALCULATION``, ``request_checksum_calculation``
#: in the AWS config file) under which uploads carry a Content-MD5 instead of the CRC32.
CHECKSUMS_ONLY_WHEN_REQUIRED = "when_required"


_MISSING = "offsite copies in s3:// need boto3; install it with `pip install 'migration-guard[s3]'`"


def _require_boto3() -> None:
    """Fail (exit 2) when boto3 is not installed, without importing it (that takes a while:
    the import is left to the first request, which the upload makes beside the dump)."""
    if importlib.util.find_spec("boto3") is None:
        raise ToolMissingError(_MISSING)


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise ToolMissingError(_MISSING) from None
    return boto3


@functools.lru_cache(maxsize=1)
def _botocore_errors() -> tuple[type[BaseException], type[BaseException]]:
    """(BotoCoreError, ClientError), imported on first need."""
    _boto3()
    import botocore.exceptions

    return botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError


class S3Storage(Storage):
    """``s3://BUCKET/PREFIX``: objects are ``PREFIX/<name>`` in ``BUCKET``."""

    multipart_threshold = MULTIPART_THRESHOLD
    part_size = PART_SIZE
    #: Parts of a streamed upload sent side by side.
    upload_threads = UPLOAD_THREADS

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.username or parts.password:
            raise ConfigError(
                "an offsite location is not an S3 location; write s3://BUCKET/PREFIX "
                "(credentials come from the AWS configuration, never from the URL)",
                key="offsite",
            )
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        _require_boto3()
        #: The credentials boto3 found (filled on connecting), kept out of every message.
        self._secrets: list[str] = []
        self._connection: Any = None
        self._connecting = threading.Lock()

    @property
    def _client(self) -> Any:
        """The boto3 client, made on first use: opening a location costs no session."""
        with self._connecting:
            if self._connection is None:
                with self._failing(f"cannot use {self.url}"):
                    session = _boto3().session.Session()
                    self._secrets[:] = _credential_strings(session)
                    self._connection = session.client("s3")
            return self._connection

    @property
    def _errors(self) -> tuple[type[BaseException], ...]:
        return _botocore_errors()

    @property
    def _client_error(self) -> type[BaseException]:
        return _botocore_errors()[1]

    # -- helpers ---------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _failing(self, doing: str) -> contextlib.AbstractContextManager[None]:
        mapping: dict[type[BaseException], type[StorageError]] = dict.fromkeys(
            self._errors, StorageError
        )
        return translate(mapping, doing=doing, secrets=self._secrets)

    def _is_missing(self, exc: BaseException) -> bool:
        if not isinstance(exc, self._client_error):
            return False
        error = getattr(exc, "response", {}).get("Error", {})
        return str(error.get("Code")) in {"404", "NoSuchKey", "NotFound"}

    def _lock_arguments(self, retain_until: datetime | None) -> dict[str, Any]:
        if retain_until is None:
            return {}
        return {
            "ObjectLockMode": LOCK_MODE,
            "ObjectLockRetainUntilDate": retain_until.replace(microsecond=0),
        }

    def _create_multipart(
        self, key: str, metadata: dict[str, str], retain_until: datetime | None
    ) -> str:
        upload = self._client.create_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            Metadata=metadata,
            **self._flexible_checksum(),
            **self._lock_arguments(retain_until),
        )
        return str(upload["UploadId"])

    @functools.cached_property
    def _flexible_checksums(self) -> bool:
        """Whether requests carry the CRC32 (botocore's default) rather than a Content-MD5."""
        setting = getattr(self._client.meta.config, "request_checksum_calculation", None)
        return setting != CHECKSUMS_ONLY_WHEN_REQUIRED

    def _flexible_checksum(self) -> dict[str, str]:
        return {"ChecksumAlgorithm": CHECKSUM} if self._flexible_checksums else {}

    def _upload_part(self, key: str, upload_id: str, number: int, chunk: bytes) -> dict[str, Any]:
        """Send one part with its checksum; what ``CompleteMultipartUpload`` lists for it."""
        flexible = self._flexible_checksums
        checksum = (
            {"ChecksumAlgorithm": CHECKSUM}
            if flexible
            else {"ContentMD5": _content_md5(hashlib.md5(chunk, usedforsecurity=False))}
        )
        answer = self._client.upload_part(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=chunk,
            **checksum,
        )
        part = {"ETag": answer["ETag"], "PartNumber": number}
        if flexible:
            part["ChecksumCRC32"] = answer["ChecksumCRC32"]
        return part

    def _ensure_locked(self, key: str, version: str | None, retain_until: datetime) -> None:
        """Make sure the version just completed carries its retention (some services
        ignore the lock headers of a multipart upload); fail if it cannot."""
        version_argument = {"VersionId": version} if version else {}
        answer = self._client.head_object(Bucket=self.bucket, Key=key, **version_argument)
        until = answer.get("ObjectLockRetainUntilDate")
        if (
            answer.get("ObjectLockMode") == LOCK_MODE
            and until is not None
            and until >= (retain_until.replace(microsecond=0))
        ):
            return
        self._client.put_object_retention(
            Bucket=self.bucket,
            Key=key,
            Retention={"Mode": LOCK_MODE, "RetainUntilDate": retain_until.replace(microsecond=0)},
            **version_argument,
        )

    # -- the interface ---------------------------------------------------------------------
    def put(
        self, name: str, path: Path, *, sha256: str, retain_until: datetime | None = None
    ) -> None:
        key = self._key(name)
        size = path.stat().st_size
        metadata = {SHA256_METADATA: sha256}
        with self._failing(f"cannot upload {self.describe(name)}"):
            if size <= self.multipart_threshold:
                checksum = self._flexible_checksum() or {"ContentMD5": _file_md5(path)}
                with path.open("rb") as handle:
                    self._client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=handle,
                        Metadata=metadata,
                        **checksum,
                        **self._lock_arguments(retain_until),
                    )
                return
            self._put_multipart(key, path, metadata, retain_until)

    def open_upload(self, name: str, *, retain_until: datetime | None = None) -> Upload | None:
        from migration_guard.backup.storage.s3upload import S3StreamedUpload

        return S3StreamedUpload(self, name, retain_until=retain_until)

    def check_lock(self) -> None:
        with self._failing(f"cannot read the Object Lock configuration of {self.url}"):
            try:
                answer = self._client.get_object_lock_configuration(Bucket=self.bucket)
            except self._client_error as exc:
                code = str(getattr(exc, "response", {}).get("Error", {}).get("Code"))
                if code != "ObjectLockConfigurationNotFoundError":
                    raise
                answer = {}
        enabled = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            raise StorageError(
                f"the bucket of {self.url} has no Object Lock, so offsite_lock_days cannot "
                "protect the copies; create the bucket with Object Lock "
                "(aws s3api create-bucket --object-lock-enabled-for-bucket, see "
                "docs/backups.md) or remove offsite_lock_days"
            )

    def _put_multipart(
        self, key: str, path: Path, metadata: dict[str, str], retain_until: datetime | None
    ) -> None:
        upload_id = self._create_multipart(key, metadata, retain_until)
        try:
            parts = []
            with path.open("rb") as handle:
                number = 1
                while chunk := self._read_part(handle):
                    parts.append(self._upload_part(key, upload_id, number, chunk))
                    number += 1
            answer = self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Never leave a half-written upload (or its stored parts) behind.
            with contextlib.suppress(*self._errors):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        if retain_until is not None:
            self._ensure_locked(key, answer.get("VersionId"), retain_until)

    def _read_part(self, handle: BinaryIO) -> bytes:
        """The next part of the file: one part in memory at a time."""
        return handle.read(self.part_size)

    @contextlib.contextmanager
    def _open(self, name: str) -> Iterator[BinaryIO]:
        try:
            with self._failing(f"cannot read {self.describe(name)}"):
                answer = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
        except StorageError as exc:
            if exc.__cause__ is not None and self._is_missing(exc.__cause__):
                raise StorageError(f"{self.describe(name)} does not exist") from None
            raise
        body = answer["Body"]
        try:
            with self._failing(f"cannot read {self.describe(name)}"):
                yield body
        finally:
            body.close()

    def get(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._open(name)

    def head(self, name: str) -> ObjectInfo | None:
        try:
            with self._failing(f"cannot read {self.describe(name)}"):
                answer = self._client.head_object(Bucket=self.bucket, Key=self._key(name))
        except StorageError as exc:
            if exc.__cause__ is not None and self._is_missing(exc.__cause__):
                return None
            raise
        recorded = answer.get("Metadata", {}).get(SHA256_METADATA)
        locked = answer.get("ObjectLockMode") in {"COMPLIANCE", "GOVERNANCE"}
        return ObjectInfo(
            size=int(answer["ContentLength"]),
            sha256=recorded,
            retain_until=answer.get("ObjectLockRetainUntilDate") if locked else None,
        )

    def list(self) -> list[str]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        names: list[str] = []
        with self._failing(f"cannot list {self.url}"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    rest = str(item["Key"])[len(prefix) :]
                    if rest and "/" not in rest:
                        names.append(rest)
        return sorted(names)

    def delete(self, name: str) -> None:
        with self._failing(f"cannot delete {self.describe(name)}"):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(name))


def _content_md5(digest: Any) -> str:
    """The Content-MD5 header of a finished MD5 (base64 of the digest)."""
    return base64.b64encode(digest.digest()).decode("ascii")


def _file_md5(path: Path) -> str:
    """The Content-MD5 header of a file put whole (at most ``multipart_threshold`` bytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return _content_md5(digest)


def _credential_strings(session: Any) -> list[str]:
    """The credentials boto3 found, to be removed from any message that might echo them."""
    try:
        credentials = session.get_credentials()
    except Exception:  # a broken profile: boto3 reports it when the client is used
        return []
    if credentials is None:
        return []
    frozen = credentials.get_frozen_credentials()
    return [s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s]

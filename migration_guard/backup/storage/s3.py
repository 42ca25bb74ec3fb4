"""The ``s3`` storage: AWS S3 and S3-compatible services (MinIO, Ceph RGW, Garage, B2, R2).

Endpoint, region and credentials come only from the standard AWS
configuration exactly as boto3 reads it (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
profiles, instance roles); migration-guard's own configuration names only
the bucket and prefix, and no message carries a credential.

A file up to :data:`MULTIPART_THRESHOLD` is one ``PutObject`` streamed from
the open file; a larger one a multipart upload of :attr:`S3Storage.part_size`
parts, read one part at a time (never the whole file in memory). A multipart
upload that fails or is interrupted, Ctrl-C included, is aborted so that no
half-written object or orphaned part is left behind. (A SIGKILL cannot be
caught: docs/backups.md recommends the bucket lifecycle rule that removes
incomplete uploads.)
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from migration_guard.backup.storage.base import ObjectInfo, Storage, StorageError
from migration_guard.errors import ConfigError, ToolMissingError, translate

#: Files larger than this go up as a multipart upload.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
#: The size of one part (S3's minimum is 5 MiB for every part but the last).
PART_SIZE = 16 * 1024 * 1024
#: The object metadata key that records the SHA-256 given to ``put``.
SHA256_METADATA = "sha256"


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise ToolMissingError(
            "offsite copies in s3:// need boto3; install it with "
            "`pip install 'migration-guard[s3]'`"
        ) from None
    return boto3


class S3Storage(Storage):
    """``s3://BUCKET/PREFIX``: objects are ``PREFIX/<name>`` in ``BUCKET``."""

    multipart_threshold = MULTIPART_THRESHOLD
    part_size = PART_SIZE

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
        boto3 = _boto3()
        session = boto3.session.Session()
        self._secrets = _credential_strings(session)
        self._client = session.client("s3")
        import botocore.exceptions

        self._errors = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
        self._client_error = botocore.exceptions.ClientError

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
        error = exc.response.get("Error", {})
        return str(error.get("Code")) in {"404", "NoSuchKey", "NotFound"}

    # -- the interface ---------------------------------------------------------------------
    def put(self, name: str, path: Path, *, sha256: str) -> None:
        key = self._key(name)
        size = path.stat().st_size
        metadata = {SHA256_METADATA: sha256}
        with self._failing(f"cannot upload {self.describe(name)}"):
            if size <= self.multipart_threshold:
                with path.open("rb") as handle:
                    self._client.put_object(
                        Bucket=self.bucket, Key=key, Body=handle, Metadata=metadata
                    )
                return
            self._put_multipart(key, path, metadata)

    def _put_multipart(self, key: str, path: Path, metadata: dict[str, str]) -> None:
        upload = self._client.create_multipart_upload(
            Bucket=self.bucket, Key=key, Metadata=metadata
        )
        upload_id = upload["UploadId"]
        try:
            parts = []
            with path.open("rb") as handle:
                number = 1
                while chunk := self._read_part(handle):
                    answer = self._client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ContentMD5=_content_md5(chunk),
                    )
                    parts.append({"ETag": answer["ETag"], "PartNumber": number})
                    number += 1
            self._client.complete_multipart_upload(
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
        return ObjectInfo(size=int(answer["ContentLength"]), sha256=recorded)

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


def _content_md5(chunk: bytes) -> str:
    """The Content-MD5 header of a part, so that the server refuses a part damaged in transit."""
    import base64

    return base64.b64encode(hashlib.md5(chunk, usedforsecurity=False).digest()).decode("ascii")


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

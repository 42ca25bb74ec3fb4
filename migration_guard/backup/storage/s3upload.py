"""A multipart upload fed while the archive is being written (the ``s3`` storage's ``open_upload``).

The backup writes its archive through :meth:`S3StreamedUpload.write`; full
parts go through a queue of one to a thread that uploads them, so the upload
overlaps the dump and at most three parts are in memory (the one filling, the
one queued, the one on the wire). When the thread falls behind, ``write``
waits: the dump is slowed down, memory never grows.

Nothing is visible in the bucket before :meth:`~S3StreamedUpload.commit`
completes the multipart upload, and the caller commits only once the local
backup is complete and verified. A failure (endpoint down, credentials
refused, bucket missing) stops the uploads and aborts the multipart upload;
the dump goes on, and ``commit`` raises it. :meth:`~S3StreamedUpload.abort`
(the backup failed or was interrupted) aborts the multipart upload, so no
stored part remains.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from migration_guard.backup.storage.base import StorageError, Upload

if TYPE_CHECKING:
    from migration_guard.backup.storage.s3 import S3Storage

#: How long ``abort`` waits for the part on the wire before aborting the upload under it.
ABORT_WAIT = 30.0


class S3StreamedUpload(Upload):
    """``name`` in ``storage``, written part by part from a thread."""

    def __init__(
        self, storage: S3Storage, name: str, *, retain_until: datetime | None = None
    ) -> None:
        self._storage = storage
        self._name = name
        self._key = storage._key(name)
        self._retain_until = retain_until
        self._part_size = storage.part_size
        self._buffer = bytearray()
        self._parts: queue.Queue[bytes | None] = queue.Queue(maxsize=1)  # None: the end
        self._uploaded: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=f"mg-upload-{name}", daemon=True)
        self._thread.start()

    # -- the writer's side -----------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._stopped.is_set():
            return  # failed: the dump goes on, commit reports it
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            with memoryview(self._buffer) as view:
                part = bytes(view[: self._part_size])  # the one copy of the part
            del self._buffer[: self._part_size]
            self._hand_over(part)

    def _hand_over(self, part: bytes | None) -> None:
        while not self._stopped.is_set():
            try:
                self._parts.put(part, timeout=0.1)
                return
            except queue.Full:
                continue

    def commit(self) -> None:
        if not self._stopped.is_set():
            if self._buffer:
                self._hand_over(bytes(self._buffer))
                self._buffer = bytearray()
            self._hand_over(None)
        self._thread.join()
        storage = self._storage
        with storage._failing(f"cannot upload {storage.describe(self._name)}"):
            if self._error is not None:
                raise self._error
            if self._upload_id is None or not self._uploaded:
                raise StorageError(f"{storage.describe(self._name)}: nothing was uploaded")
            try:
                answer = storage._client.complete_multipart_upload(
                    Bucket=storage.bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._uploaded},
                )
            except BaseException:
                self._abort_upload()
                raise
            self._finished = True
            if self._retain_until is not None:
                storage._ensure_locked(self._key, answer.get("VersionId"), self._retain_until)

    def abort(self) -> None:
        self._stopped.set()
        self._thread.join(ABORT_WAIT)
        if not self._finished:
            self._abort_upload()

    # -- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        storage = self._storage
        try:
            self._upload_id = storage._create_multipart(self._key, {}, self._retain_until)
            number = 1
            while not self._stopped.is_set():
                try:
                    part = self._parts.get(timeout=0.1)
                except queue.Empty:
                    continue
                if part is None:
                    return
                etag = storage._upload_part(self._key, self._upload_id, number, part)
                self._uploaded.append({"ETag": etag, "PartNumber": number})
                number += 1
        except BaseException as exc:  # reported by commit; the dump must go on
            self._error = exc
            self._stopped.set()
            self._abort_upload()

    def _abort_upload(self) -> None:
        if self._upload_id is None:
            return
        storage = self._storage
        with contextlib.suppress(*storage._errors):
            storage._client.abort_multipart_upload(
                Bucket=storage.bucket, Key=self._key, UploadId=self._upload_id
            )

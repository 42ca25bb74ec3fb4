"""A multipart upload fed while the archive is being written (the ``s3`` storage's ``open_upload``).

The backup writes its archive through :meth:`S3StreamedUpload.write`; full
parts go through a queue of one to :attr:`~S3Storage.upload_threads` threads
that upload them side by side, so the upload overlaps the dump and at most
``upload_threads + 2`` parts are in memory (the one filling, the one queued,
those on the wire). When the threads fall behind, ``write`` waits: the dump is
slowed down, memory never grows. The archive's size is not known in advance,
so the part size doubles every :data:`PARTS_PER_SIZE` parts, which keeps S3's
limits far away (8 MiB parts: 8 GB, then 16 MiB parts...: 10,000 parts hold
more than the 5 TB an object may have, the largest part 4 GiB).

:meth:`~S3StreamedUpload.close` (the archive is complete) hands over the last,
short part without waiting, so it goes up while the backup fsyncs and checks
its local copy. Nothing is visible in the bucket before
:meth:`~S3StreamedUpload.commit` completes the multipart upload, and the
caller commits only once the local backup is complete and verified. A failure
(endpoint down, credentials refused, bucket missing) stops the uploads and
aborts the multipart upload; the dump goes on, and ``commit`` raises it.
:meth:`~S3StreamedUpload.abort` (the backup failed or was interrupted) aborts
the multipart upload, so no stored part remains.
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

#: How long ``abort`` waits for the parts on the wire before aborting the upload under them.
ABORT_WAIT = 30.0
#: The part size doubles after this many parts.
PARTS_PER_SIZE = 1000


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
        self._next_number = 1
        #: (part number, bytes, whether it holds a slot); None tells one thread that the
        #: parts are all handed over.
        self._parts: queue.Queue[tuple[int, bytes, bool] | None] = queue.Queue()
        #: One part may wait in the queue (``write`` takes the slot, a thread frees it);
        #: the last part and the ends, handed over by ``close``, do not wait for one.
        self._slot = threading.Semaphore(1)
        self._closed = False
        self._uploaded: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._created = threading.Event()
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._finished = False
        self._threads = [
            threading.Thread(target=self._run, name=f"mg-upload-{name}-{i}", daemon=True)
            for i in range(max(1, storage.upload_threads))
        ]
        for thread in self._threads:
            thread.start()

    # -- the writer's side -----------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._stopped.is_set():
            return  # failed: the dump goes on, commit reports it
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            size = self._part_size
            with memoryview(self._buffer) as view:
                part = bytes(view[:size])  # the one copy of the part
            del self._buffer[:size]
            self._hand_over(self._next_number, part)
            self._next_number += 1
            if (self._next_number - 1) % PARTS_PER_SIZE == 0:
                self._part_size *= 2

    def _hand_over(self, number: int, part: bytes) -> None:
        """Queue a full part once the one before it was taken (memory stays bounded)."""
        while not self._stopped.is_set():
            if self._slot.acquire(timeout=0.1):
                self._parts.put((number, part, True))
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stopped.is_set():
            return
        if self._buffer:
            self._parts.put((self._next_number, bytes(self._buffer), False))
            self._buffer = bytearray()
        for _thread in self._threads:
            self._parts.put(None)

    def commit(self) -> None:
        self.close()
        for thread in self._threads:
            thread.join()
        storage = self._storage
        with storage._failing(f"cannot upload {storage.describe(self._name)}"):
            if self._error is not None:
                raise self._error
            if self._upload_id is None or not self._uploaded:
                raise StorageError(f"{storage.describe(self._name)}: nothing was uploaded")
            parts = sorted(self._uploaded, key=lambda p: int(p["PartNumber"]))
            try:
                answer = storage._client.complete_multipart_upload(
                    Bucket=storage.bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
            except BaseException:
                self._abort_upload()
                raise
            self._finished = True
            if self._retain_until is not None:
                storage._ensure_locked(self._key, answer.get("VersionId"), self._retain_until)

    def abort(self) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join(ABORT_WAIT)
        if not self._finished:
            self._abort_upload()

    # -- the threads -----------------------------------------------------------------------
    def _run(self) -> None:
        storage = self._storage
        try:
            if self._threads[0] is threading.current_thread():
                self._upload_id = storage._create_multipart(self._key, {}, self._retain_until)
                self._created.set()
            while not self._created.wait(0.1):
                if self._stopped.is_set():
                    return
            while not self._stopped.is_set():
                try:
                    item = self._parts.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is None:
                    return
                number, part, held = item
                if held:
                    self._slot.release()
                assert self._upload_id is not None
                self._uploaded.append(
                    storage._upload_part(self._key, self._upload_id, number, part)
                )
        except BaseException as exc:  # reported by commit; the dump must go on
            self._error = self._error or exc
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

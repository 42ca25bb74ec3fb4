"""The decrypted plaintext of a pg_dump archive fed to the stdins of ``pg_restore``s.

One stream, read once, goes to every process that still reads it (:func:`tee`); the
archive's head, up to the end of its table of contents (all that post-data reads
later), also goes to a private scratch file, each chunk before any process reads it.
The rows never reach the disk. :func:`stream_into` is the usual load into an empty
database (every row through one ``pg_restore``); :mod:`.pg_split` feeds the same
stream to the parts of its split load.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy.engine import URL

from migration_guard.backup.backends.base import ByteCounter, Reader, read_chunks
from migration_guard.backup.backends.mysql_client import tool_process
from migration_guard.backup.backends.pg_load import (
    checked_head,
    restoring_stdin,
    scratch_file,
    write_scratch,
)


class Stopped(Exception):
    """Another part of the load failed (its error is the one reported)."""


class Exited(Exception):
    """A pg_restore failed on its own: its exit error (from its context) is reported."""

    def __init__(self, pid: int) -> None:
        super().__init__(pid)
        self.pid = pid


class Failures(Protocol):
    """The shared state of a load of several parts: the first failure stops them all."""

    def fail(self, exc: BaseException) -> None:
        """Record ``exc`` and stop every part."""

    def check(self) -> None:
        """Raise :class:`Stopped` once a part failed."""


def feed(
    feeds: list[subprocess.Popen[bytes]], chunk: bytes, load: Failures | None
) -> list[subprocess.Popen[bytes]]:
    """Write ``chunk`` to each process's stdin; those that stopped reading drop out.

    A process that stopped reading is given a moment to exit; one that failed stops
    the feeding of all (recorded in ``load``; else its context raises its error).
    """
    reading = []
    for process in feeds:
        assert process.stdin is not None
        try:
            process.stdin.write(chunk)
        except BrokenPipeError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            if process.returncode not in (None, 0):
                if load is not None:
                    load.fail(Exited(process.pid))
                raise Stopped from None
            continue
        if load is not None:
            load.check()
        reading.append(process)
    return reading


def tee(
    feeds: list[subprocess.Popen[bytes]],
    written: Iterable[bytes],
    stream: Iterator[bytes],
    handle: BinaryIO | None,
    progress: ByteCounter | None,
    load: Failures | None = None,
    *,
    until_done: bool = False,
    head_reader: subprocess.Popen[bytes] | None = None,
) -> None:
    """The chunks ``written`` (already in the file) and then those of ``stream`` to
    every process of ``feeds`` still reading; their stdins closed at the end.

    The stream's chunks also go to the file ``handle``, each before any process reads
    it: all of them, or (``head_reader``, one of ``feeds``) only while that process
    still reads; none when ``handle`` is None. ``until_done``: stop reading ``stream``
    once none reads any more.
    """
    reading = list(feeds)
    try:
        for chunk in written:
            reading = feed(reading, chunk, load)
        for chunk in stream:
            if handle is not None and (head_reader is None or head_reader in reading):
                write_scratch(handle, chunk)
            if reading:
                reading = feed(reading, chunk, load)
            if progress is not None:
                progress(0)  # lets a caller look at the running children (tests watch /proc)
            if until_done and not reading:
                break
    except Stopped:
        pass  # a failed part: its context, or the load, raises its error
    for process in feeds:
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()


def checked_stream(source: Reader) -> Iterator[bytes]:
    """The chunks of ``source``, its first checked to start a custom-format archive
    before anything runs on it."""
    chunks = read_chunks(source)
    return itertools.chain([checked_head(chunks)], chunks)


def toc_lister(
    tool: str, url: URL, stdout: int
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """``tool --list`` reading an archive on its stdin: it reads the table of contents
    at the head and stops, so the bytes it took are the head (its output to ``stdout``);
    its failure raises on leaving the context."""
    return tool_process([tool, "--list"], url, "restore into", stdin=subprocess.PIPE, stdout=stdout)


def stream_into(
    tool: str,
    command: list[str],
    url: URL,
    source: Reader,
    path: Path,
    extra_env: Mapping[str, str],
    progress: ByteCounter | None,
) -> None:
    """Run ``command`` (a ``pg_restore`` reading its stdin) on the plaintext of ``source``:
    every row through one ``pg_restore``, while the archive's head, up to the end of its
    table of contents (read by ``tool --list`` beside it), goes to the new
    private file ``path``. It may stop reading before the end (nothing after the rows
    is for it); its failure raises (its context's error).
    """
    stream = checked_stream(source)
    with (
        scratch_file(path) as handle,
        restoring_stdin(command, url, extra_env) as loading,
        toc_lister(tool, url, subprocess.DEVNULL) as lister,
    ):
        tee([loading, lister], (), stream, handle, progress, head_reader=lister)

"""Pins: a backup that is being restored or verified is never pruned.

A pin is a small JSON file ``<id>.<purpose>-<pid>-<hex>.pin`` in the backup
directory, written atomically (temp file, fsync, rename) when the operation
starts and removed when it ends. It names the process that holds it: its pid,
the host, the boot and the process start time, so that the pin of a process
that died (SIGKILL, power loss) is recognised as stale and ignored, even when
its pid has since been reused. A pin written on another host cannot be checked
from here and counts as live; a pin file that cannot be read counts as live
too (remove it by hand once you know its process is gone).

Prune reads the pins under an exclusive lock on ``prune.lock``; a pin is
created under a shared lock and the backup is looked up again once the pin
exists. A backup is therefore either pinned before prune looks, or already
gone before the operation starts: prune never deletes a backup under a
running restore or verification. While any restore runs, prune deletes
nothing at all (see :mod:`migration_guard.backup.pruning`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from migration_guard.backup.catalog import (
    Catalog,
    atomic_write_bytes,
    fsync_directory,
    pid_alive,
    remote_backup_dir,
)
from migration_guard.backup.manifest import format_time, utc_now
from migration_guard.errors import UnknownBackupError

if TYPE_CHECKING:
    from migration_guard.config import Config

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PIN_SUFFIX = ".pin"
#: Held exclusively by prune, shared by whoever creates a pin.
PRUNE_LOCK = "prune.lock"
#: What a pin may say it is for; a running ``restore`` pauses pruning altogether.
PURPOSES = ("restore", "verify")

log = logging.getLogger("migration_guard.backup")
_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Pin:
    """One pin file: who holds ``backup_id`` and why."""

    backup_id: str
    purpose: str
    path: Path
    pid: int | None = None
    host: str | None = None
    since: str | None = None
    #: Why the pin counts as live although it could not be checked (None: checked).
    unchecked: str | None = None

    def describe(self) -> str:
        if self.unchecked:
            return f"{self.purpose} ({self.unchecked}: {self.path.name})"
        return f"{self.purpose} by pid {self.pid} on {self.host} since {self.since}"


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), None elsewhere."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _holder_alive(data: dict[str, object]) -> bool:
    """Whether the process a pin names (on this host) is still the one that wrote it."""
    pid = data.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    boot = data.get("boot_id")
    if boot is not None and boot != _boot_id():
        return False  # written before the last reboot
    started = data.get("process_start")
    return started is None or started == _process_start(pid)


@contextlib.contextmanager
def _prune_lock(directory: Path, *, exclusive: bool) -> Iterator[None]:
    """``flock`` on ``prune.lock``: exclusive for prune, shared for creating a pin."""
    if fcntl is None or not directory.is_dir():  # pragma: no cover - Windows
        yield
        return
    descriptor = os.open(directory / PRUNE_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    handle: IO[bytes] = os.fdopen(descriptor, "r+b")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        handle.close()  # releases the lock


def prune_lock(directory: Path) -> contextlib.AbstractContextManager[None]:
    """Held by prune while it reads the pins and deletes: no pin appears meanwhile."""
    return _prune_lock(directory, exclusive=True)


def _read(path: Path, remove_stale: bool) -> Pin | None:
    """The pin at ``path`` when it is live, None when it is stale (then removed if asked)."""
    backup_id, _, rest = path.name.partition(".")
    purpose = rest.split("-", 1)[0] or "unknown"
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        return None  # removed by its process meanwhile
    except (OSError, ValueError):
        return Pin(backup_id, purpose, path, unchecked="unreadable pin file")
    host = data.get("host")
    pin = Pin(
        backup_id,
        str(data.get("purpose", purpose)),
        path,
        pid=data.get("pid") if isinstance(data.get("pid"), int) else None,
        host=str(host),
        since=str(data.get("since")),
    )
    if host != socket.gethostname():
        return dataclasses.replace(pin, unchecked=f"held on another host ({host})")
    if _holder_alive(data):
        return pin
    if remove_stale:
        with contextlib.suppress(OSError):
            path.unlink()  # the process died without removing its pin
    return None


def live_pins(directory: Path, *, remove_stale: bool = True) -> list[Pin]:
    """The pins of running operations in ``directory``; stale ones are removed (if asked)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    found = (_read(directory / name, remove_stale) for name in names if name.endswith(PIN_SUFFIX))
    return [pin for pin in found if pin is not None]


@contextlib.contextmanager
def pin(catalog: Catalog, backup_id: str, purpose: str) -> Iterator[Pin]:
    """Pin ``backup_id`` (a complete id) for the duration of the ``with`` block.

    Raises :class:`UnknownBackupError` when the backup no longer exists once the
    pin is in place (it was pruned before the operation could start).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown pin purpose {purpose!r}")
    pid = os.getpid()
    host = socket.gethostname()
    since = format_time(utc_now())
    path = catalog.path / f"{backup_id}.{purpose}-{pid}-{secrets.token_hex(4)}{PIN_SUFFIX}"
    record = {
        "backup_id": backup_id,
        "purpose": purpose,
        "pid": pid,
        "host": host,
        "boot_id": _boot_id(),
        "process_start": _process_start(pid),
        "since": since,
    }
    try:
        with _prune_lock(catalog.path, exclusive=False):
            atomic_write_bytes(path, json.dumps(record).encode("utf-8"))
    except OSError as exc:
        # A backup directory we may not write (a read-only mount) is one nobody here can
        # prune from either: the operation goes on, unpinned, and says so.
        log.warning(
            "could not pin backup %s for the %s (%s): a prune running meanwhile with "
            "more rights could delete it",
            backup_id,
            purpose,
            exc.strerror or type(exc).__name__,
        )
        yield Pin(backup_id, purpose, path, pid, host, since, unchecked="not pinned")
        return
    try:
        if not catalog.manifest_path(backup_id).exists():
            raise UnknownBackupError(
                f"backup {backup_id} was deleted (pruned?) before the {purpose} could start"
            )
        yield Pin(backup_id, purpose, path, pid, host, since)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        fsync_directory(catalog.path)


def pinning(
    purpose: str,
) -> Callable[
    [Callable[Concatenate[Config, str, _P], _R]], Callable[Concatenate[Config, str, _P], _R]
]:
    """Decorate ``operation(config, backup_id, ...)`` so that it runs with the backup pinned.

    The id (or unique prefix) is resolved first and the operation receives the
    complete id.
    """

    def decorate(
        operation: Callable[Concatenate[Config, str, _P], _R],
    ) -> Callable[Concatenate[Config, str, _P], _R]:
        def pinned(config: Config, backup_id: str, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            catalog = Catalog.for_config(config)
            if config.offsite:  # the local copy is gone: bring back an offsite one
                from migration_guard.backup.fetching import fetch_missing

                fetch_missing(config, catalog, backup_id)
            resolved = catalog.get(backup_id).id
            try:
                with pin(catalog, resolved, purpose):
                    return operation(config, resolved, *args, **kwargs)
            finally:
                if remote_backup_dir(config) is not None:
                    # backup_dir is in object storage: the cache keeps no archive.
                    with contextlib.suppress(OSError):
                        catalog.archive_path(resolved).unlink()

        functools.update_wrapper(pinned, operation)
        return pinned

    return decorate

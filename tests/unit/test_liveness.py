"""One answer to "is the process that holds this lock still running?", for the catalog's
backup locks and the scratch directories' owner files alike."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from migration_guard.backup import catalog as catalog_module
from migration_guard.backup import scratch
from migration_guard.backup.catalog import Catalog, pid_alive
from migration_guard.backup.manifest import new_backup_id

PAST = catalog_module.PROCESS_START - 600
NOBODY = 65534


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_pid_that_ended_is_dead_and_no_pid_is_no_process() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    # kill(0, 0) and kill(-1, 0) would signal process groups: never a live holder.
    assert not pid_alive(0)
    assert not pid_alive(-1)


def test_a_process_of_another_user_is_alive() -> None:
    """``kill(pid, 0)`` fails with EPERM for another user's process: it is running."""
    if os.geteuid() != 0:
        if os.stat("/proc/1").st_uid == os.geteuid():
            pytest.skip("no process of another user to ask about")
        assert pid_alive(1)
        return
    # As root every kill is permitted: ask from a child that gave up root, about this
    # (root's) process.
    parent = os.getpid()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 3
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                os.kill(parent, 0)
            except PermissionError:
                status = 0 if pid_alive(parent) else 1
            else:
                status = 2  # no EPERM: the premise of the test does not hold
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    assert os.WEXITSTATUS(status) == 0, {1: "judged dead", 2: "no EPERM"}.get(
        os.WEXITSTATUS(status), "child failed"
    )


@pytest.fixture
def without_flock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A platform without ``flock`` (Windows): the pid written in the lock file decides."""
    monkeypatch.setattr(catalog_module, "fcntl", None)


def scratch_left_by(holder: str, temp_dir: Path) -> Path:
    directory = temp_dir / f"{scratch.PREFIX}client-x1"
    directory.mkdir(mode=0o700)
    owner = directory / scratch.OWNER_FILE
    owner.write_text(holder)
    for path in (owner, directory):
        os.utime(path, (PAST, PAST))
    return directory


def partial_left_by(holder: str, catalog: Catalog) -> Path:
    backup_id = new_backup_id("full")
    partial = catalog.partial_path(backup_id)
    partial.write_bytes(b"half an archive")
    catalog.lock_path(backup_id).write_text(holder)
    for path in (partial, catalog.lock_path(backup_id)):
        os.utime(path, (PAST, PAST))
    return partial


@pytest.mark.parametrize(
    ("holder", "alive"),
    [("own", True), ("dead", False), ("0", False), ("", False), ("junk", False)],
)
def test_catalog_locks_and_scratch_owners_agree_on_who_is_alive(
    holder: str,
    alive: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    without_flock: None,
) -> None:
    text = {"own": str(os.getpid()), "dead": str(dead_pid())}.get(holder, holder)
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    catalog = Catalog(tmp_path / "backups")
    catalog.path.mkdir()

    directory = scratch_left_by(text, temp_dir)
    partial = partial_left_by(text, catalog)
    removed_scratch = scratch.remove_stale_scratch()
    removed_leftovers = catalog.cleanup_leftovers()

    assert directory.exists() is alive and (removed_scratch == []) is alive
    assert partial.exists() is alive and (removed_leftovers == []) is alive


def test_a_lock_file_that_cannot_be_opened_is_left_alone(tmp_path: Path) -> None:
    """A symlinked lock cannot tell who holds it: what it guards is kept."""
    catalog = Catalog(tmp_path)
    backup_id = new_backup_id("full")
    partial = catalog.partial_path(backup_id)
    partial.write_bytes(b"half an archive")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("1")
    catalog.lock_path(backup_id).symlink_to(elsewhere)
    os.utime(partial, (PAST, PAST))
    assert catalog_module.lock_is_live(catalog.lock_path(backup_id))
    assert catalog.cleanup_leftovers() == [] and partial.exists()

"""Issue 12 (hygiene): what a killed run leaves behind is removed by the next one, and
nothing a live run still owns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from migration_guard.backup import catalog as catalog_module
from migration_guard.backup import scratch
from migration_guard.backup.catalog import Catalog
from migration_guard.backup.manifest import new_backup_id
from tests.conftest import REPO_ROOT

PAST = catalog_module.PROCESS_START - 600


def backdate(*paths: Path) -> None:
    for path in paths:
        os.utime(path, (PAST, PAST))


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    monkeypatch.setenv("TMPDIR", str(directory))
    return directory


def holder(temp_dir: Path) -> subprocess.Popen[str]:
    """Another process that holds a scratch directory (with a secret in it) until killed."""
    code = textwrap.dedent(
        """
        import sys, time
        from migration_guard.backup.scratch import scratch_directory
        with scratch_directory("client") as directory:
            (directory / "client.cnf").write_text("[client]\\npassword=hunter2\\n")
            print(directory, flush=True)
            time.sleep(600)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp_dir), "PYTHONPATH": str(REPO_ROOT)},
    )
    return process


def test_scratch_directory_of_a_killed_process_is_removed_and_a_live_one_kept(
    temp_dir: Path,
) -> None:
    process = holder(temp_dir)
    try:
        assert process.stdout is not None
        directory = Path(process.stdout.readline().strip())
        assert (directory / "client.cnf").exists()
        assert directory.parent == temp_dir and directory.name.startswith("migration-guard-")
        assert oct(directory.stat().st_mode & 0o777) == "0o700"
        backdate(directory, directory / scratch.OWNER_FILE)
        assert scratch.remove_stale_scratch() == [], "the live owner's directory was removed"
        assert (directory / "client.cnf").exists()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert (directory / "client.cnf").exists(), "setup: SIGKILL left nothing behind"
    assert scratch.remove_stale_scratch() == [directory]
    assert not directory.exists()


def test_scratch_cleanup_leaves_young_foreign_and_unrelated_directories(temp_dir: Path) -> None:
    young = temp_dir / "migration-guard-sqlite-young"
    young.mkdir()
    unrelated = temp_dir / "something-else"
    unrelated.mkdir()
    backdate(unrelated)
    link = temp_dir / "migration-guard-link"
    link.symlink_to(unrelated)
    removed = scratch.remove_stale_scratch()
    assert removed == []
    assert young.exists() and unrelated.exists() and link.is_symlink()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        foreign = temp_dir / "migration-guard-client-foreign"
        foreign.mkdir()
        os.chown(foreign, 65534, 65534)
        backdate(foreign)
        assert scratch.remove_stale_scratch() == []
        assert foreign.exists()


def test_a_directory_we_did_not_make_is_never_removed_whatever_its_name(temp_dir: Path) -> None:
    """Found when the cleanup deleted a test server's live data directory that happened to
    be named ``migration-guard-mariadb-3307``: only directories with our owner file count."""
    foreign = temp_dir / "migration-guard-mariadb-3307"
    (foreign / "data").mkdir(parents=True)
    (foreign / "data" / "ibdata1").write_bytes(b"precious")
    backdate(foreign, foreign / "data", foreign / "data" / "ibdata1")
    assert scratch.remove_stale_scratch() == []
    assert (foreign / "data" / "ibdata1").read_bytes() == b"precious"


def test_scratch_directory_is_removed_on_exit_and_on_error(temp_dir: Path) -> None:
    with scratch.scratch_directory("sqlite") as directory:
        (directory / "backup.db").write_bytes(b"rows")
    assert not directory.exists()
    with pytest.raises(RuntimeError), scratch.scratch_directory("sqlite") as directory:
        raise RuntimeError("boom")
    assert not directory.exists()


# -- orphan archives in the catalog -----------------------------------------------------------
def test_orphan_archive_without_manifest_is_removed(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    orphan = catalog.archive_path(new_backup_id("full"))
    orphan.write_bytes(b"an archive whose manifest was never written")
    kept_id = new_backup_id("full")
    kept = catalog.archive_path(kept_id)
    kept.write_bytes(b"a real backup")
    catalog.manifest_path(kept_id).write_text("{}")
    foreign = tmp_path / "notes.mgb"
    foreign.write_bytes(b"not ours")
    backdate(orphan, kept, foreign)
    assert catalog.cleanup_leftovers() == [orphan]
    assert kept.exists() and foreign.exists() and not orphan.exists()


def test_orphan_archive_of_a_live_or_young_run_is_kept(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    live_id, young_id = new_backup_id("full"), new_backup_id("full")
    with catalog.lock(live_id):
        live = catalog.archive_path(live_id)
        live.write_bytes(b"published, manifest being written")
        backdate(live)
        young = catalog.archive_path(young_id)
        young.write_bytes(b"a sibling run's")
        os.utime(young, (time.time(), time.time()))
        assert catalog.cleanup_leftovers() == []
    assert live.exists() and young.exists()

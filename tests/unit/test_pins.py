"""Pins (issue 12.5): a backup being restored or verified is never pruned.

Attacks with real processes: a pin held by a live process, one left by a
SIGKILLed process, one whose pid was reused, one from another host, a
prune racing a new pin, and a real ``restore`` running while ``prune`` runs.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from migration_guard.backup import create, list_backups, prune
from migration_guard.backup.catalog import Catalog
from migration_guard.backup.pins import PIN_SUFFIX, live_pins, pin, prune_lock
from migration_guard.config import Config
from migration_guard.errors import UnknownBackupError
from tests.conftest import REPO_ROOT
from tests.unit.test_backup_trust_logic import KEY_VARIABLES, write_manifest

Holder = Callable[[str, str], "subprocess.Popen[str]"]
NOW = datetime(2024, 6, 30, 23, 0, tzinfo=timezone.utc)
DROP_ALL = Config(sections={"backup": {"keep_days": 0}})
HOLDER = """
import sys, time
from migration_guard.backup.catalog import Catalog
from migration_guard.backup.pins import pin
with pin(Catalog(sys.argv[1]), sys.argv[2], sys.argv[3]):
    print("pinned", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def backup_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "backups"
    directory.mkdir()
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(directory))
    monkeypatch.chdir(tmp_path)
    return directory


@pytest.fixture
def holder(backup_dir: Path) -> Iterator[Holder]:
    """Start a process that pins a backup until it is killed; every one is killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(backup_id: str, purpose: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(backup_dir), backup_id, purpose],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "pinned"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def three_old_backups(backup_dir: Path) -> list[str]:
    """Oldest first; with keep_days = 0 only the newest is kept."""
    return [write_manifest(backup_dir, NOW - timedelta(days=days)).id for days in (90, 60, 30)]


def test_a_backup_pinned_by_a_live_verification_is_kept(backup_dir: Path, holder: Holder) -> None:
    oldest, middle, _ = three_old_backups(backup_dir)
    process = holder(oldest, "verify")

    plan = prune(DROP_ALL, now=NOW)
    assert plan.delete_ids == [middle]
    reasons = dict(plan.keep)[oldest]
    assert any(f"verify by pid {process.pid}" in reason for reason in reasons), reasons
    assert Catalog(backup_dir).archive_path(oldest).exists()
    assert plan.paused is None  # a verification pauses nothing else


def test_a_running_restore_pauses_all_pruning(backup_dir: Path, holder: Holder) -> None:
    oldest, middle, newest = three_old_backups(backup_dir)
    holder(newest, "restore")

    plan = prune(DROP_ALL, now=NOW)
    assert plan.delete_ids == []
    assert plan.paused and newest in plan.paused and "restore" in plan.paused
    assert {m.id for m in list_backups(DROP_ALL)} == {oldest, middle, newest}
    assert any("pruning paused" in reason for reason in dict(plan.keep)[oldest])


def test_the_pin_of_a_killed_process_is_ignored_and_removed(
    backup_dir: Path, holder: Holder
) -> None:
    oldest, middle, _ = three_old_backups(backup_dir)
    process = holder(oldest, "restore")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(backup_dir.glob(f"*{PIN_SUFFIX}")), "setup: SIGKILL leaves the pin file"
    preview = prune(DROP_ALL, dry_run=True, now=NOW)
    assert preview.paused is None and set(preview.delete_ids) == {oldest, middle}
    assert list(backup_dir.glob(f"*{PIN_SUFFIX}")), "a dry run changed the directory"

    plan = prune(DROP_ALL, now=NOW)
    assert plan.paused is None
    assert set(plan.delete_ids) == {oldest, middle}
    assert not list(backup_dir.glob(f"*{PIN_SUFFIX}"))


def _forge_pin(backup_dir: Path, backup_id: str, **fields: object) -> Path:
    record = {
        "backup_id": backup_id,
        "purpose": "restore",
        "pid": os.getpid(),
        "host": os.uname().nodename,
        "boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
        "process_start": Path(f"/proc/{os.getpid()}/stat")
        .read_text()
        .rsplit(")", 1)[1]
        .split()[19],
        "since": "2024-06-30T22:00:00Z",
        **fields,
    }
    path = backup_dir / f"{backup_id}.restore-{record['pid']}-0000{PIN_SUFFIX}"
    path.write_text(json.dumps(record))
    return path


def test_a_reused_pid_or_a_reboot_does_not_keep_a_pin_alive(backup_dir: Path) -> None:
    oldest, middle, _ = three_old_backups(backup_dir)
    # This process is alive, but it is not the one that wrote these pins.
    reused = _forge_pin(backup_dir, oldest, process_start="1")
    rebooted = _forge_pin(backup_dir, middle, boot_id="not-this-boot")
    assert live_pins(backup_dir) == []
    assert not reused.exists() and not rebooted.exists()
    genuine = _forge_pin(backup_dir, oldest)  # control: the same record, unforged, is live
    assert [p.backup_id for p in live_pins(backup_dir)] == [oldest]
    genuine.unlink()


def test_pins_that_cannot_be_checked_count_as_live(backup_dir: Path) -> None:
    oldest, middle, _ = three_old_backups(backup_dir)
    _forge_pin(backup_dir, oldest, purpose="verify", host="another-host")
    (backup_dir / f"{middle}.verify-1-0000{PIN_SUFFIX}").write_text("{not json")

    plan = prune(DROP_ALL, now=NOW)
    assert plan.delete_ids == []
    assert any("another host" in reason for reason in dict(plan.keep)[oldest])
    assert any("unreadable pin file" in reason for reason in dict(plan.keep)[middle])


def test_a_pin_waits_for_a_running_prune_and_fails_when_its_backup_went(
    backup_dir: Path,
) -> None:
    oldest, _, _ = three_old_backups(backup_dir)
    catalog = Catalog(backup_dir)
    outcome: list[BaseException | None] = []

    def verify_it() -> None:
        try:
            with pin(catalog, oldest, "verify"):
                outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with prune_lock(backup_dir):  # a prune between reading the pins and deleting
        worker = threading.Thread(target=verify_it)
        worker.start()
        time.sleep(0.3)
        assert worker.is_alive() and not outcome, "the pin did not wait for the prune"
        catalog.delete(oldest)
    worker.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], UnknownBackupError)
    assert "pruned" in str(outcome[0])
    assert not list(backup_dir.glob(f"*{PIN_SUFFIX}"))


@pytest.mark.parametrize("purpose", ["restore", "verify"])
def test_prune_during_a_real_restore_or_verification(
    backup_dir: Path, tmp_path: Path, purpose: str
) -> None:
    """A restore pauses pruning altogether; a verification keeps its backup."""
    source = tmp_path / "big.db"
    connection = sqlite3.connect(source)
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
    connection.executemany(
        "INSERT INTO t (payload) VALUES (?)", ((os.urandom(200).hex(),) for _ in range(30_000))
    )
    connection.commit()
    connection.close()
    config = Config()
    old = create(config, url=f"sqlite:///{source}", compress="none")
    newer = create(config, url=f"sqlite:///{source}", compress="none")
    command = {
        "restore": ["restore", old.id, "--url", f"sqlite:///{tmp_path / 'target.db'}"],
        "verify": ["backups", "verify", old.id, "--restore-test"],
    }[purpose]
    running = subprocess.Popen(
        [sys.executable, "-m", "migration_guard", *command],
        cwd=tmp_path,
        env={**os.environ, "MIGRATION_GUARD_BACKUP_DIR": str(backup_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(backup_dir.glob(f"{old.id}.{purpose}-*{PIN_SUFFIX}")):
            assert running.poll() is None, running.communicate()
            assert time.monotonic() < deadline, f"the {purpose} never pinned its backup"
            time.sleep(0.005)
        plan = prune(DROP_ALL)
        still_running = running.poll() is None
    finally:
        out, err = running.communicate(timeout=120)
    assert running.returncode == 0, out + err
    assert still_running, f"setup: the {purpose} ended before the prune ran"
    assert plan.delete_ids == []
    if purpose == "restore":
        assert plan.paused and old.id in plan.paused
    else:
        assert plan.paused is None
        assert any(f"pinned: verify by pid {running.pid}" in r for r in dict(plan.keep)[old.id])
    assert {m.id for m in list_backups(config)} == {old.id, newer.id}
    assert not list(backup_dir.glob(f"*{PIN_SUFFIX}")), f"the {purpose} left its pin behind"
    # Once it is over, prune works again (and a verified backup stays for being verified).
    after = prune(DROP_ALL)
    if purpose == "restore":
        assert after.delete_ids == [old.id]
    else:
        assert after.delete_ids == []
        assert any("newest verified backup" in r for r in dict(after.keep)[old.id])

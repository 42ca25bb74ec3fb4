"""Issue 12 (keys and hygiene) on the real servers: what client processes see, exit codes,
messages without row data, and the leftovers of killed runs."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration_guard.backup import create, keygen, list_backups, restore
from migration_guard.config import Config
from migration_guard.errors import EncryptionKeyError, MigrationGuardError
from tests.conftest import REPO_ROOT
from tests.db import test_backup_trust as trust
from tests.db.test_backup_trust import _children_of, make_sqlite, run_cli, run_sql, sqlite_state

# The fixtures of the attack tests, shared.
databases = trust.databases
password_url = trust.password_url


def _client_environments(names: tuple[bytes, ...]) -> tuple[list[bytes], Callable[..., None]]:
    seen: list[bytes] = []

    def inspect(*_: Any) -> None:
        for child in _children_of(os.getpid()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes()
                environ = Path(f"/proc/{child}/environ").read_bytes()
            except OSError:
                continue
            if any(name in argv for name in names):
                seen.append(environ)

    return seen, inspect


@pytest.mark.mysql
def test_restore_client_inherits_no_secret(
    config: Config,
    password_url: str,
    databases: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = sa.make_url(password_url).password
    assert password
    key = keygen()
    monkeypatch.setenv("MIGRATION_GUARD_KEY", key)
    monkeypatch.setenv("MIGRATION_GUARD_URL", password_url)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-for-the-test")
    run_sql(password_url, "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(200))")
    run_sql(
        password_url,
        "INSERT INTO t VALUES (:id, :note)",
        params=[{"id": i, "note": os.urandom(100).hex()} for i in range(30000)],
    )
    backup = create(config, backend="mysqldump")
    seen, inspect = _client_environments((b"mariadb\x00", b"mysql\x00", b"/mariadb", b"/mysql"))
    target = databases(create=False)
    result = restore(config, backup.id, url=target, progress=inspect)
    assert result.ok, result.mismatches
    assert seen, "the client was never seen running"
    for environ in seen:
        for secret in (key, password, "aws-secret-for-the-test"):
            assert secret.encode() not in environ


# -- require_encryption ---------------------------------------------------------------------
def test_lost_key_is_refused_with_exit_2_naming_the_key_and_the_opt_out(
    backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_sqlite(tmp_path / "app.db")
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    assert run_cli("backup", "--url", source)[0] == 0
    monkeypatch.delenv("MIGRATION_GUARD_KEY")

    code, output = run_cli("backup", "--url", source)
    assert code == 2, output
    assert "MIGRATION_GUARD_KEY" in output and "MIGRATION_GUARD_PASSPHRASE" in output
    assert "--no-encrypt" in output and "require_encryption = false" in output
    assert "Traceback" not in output
    assert [m.encrypted for m in list_backups(Config())] == [True]
    assert not list(backup_dir.glob("*.partial")) and len(list(backup_dir.glob("*.mgb"))) == 1

    # Opting out explicitly, for this one backup, is allowed.
    code, output = run_cli("backup", "--url", source, "--no-encrypt")
    assert code == 0, output
    assert sorted(m.encrypted for m in list_backups(Config())) == [False, True]


def test_require_encryption_true_refuses_even_the_first_and_explicit_plaintext(
    backup_dir: Path, tmp_path: Path
) -> None:
    source = make_sqlite(tmp_path / "app.db")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.migration_guard.backup]\nrequire_encryption = true\n"
    )
    for extra in ((), ("--no-encrypt",)):
        code, output = run_cli("backup", "--url", source, *extra)
        assert code == 2, output
        assert "require_encryption = true" in output
    assert list_backups(Config()) == []


def test_require_encryption_false_allows_plaintext_after_encrypted_backups(
    backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_sqlite(tmp_path / "app.db")
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    assert run_cli("backup", "--url", source)[0] == 0
    monkeypatch.delenv("MIGRATION_GUARD_KEY")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.migration_guard.backup]\nrequire_encryption = false\n"
    )
    code, output = run_cli("backup", "--url", source)
    assert code == 0, output


def test_safety_backup_of_a_restore_is_refused_without_the_key(
    backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unencrypted backup, restored over a database whose earlier backups are
    # encrypted: the safety backup of the target must not be written in plaintext.
    source = make_sqlite(tmp_path / "app.db")
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    create(Config(), url=source)
    monkeypatch.delenv("MIGRATION_GUARD_KEY")
    plain = create(Config(), url=source, encrypt=False)
    before = sqlite_state(tmp_path / "app.db")
    with pytest.raises(EncryptionKeyError):
        restore(Config(), plain.id, url=source, yes=True)
    assert sqlite_state(tmp_path / "app.db") == before
    assert len(list_backups(Config())) == 2


# -- no row data in messages ----------------------------------------------------------------
SECRET_ROW = "alice.secret@example.com"


@pytest.mark.mysql
@pytest.mark.parametrize("backend", ["mysqldump", "native"])
def test_restore_error_quotes_no_row_data(
    config: Config,
    databases: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    backend: str,
) -> None:
    from migration_guard.backup import decrypt
    from migration_guard.backup.backends import get_backend

    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    source = databases()
    run_sql(
        source,
        "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL, "
        "UNIQUE KEY uq_email (email))",
        f"INSERT INTO users VALUES (1, '{SECRET_ROW}'), (2, 'bob@example.com')",
    )
    backup = create(config, url=source, backend=backend)
    plain = tmp_path / "plain.sql"
    decrypt(config, backup.id, plain)
    lines = plain.read_bytes().splitlines(keepends=True)
    first_insert = next(i for i, line in enumerate(lines) if line.startswith(b"INSERT INTO"))
    # One more row with alice's address, before the backup's rows: these then hit the
    # unique key, and the server's error quotes the value.
    extra = f"INSERT INTO `users` (`id`, `email`) VALUES (3,'{SECRET_ROW}')".encode()
    extra += b"\n$$mg$$\n" if backend == "native" else b";\n"
    doubled = [*lines[:first_insert], extra, *lines[first_insert:]]
    target = sa.make_url(databases())
    with pytest.raises(MigrationGuardError) as caught:
        get_backend(backend).restore(
            target,
            io.BytesIO(b"".join(doubled)),
            stream_format=backup.artifact.stream_format,
        )
    message = str(caught.value)
    assert "Duplicate entry" in message, message
    assert "alice" not in message and "bob@" not in message, message
    assert "users" in message or "uq_email" in message or "PRIMARY" in message, message


# -- leftovers of killed runs -----------------------------------------------------------------
def _backup_process(url: str, cwd: Path, temp_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "migration_guard", "backup", "--url", url, *extra],
        cwd=cwd,
        env={**os.environ, "TMPDIR": str(temp_dir), "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(process: subprocess.Popen[bytes], appears: Callable[[], list[Path]]) -> list[Path]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        found = appears()
        if found:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return found
        time.sleep(0.0005)
    process.kill()
    process.wait()
    pytest.fail("setup: the run finished before its scratch file was seen")


def _next_backup_cleans(
    url: str, cwd: Path, temp_dir: Path, leftovers: list[Path], *command: str
) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "migration_guard", *(command or ("backup", "--url", url))],
        cwd=cwd,
        env={**os.environ, "TMPDIR": str(temp_dir), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    for path in leftovers:
        assert not path.exists(), f"{path} survived the next backup"
    assert not list(temp_dir.glob("migration-guard-*"))


@pytest.mark.parametrize("next_run", ["backup", "restore"])
def test_killed_sqlite_backup_leaves_no_plaintext_copy_for_long(
    backup_dir: Path, tmp_path: Path, next_run: str
) -> None:
    path = tmp_path / "big.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE secrets (data BLOB)")
    connection.executemany(
        "INSERT INTO secrets VALUES (?)", [(os.urandom(4096),) for _ in range(12000)]
    )
    connection.commit()
    connection.close()
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    url = f"sqlite:///{path}"
    earlier = create(Config(), url=make_sqlite(tmp_path / "small.db"))
    process = _backup_process(url, tmp_path, temp_dir, "--compress", "gzip")
    copies = _kill_when(process, lambda: list(temp_dir.glob("migration-guard-sqlite-*/backup.db")))
    assert copies[0].exists(), "setup: the killed run left no plaintext copy"
    restore_command = ("restore", earlier.id, "--url", f"sqlite:///{tmp_path / 'new.db'}")
    command = restore_command if next_run == "restore" else ()
    _next_backup_cleans(url, tmp_path, temp_dir, [copies[0].parent], *command)
    assert not list(backup_dir.glob("*.partial"))


@pytest.mark.mysql
def test_killed_mysqldump_backup_leaves_no_option_file_for_long(
    backup_dir: Path, tmp_path: Path, password_url: str
) -> None:
    run_sql(password_url, "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(200))")
    run_sql(
        password_url,
        "INSERT INTO t VALUES (:id, :note)",
        params=[{"id": i, "note": os.urandom(100).hex()} for i in range(20000)],
    )
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    process = _backup_process(password_url, tmp_path, temp_dir, "--backend", "mysqldump")

    def written_option_files() -> list[Path]:
        found = []
        for path in temp_dir.glob("migration-guard-client-*/client.cnf"):
            with contextlib.suppress(OSError):  # gone again: the dump finished
                if b"password" in path.read_bytes():
                    found.append(path)
        return found

    files = _kill_when(process, written_option_files)
    password = sa.make_url(password_url).password
    assert password and password in files[0].read_text(), "setup: no option file left"
    _next_backup_cleans(password_url, tmp_path, temp_dir, [files[0].parent])


# -- passphrases ------------------------------------------------------------------------------
def test_wrong_passphrase_is_refused_before_the_safety_backup(
    backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.db"
    source = make_sqlite(path)
    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", "the right passphrase, long enough")
    backup = create(Config(), url=source)
    assert backup.encrypted
    run_sql(source, "INSERT INTO accounts (name) VALUES ('written after the backup')")
    before = sqlite_state(path)
    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", "a wrong passphrase, long enough")
    with pytest.raises(EncryptionKeyError) as caught:
        restore(Config(), backup.id, url=source, yes=True)
    assert "wrong key" in str(caught.value) and "passphrase" in str(caught.value)
    assert "long enough" not in str(caught.value)
    # Refused before anything happened: no safety backup under the wrong passphrase.
    assert [m.id for m in list_backups(Config())] == [backup.id]
    assert sqlite_state(path) == before

    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", "the right passphrase, long enough")
    result = restore(Config(), backup.id, url=source, yes=True)
    assert result.ok, result.mismatches
    assert result.safety_backup_id is not None


def test_wrong_passphrase_never_marks_a_backup_as_failed(
    backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.backup import verify

    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", "the right passphrase, long enough")
    backup = create(Config(), url=make_sqlite(tmp_path / "app.db"))
    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", "a wrong passphrase, long enough")
    with pytest.raises(EncryptionKeyError):
        verify(Config(), backup.id)
    (after,) = list_backups(Config())
    assert after.verification == backup.verification, "a wrong passphrase was recorded"
    monkeypatch.setenv("MIGRATION_GUARD_PASSPHRASE", "the right passphrase, long enough")
    assert verify(Config(), backup.id).ok


def test_killed_restore_test_leaves_no_plaintext_database_for_long(
    backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    path = tmp_path / "big.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE secrets (data BLOB)")
    connection.executemany(
        "INSERT INTO secrets VALUES (?)", [(os.urandom(4096),) for _ in range(12000)]
    )
    connection.commit()
    connection.close()
    backup = create(Config(), url=f"sqlite:///{path}")
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "migration_guard", "backups", "verify", backup.id, "--restore-test"],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(temp_dir), "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    found = _kill_when(process, lambda: list(temp_dir.glob("migration-guard-verify-*/mg_verify_*")))
    assert found[0].parent.exists(), "setup: the killed run left nothing"
    assert not list(tmp_path.glob("mg_verify_*")), "a scratch database outside the scratch dir"
    _next_backup_cleans(f"sqlite:///{path}", tmp_path, temp_dir, [found[0].parent])

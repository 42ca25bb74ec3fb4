"""Issue 12, "backups you can trust at the trust boundaries": attacks on real databases.

Each test asserts what the issue demands; they were written before the fixes and
failed on the code of the time.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration_guard.backup import create, keygen, list_backups, restore
from migration_guard.backup.x25519 import generate_identity
from migration_guard.cli import main
from migration_guard.commands.ops import monitor
from migration_guard.config import Config
from migration_guard.errors import MigrationGuardError
from tests.conftest import MYSQL_ADMIN_URL, REPO_ROOT, unique_name

ADMIN_URL = sa.make_url(MYSQL_ADMIN_URL)


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def key(backup_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    value = keygen()
    monkeypatch.setenv("MIGRATION_GUARD_KEY", value)
    return value


@pytest.fixture
def databases(mysql_admin_engine: sa.Engine) -> Iterator[Callable[..., str]]:
    """A factory of MariaDB databases; every name it hands out is dropped afterwards.

    ``databases()`` creates an empty database, ``databases(create=False)`` only
    reserves a name (for a restore that is to create it).
    """
    names: list[str] = []

    def make(*, create: bool = True) -> str:
        name = unique_name("mg_trust")
        names.append(name)
        if create:
            with mysql_admin_engine.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        return str(ADMIN_URL.set(database=name, query={"charset": "utf8mb4"}))

    yield make
    with mysql_admin_engine.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


def run_sql(url: str, *statements: str, params: list[dict[str, Any]] | None = None) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                if params is not None and ":" in statement:
                    conn.execute(sa.text(statement), params)
                else:
                    conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def mysql_state(url: str) -> dict[str, tuple[str, Any]]:
    """Every table's SHOW CREATE TABLE and CHECKSUM TABLE EXTENDED."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = [row[0] for row in conn.exec_driver_sql("SHOW FULL TABLES")]
            state = {}
            for table in sorted(tables):
                create_sql = conn.exec_driver_sql(f"SHOW CREATE TABLE `{table}`").one()[1]
                checksum = conn.exec_driver_sql(f"CHECKSUM TABLE `{table}` EXTENDED").one()[1]
                state[table] = (create_sql, checksum)
            return state
    finally:
        engine.dispose()


def sqlite_state(path: Path) -> dict[str, tuple[str, list[Any]]]:
    connection = sqlite3.connect(path)
    try:
        names = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
        return {
            name: (sql, sorted(connection.execute(f'SELECT * FROM "{name}"').fetchall()))
            for name, sql in names
        }
    finally:
        connection.close()


def database_exists(mysql_admin_engine: sa.Engine, url: str) -> bool:
    name = sa.make_url(url).database
    with mysql_admin_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"), {"n": name}
        ).first()
    return row is not None


def make_sqlite(path: Path, table: str = "accounts", rows: int = 20) -> str:
    connection = sqlite3.connect(path)
    connection.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, name TEXT)')
    connection.executemany(
        f'INSERT INTO "{table}" (name) VALUES (?)', [(f"{table} {i}",) for i in range(rows)]
    )
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def run_cli(*args: str) -> tuple[int, str]:
    """Exit code and everything the command printed (stdout and stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout + result.stderr


def refused_restore(config: Config, backup_id: str, **options: Any) -> str:
    """Run a restore that must fail; its error message (or its mismatches)."""
    try:
        result = restore(config, backup_id, **options)
    except MigrationGuardError as exc:
        return str(exc)
    assert not result.ok, f"the restore of {backup_id} reported success"
    return "; ".join(result.mismatches)


def archive_of(backup_dir: Path, backup_id: str) -> Path:
    return backup_dir / f"{backup_id}.mgb"


def manifest_file(backup_dir: Path, backup_id: str) -> Path:
    return backup_dir / f"{backup_id}.manifest.json"


# -- 1. a swapped archive ---------------------------------------------------------------------
@pytest.mark.mysql
def test_swapped_archive_is_refused_before_the_target_is_touched(
    config: Config, key: str, backup_dir: Path, databases: Callable[..., str]
) -> None:
    a = databases()
    b = databases()
    run_sql(
        a,
        "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(40))",
        "INSERT INTO accounts VALUES (1, 'alice'), (2, 'bob')",
    )
    run_sql(
        b,
        "CREATE TABLE intruder (id INT PRIMARY KEY, payload VARCHAR(40))",
        "INSERT INTO intruder VALUES (1, 'from B')",
    )
    backup_a = create(config, url=a)
    backup_b = create(config, url=b)
    shutil.copyfile(archive_of(backup_dir, backup_b.id), archive_of(backup_dir, backup_a.id))
    before = mysql_state(a)

    refused_restore(config, backup_a.id, url=a, yes=True)
    after = mysql_state(a)
    assert "intruder" not in after, "B's SQL was executed in A's database"
    assert after == before


def test_swapped_sqlite_archive_is_refused_before_the_target_is_touched(
    config: Config, key: str, backup_dir: Path, tmp_path: Path
) -> None:
    a_path = tmp_path / "a.db"
    a = make_sqlite(a_path, "accounts")
    b = make_sqlite(tmp_path / "b.db", "intruder")
    backup_a = create(config, url=a)
    backup_b = create(config, url=b)
    shutil.copyfile(archive_of(backup_dir, backup_b.id), archive_of(backup_dir, backup_a.id))
    before = sqlite_state(a_path)

    refused_restore(config, backup_a.id, url=a, yes=True)
    assert sqlite_state(a_path) == before


def test_unencrypted_archive_is_refused_when_a_key_is_configured(
    config: Config, key: str, backup_dir: Path, tmp_path: Path
) -> None:
    source = make_sqlite(tmp_path / "app.db")
    plain = create(config, url=source, encrypt=False)
    assert not plain.encrypted
    target = tmp_path / "target.db"

    with pytest.raises(MigrationGuardError, match="--allow-unencrypted"):
        restore(config, plain.id, url=f"sqlite:///{target}")
    assert not target.exists() or sqlite_state(target) == {}

    code, output = run_cli(
        "restore", plain.id, "--url", f"sqlite:///{target}", "--allow-unencrypted"
    )
    assert code == 0, output
    assert sqlite_state(target) == sqlite_state(tmp_path / "app.db")


# -- 2. a hand-edited manifest ----------------------------------------------------------------
@pytest.mark.mysql
@pytest.mark.parametrize(
    ("encrypted", "charset"),
    [
        pytest.param(True, "latin1", id="encrypted-latin1"),
        pytest.param(True, "utf8mb4; DROP DATABASE {canary}; --", id="encrypted-injection"),
        pytest.param(False, "utf8mb4; DROP DATABASE {canary}; --", id="plain-injection"),
    ],
)
def test_edited_manifest_database_options_are_refused(
    config: Config,
    backup_dir: Path,
    databases: Callable[..., str],
    mysql_admin_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    encrypted: bool,
    charset: str,
) -> None:
    if encrypted:
        monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    source = databases()
    run_sql(
        source,
        "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(40))",
        "INSERT INTO accounts VALUES (1, 'zoë')",
    )
    canary = databases()
    canary_name = sa.make_url(canary).database
    backup = create(config, url=source)
    assert backup.encrypted is encrypted
    path = manifest_file(backup_dir, backup.id)
    data = json.loads(path.read_text())
    assert data["extra"]["database_options"]["charset"] == "utf8mb4"
    options = data["extra"]["database_options"]
    options["charset"] = charset.format(canary=canary_name)
    if charset == "latin1":
        options["collation"] = "latin1_swedish_ci"
    path.write_text(json.dumps(data))

    target = databases(create=False)
    with pytest.raises(MigrationGuardError, match=r"(?i)manifest|charset"):
        restore(config, backup.id, url=target)
    assert not database_exists(mysql_admin_engine, target), "the edited options were obeyed"
    assert database_exists(mysql_admin_engine, canary)


# -- 3. a truncated archive into the live database -------------------------------------------
@pytest.mark.mysql
def test_truncated_archive_leaves_the_live_database_byte_for_byte(
    config: Config, key: str, backup_dir: Path, databases: Callable[..., str]
) -> None:
    url = databases()
    statements = []
    for table in ("customers", "orders", "payments"):
        statements.append(f"CREATE TABLE {table} (id INT PRIMARY KEY, note VARCHAR(300))")
    run_sql(url, *statements)
    for table in ("customers", "orders", "payments"):
        run_sql(
            url,
            f"INSERT INTO {table} (id, note) VALUES (:id, :note)",
            params=[{"id": i, "note": os.urandom(100).hex()} for i in range(4000)],
        )
    backup = create(config, url=url, compress="none")
    assert backup.artifact.size > 2_000_000  # several chunks: the cut falls mid-data
    # the live database moves on after the backup
    run_sql(
        url,
        "UPDATE customers SET note = 'changed since the backup' WHERE id < 100",
        "DELETE FROM payments WHERE id >= 3900",
        "CREATE TABLE audit (id INT PRIMARY KEY)",
        "INSERT INTO audit VALUES (1), (2)",
    )
    path = archive_of(backup_dir, backup.id)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    before = mysql_state(url)

    code, output = run_cli("restore", backup.id, "--url", url, "--yes")
    after = mysql_state(url)
    safety = [m.id for m in list_backups(config) if m.type == "safety"]
    changed = sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))
    assert after == before, f"tables changed by the failed restore: {changed}"
    assert code != 0, output
    assert len(safety) == 1 and safety[0] in output, output


def _truncated_sqlite_backup(config: Config, backup_dir: Path, path: Path) -> str:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, note TEXT)")
    connection.executemany(
        "INSERT INTO notes (note) VALUES (?)", [(os.urandom(200).hex(),) for _ in range(8000)]
    )
    connection.commit()
    backup = create(config, url=f"sqlite:///{path}", compress="none")
    connection.execute("UPDATE notes SET note = 'changed since the backup' WHERE id < 10")
    connection.commit()
    connection.close()
    archive = archive_of(backup_dir, backup.id)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) * 6 // 10])
    return backup.id


def test_truncated_sqlite_archive_leaves_the_live_database_unchanged(
    config: Config, key: str, backup_dir: Path, tmp_path: Path
) -> None:
    """Issue 12.3 on SQLite: already holds today (the file is replaced only at the end)."""
    path = tmp_path / "app.db"
    backup_id = _truncated_sqlite_backup(config, backup_dir, path)
    before = path.read_bytes()
    code, output = run_cli("restore", backup_id, "--url", f"sqlite:///{path}", "--yes")
    assert path.read_bytes() == before
    assert code != 0, output


def test_failed_restore_names_its_safety_backup(
    config: Config, key: str, backup_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "app.db"
    backup_id = _truncated_sqlite_backup(config, backup_dir, path)
    code, output = run_cli("restore", backup_id, "--url", f"sqlite:///{path}", "--yes")
    assert code != 0, output
    safety = [m.id for m in list_backups(config) if m.type == "safety"]
    assert len(safety) == 1
    assert safety[0] in output, output


# -- 5. a restore must not prune ---------------------------------------------------------------
def test_restore_never_prunes(config: Config, tmp_path: Path) -> None:
    pruning = config.replace(sections={"backup": {"keep_days": 0, "auto_prune": True}})
    old = create(config, url=make_sqlite(tmp_path / "app.db", rows=30))
    create(config, url=make_sqlite(tmp_path / "other.db", "other"))  # a newer backup
    before = {m.id for m in list_backups(pruning)}
    target_path = tmp_path / "target.db"
    make_sqlite(target_path, "accounts", rows=3)  # not empty: a safety backup is taken

    result = restore(pruning, old.id, url=f"sqlite:///{target_path}", yes=True)
    assert result.ok, result.mismatches
    after = {m.id for m in list_backups(pruning)}
    assert before <= after, f"pruned during the restore: {sorted(before - after)}"


# -- 7. secrets and silent failures of a backup ------------------------------------------------
@pytest.fixture
def password_url(mysql_admin_engine: sa.Engine, databases: Callable[..., str]) -> Iterator[str]:
    url = sa.make_url(databases())
    user = unique_name("mg_tu")[:30]
    password = "Trust-" + unique_name("pw")
    with mysql_admin_engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
        conn.exec_driver_sql(f"GRANT ALL ON `{url.database}`.* TO '{user}'@'%%'")
        conn.exec_driver_sql(f"GRANT RELOAD, PROCESS ON *.* TO '{user}'@'%%'")
    try:
        yield url.set(username=user, password=password).render_as_string(hide_password=False)
    finally:
        with mysql_admin_engine.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat_text.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry))
    return children


@pytest.mark.mysql
@pytest.mark.parametrize(
    "secret_variable",
    ["MIGRATION_GUARD_KEY", "MIGRATION_GUARD_PASSPHRASE", "MIGRATION_GUARD_URL", "identity"],
)
def test_dump_child_inherits_no_secret(
    config: Config,
    password_url: str,
    monkeypatch: pytest.MonkeyPatch,
    secret_variable: str,
) -> None:
    password = sa.make_url(password_url).password
    assert password
    monkeypatch.setenv("MIGRATION_GUARD_URL", password_url)
    secrets = {
        "MIGRATION_GUARD_KEY": keygen(),
        "MIGRATION_GUARD_PASSPHRASE": "a passphrase " + "x" * 20,
        "MIGRATION_GUARD_URL": password,
        # an X25519 identity (AGE-SECRET-KEY-1...) in MIGRATION_GUARD_KEY
        "identity": generate_identity().text,
    }
    secret = secrets[secret_variable]
    if secret_variable != "MIGRATION_GUARD_URL":
        variable = "MIGRATION_GUARD_KEY" if secret_variable == "identity" else secret_variable
        monkeypatch.setenv(variable, secret)
    run_sql(
        password_url,
        "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(200))",
    )
    run_sql(
        password_url,
        "INSERT INTO t VALUES (:id, :note)",
        # megabytes, so that the child blocks on its pipe and is seen while running
        params=[{"id": i, "note": os.urandom(100).hex()} for i in range(30000)],
    )
    environments: list[bytes] = []

    def inspect_children(*_: Any) -> None:
        for child in _children_of(os.getpid()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes()
                environ = Path(f"/proc/{child}/environ").read_bytes()
            except OSError:
                continue
            if b"mysqldump" in argv or b"mariadb-dump" in argv:
                environments.append(environ)

    create(config, backend="mysqldump", progress=inspect_children)
    assert environments, "the dump child was never seen running"
    for environ in environments:
        assert secret.encode() not in environ, f"{secret_variable} reached the child"
        assert password.encode() not in environ, "the URL's password reached the child"


def test_backup_that_lost_its_key_is_refused(
    backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_sqlite(tmp_path / "app.db")
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    code, output = run_cli("backup", "--url", source)
    assert code == 0, output
    monkeypatch.delenv("MIGRATION_GUARD_KEY")  # the cron job lost its key

    code, output = run_cli("backup", "--url", source)
    assert code != 0, output
    backups = list_backups(Config())
    assert len(backups) == 1 and backups[0].encrypted, "a plaintext backup was written"


def test_failed_post_backup_verification_exits_non_zero(backup_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE blobs (data BLOB)")
    connection.executemany(
        "INSERT INTO blobs VALUES (?)", [(os.urandom(4096),) for _ in range(3000)]
    )
    connection.commit()
    connection.close()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.migration_guard.backup]\nverify_after_backup = "full"\ncompress = "none"\n'
    )
    # Storage damage right after the archive is published: flip its last byte as soon
    # as it appears, before the post-backup verification reads it.
    stop = threading.Event()
    damaged: list[Path] = []

    def damage() -> None:
        while not stop.is_set():
            found = list(backup_dir.glob("*.mgb")) if backup_dir.is_dir() else []
            if found:
                with found[0].open("r+b") as handle:
                    handle.seek(-1, os.SEEK_END)
                    last = handle.read(1)
                    handle.seek(-1, os.SEEK_END)
                    handle.write(bytes([last[0] ^ 0xFF]))
                damaged.append(found[0])
                return
            time.sleep(0.0005)

    watcher = threading.Thread(target=damage)
    watcher.start()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "migration_guard", "backup", "--url", f"sqlite:///{path}"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            timeout=60,
        )
    finally:
        stop.set()
        watcher.join()
    assert damaged
    backups = list_backups(Config())
    if backups:  # the failure is recorded; it must also show in the exit code
        assert backups[0].verification.ok is False, "setup: the damage came too late"
    assert completed.returncode != 0, completed.stdout + completed.stderr


# -- 8. monitoring right after the first backup ----------------------------------------------
def test_monitor_is_healthy_right_after_the_first_backup(config: Config, tmp_path: Path) -> None:
    create(config, url=make_sqlite(tmp_path / "app.db"))
    report = monitor(config)
    verify_within = [r for r in report.results if r.key == "verify_within"]
    assert verify_within and not verify_within[0].failed, verify_within[0].summary
    assert report.healthy, [f"{r.key}: {r.summary}" for r in report.failures]


def test_monitor_still_fails_when_an_old_backup_was_never_verified(
    config: Config, tmp_path: Path
) -> None:
    """The other side of issue 8: a backup older than verify_within, never verified, fails."""
    create(config, url=make_sqlite(tmp_path / "app.db"))
    strict = config.replace(sections={"monitor": {"verify_within": "1s"}})
    time.sleep(1.2)
    report = monitor(strict)
    verify_within = [r for r in report.results if r.key == "verify_within"]
    assert verify_within and verify_within[0].failed

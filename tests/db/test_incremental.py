"""Incremental backups from the binary log, on the binlog-enabled MariaDB (port 3307)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration_guard.backup import create, keygen, restore, verify
from migration_guard.backup.backends.binlog import read_binlog_since
from migration_guard.backup.catalog import Catalog
from migration_guard.backup.retention import RetentionPolicy, plan_prune
from migration_guard.cli import main
from migration_guard.config import Config
from migration_guard.errors import BackupError, MigrationGuardError
from tests.conftest import MYSQL_BINLOG_ADMIN_URL, unique_name


def binlog_inserts(url: sa.URL, table: str, file: str, position: str) -> int:
    """How many rows of ``table`` the binary log inserts after ``file:position``."""
    output = subprocess.run(
        [
            "mariadb-binlog",
            "--read-from-remote-server",
            f"--host={url.host}",
            f"--port={url.port}",
            f"--user={url.username}",
            f"--start-position={position}",
            "--to-last-log",
            "-v",
            file,
        ],
        check=True,
        capture_output=True,
    ).stdout
    return output.count(f"### INSERT INTO `{url.database}`.`{table}`".encode())


def test_full_backup_records_the_dump_snapshots_binlog_position(
    config: Config, mysql_binlog_url: str
) -> None:
    """Attack: a writer inserts without pause while the full backup starts.

    The recorded position must be the dump's own snapshot: the rows in the dump
    plus the rows the binlog inserts after the position are exactly the rows in
    the table afterwards (a position from another snapshot loses or doubles some).
    """
    url = sa.make_url(mysql_binlog_url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        conn.exec_driver_sql("CREATE TABLE pad (id INT PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO pad SELECT seq, REPEAT('x', 200) FROM seq_1_to_20000")
    stop = threading.Event()

    def writer() -> None:
        with engine.connect() as conn:
            while not stop.is_set():
                conn.exec_driver_sql("INSERT INTO t (v) VALUES (1)")
                conn.commit()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        manifests = [create(config, url=mysql_binlog_url, encrypt=False) for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    with engine.connect() as conn:
        final = conn.exec_driver_sql("SELECT COUNT(*) FROM t").scalar_one()
    engine.dispose()
    for manifest in manifests:
        binlog = manifest.binlog
        assert binlog is not None
        assert binlog["file"].startswith("binlog.") and int(binlog["position"]) > 0
        # Other domains may be in the server's state (tests share the binlog server).
        assert any(part.startswith("0-1-") for part in binlog["gtid"].split(","))
        dumped = manifest.tables["t"].rows
        assert dumped is not None
        after = binlog_inserts(url, "t", binlog["file"], binlog["position"])
        assert dumped + after == final, (dumped, after, final)


# -- incremental backups and their restore -------------------------------------------------


@pytest.fixture
def new_binlog_database(mysql_binlog_admin_engine: sa.Engine) -> Iterator[Callable[[], str]]:
    """Names of databases that do not exist yet on the binlog server; dropped afterwards."""
    names: list[str] = []

    def make() -> str:
        names.append(unique_name("mg_inc"))
        return f"{MYSQL_BINLOG_ADMIN_URL.rstrip('/')}/{names[-1]}?charset=utf8mb4"

    yield make
    with mysql_binlog_admin_engine.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


TABLES = ("accounts", "orders")


def state(url: str) -> dict[str, Any]:
    """Every table's rows in key order and its CHECKSUM TABLE."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table: (
                    [
                        tuple(row)
                        for row in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
                    ],
                    conn.exec_driver_sql(f"CHECKSUM TABLE {table}").one()[1],
                )
                for table in TABLES
            }
    finally:
        engine.dispose()


def run(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def chain(config: Config, mysql_binlog_url: str) -> dict[str, Any]:
    """A full backup, changes, incremental 1, more changes, incremental 2; each state."""
    run(
        mysql_binlog_url,
        "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(50), balance DECIMAL(10,2))",
        "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, account INT, note TEXT)",
        "INSERT INTO accounts VALUES (1, 'ann', 10.50), (2, 'bob', 20), (3, 'cy', 0)",
        "INSERT INTO orders (account, note) VALUES (1, 'first'), (2, 'second'), (3, NULL)",
    )
    full = create(config, url=mysql_binlog_url, encrypt=False)
    run(
        mysql_binlog_url,
        "INSERT INTO accounts VALUES (4, 'dee', 4.44)",
        "UPDATE accounts SET balance = balance + 1 WHERE id <= 2",
        "DELETE FROM orders WHERE account = 3",
        "INSERT INTO orders (account, note) VALUES (4, 'ünïcode ☃')",
    )
    first = create(config, url=mysql_binlog_url, type="incremental", encrypt=False)
    state1 = state(mysql_binlog_url)
    run(
        mysql_binlog_url,
        "DELETE FROM accounts WHERE id = 1",
        "UPDATE orders SET note = CONCAT(note, '!') WHERE note IS NOT NULL",
        "INSERT INTO accounts VALUES (5, 'eve', 55.55)",
    )
    second = create(config, url=mysql_binlog_url, type="incremental", encrypt=False)
    return {
        "url": mysql_binlog_url,
        "full": full,
        "first": first,
        "second": second,
        "state1": state1,
        "state2": state(mysql_binlog_url),
    }


def test_incrementals_form_a_chain_of_coordinates(chain: dict[str, Any]) -> None:
    full, first, second = chain["full"], chain["first"], chain["second"]
    assert (first.type, first.parent, second.parent) == ("incremental", full.id, first.id)
    assert first.binlog["start"]["file"] == full.binlog["file"]
    assert first.binlog["start"]["position"] == full.binlog["position"]
    assert second.binlog["start"]["position"] == first.binlog["position"]
    assert int(first.binlog["position"]) > int(full.binlog["position"]) or (
        first.binlog["file"] != full.binlog["file"]
    )
    assert first.artifact.stream_format == "mysql-binlog" and first.backend == "binlog"


def test_restoring_incremental_2_into_a_new_database_equals_the_final_state(
    config: Config, chain: dict[str, Any], new_binlog_database: Callable[[], str]
) -> None:
    target = new_binlog_database()
    result = restore(config, chain["second"].id, url=target, yes=True)
    assert result.ok, result.mismatches
    assert state(target) == chain["state2"]


def test_restoring_incremental_1_equals_the_state_then(
    config: Config, chain: dict[str, Any], new_binlog_database: Callable[[], str]
) -> None:
    target = new_binlog_database()
    outcome = cli("restore", chain["first"].id, "--url", target, "--yes")
    assert outcome.exit_code == 0, outcome.output
    assert state(target) == chain["state1"]


def test_a_tampered_incremental_archive_is_refused_before_anything_is_written(
    config: Config, chain: dict[str, Any], new_binlog_database: Callable[[], str]
) -> None:
    path = Catalog.for_config(config).archive_path(chain["first"].id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    target = new_binlog_database()
    with pytest.raises(MigrationGuardError):
        restore(config, chain["second"].id, url=target, yes=True)
    engine = sa.create_engine(MYSQL_BINLOG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            name = sa.make_url(target).database
            assert conn.exec_driver_sql(f"SHOW DATABASES LIKE '{name}'").first() is None
    finally:
        engine.dispose()


def test_incremental_without_a_full_backup_exits_2(config: Config, mysql_binlog_url: str) -> None:
    outcome = cli("backup", "--url", mysql_binlog_url, "--type", "incremental", "--no-encrypt")
    assert outcome.exit_code == 2, outcome.output
    assert "take a full backup first" in outcome.output
    assert "Traceback" not in outcome.output


def test_incremental_with_log_bin_off_exits_2_saying_how_to_turn_it_on(
    config: Config, mysql_url: str
) -> None:
    assert cli("backup", "--url", mysql_url, "--no-encrypt").exit_code == 0
    outcome = cli("backup", "--url", mysql_url, "--type", "incremental", "--no-encrypt")
    assert outcome.exit_code == 2, outcome.output
    assert "log_bin" in outcome.output and "restart" in outcome.output


def test_purged_binlogs_exit_1_naming_the_gap(mysql_binlog_url: str) -> None:
    """A chain that ends in a binlog file the server no longer has (purged)."""
    with pytest.raises(BackupError) as caught:
        read_binlog_since(
            sa.make_url(mysql_binlog_url),
            {"file": "binlog.000000", "position": "4"},
            io.BytesIO(),  # type: ignore[arg-type]
            None,
        )
    assert caught.value.exit_code == 1
    assert "binlog.000000:4" in caught.value.message
    assert "new full backup" in caught.value.message


def test_retention_keeps_the_parents_of_a_kept_incremental(
    config: Config, chain: dict[str, Any]
) -> None:
    """A newer full backup exists, so the chain's full and first incremental are kept
    only because the newest incremental depends on them."""
    newer_full = create(config, url=chain["url"], encrypt=False)
    manifests = Catalog.for_config(config).list()
    later = datetime.now(timezone.utc) + timedelta(days=3)
    plan = plan_prune(manifests, later, RetentionPolicy(keep_days=1))
    kept = dict(plan.keep)
    assert {newer_full.id, chain["second"].id, chain["first"].id, chain["full"].id} <= set(kept)
    assert not any("newest" in reason for reason in kept[chain["first"].id]), kept
    assert not any("newest" in reason for reason in kept[chain["full"].id]), kept


def test_verify_checks_an_incremental_and_restore_tests_its_chain(
    config: Config, chain: dict[str, Any]
) -> None:
    assert verify(config, chain["first"].id).ok
    tested = verify(
        config, chain["second"].id, restore_test=True, scratch_url=MYSQL_BINLOG_ADMIN_URL
    )
    assert tested.ok and tested.level == 2, tested.details


def test_verify_catches_a_tampered_incremental(config: Config, chain: dict[str, Any]) -> None:
    path = Catalog.for_config(config).archive_path(chain["second"].id)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x40
    path.write_bytes(bytes(data))
    result = verify(config, chain["second"].id)
    assert not result.ok


def test_statement_based_events_and_ddl_replay_under_another_name(
    config: Config, mysql_binlog_url: str, new_binlog_database: Callable[[], str]
) -> None:
    """Statement events (and DDL, always logged as statements) carry the default
    database, which the restore renames; row events carry it in their table maps."""
    run(
        mysql_binlog_url,
        "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(50))",
        "CREATE TABLE orders (id INT PRIMARY KEY, account INT)",
        "CREATE TABLE doomed (id INT PRIMARY KEY)",
        "INSERT INTO accounts VALUES (1, 'ann'), (2, 'bob')",
        "INSERT INTO orders VALUES (1, 1)",
    )
    create(config, url=mysql_binlog_url, encrypt=False)
    run(
        mysql_binlog_url,
        "SET SESSION binlog_format = 'STATEMENT'",
        "INSERT INTO accounts VALUES (3, 'cy')",
        "UPDATE accounts SET name = UPPER(name) WHERE id = 1",
        "DELETE FROM orders WHERE id = 1",
        "ALTER TABLE accounts ADD COLUMN email VARCHAR(80) DEFAULT 'none'",
        "CREATE TABLE later (id INT PRIMARY KEY, v INT)",
        "INSERT INTO later VALUES (7, 70)",
        "DROP TABLE doomed",
        "SET SESSION binlog_format = 'ROW'",
        "INSERT INTO orders VALUES (2, 3)",
        "UPDATE accounts SET email = 'cy@example.com' WHERE id = 3",
    )
    incremental = create(config, url=mysql_binlog_url, type="incremental", encrypt=False)
    start = incremental.binlog["start"]
    url = sa.make_url(mysql_binlog_url)
    logged = subprocess.run(
        [
            "mariadb-binlog",
            "--read-from-remote-server",
            f"--host={url.host}",
            f"--port={url.port}",
            f"--user={url.username}",
            f"--start-position={start['position']}",
            "--to-last-log",
            start["file"],
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert b"INSERT INTO accounts VALUES (3, 'cy')" in logged  # really statement-based
    target = new_binlog_database()
    assert restore(config, incremental.id, url=target, yes=True).ok
    assert state(target) == state(mysql_binlog_url)
    engine = sa.create_engine(target)
    try:
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM later")] == [(7, 70)]
            tables = {row[0] for row in conn.exec_driver_sql("SHOW TABLES")}
    finally:
        engine.dispose()
    assert tables == {"accounts", "orders", "later"}


def test_no_change_is_lost_or_doubled_at_the_boundaries_under_a_concurrent_writer(
    config: Config,
    mysql_binlog_url: str,
    new_binlog_database: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attack: a writer inserts and updates without pause across a full backup and two
    encrypted incrementals; the chain restored afterwards equals the table exactly."""
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    run(
        mysql_binlog_url,
        # No AUTO_INCREMENT: its counter is in SHOW CREATE TABLE, which the mysqldump
        # backend reads in a second snapshot (a known gap of full backups, not of this one).
        "CREATE TABLE accounts (id INT PRIMARY KEY, n INT)",
        "CREATE TABLE orders (id INT PRIMARY KEY, n INT)",
    )
    engine = sa.create_engine(mysql_binlog_url)
    stop = threading.Event()
    writing = threading.Event()

    def writer() -> None:
        with engine.connect() as conn:
            key = 0
            while not stop.is_set():
                key += 1
                conn.exec_driver_sql(f"INSERT INTO accounts VALUES ({key}, 1)")
                conn.exec_driver_sql("UPDATE orders SET n = n + 1 WHERE MOD(id, 3) = 0")
                conn.exec_driver_sql(f"INSERT INTO orders VALUES ({key}, 0)")
                conn.commit()
                writing.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        # The full backup starts once rows are committed, so its snapshot holds some
        # and the writer runs across it (otherwise a fast backup could finish first).
        assert writing.wait(timeout=30)
        full = create(config, url=mysql_binlog_url)
        first = create(config, url=mysql_binlog_url, type="incremental")
        create(config, url=mysql_binlog_url, type="incremental")
    finally:
        stop.set()
        thread.join()
        engine.dispose()
    last = create(config, url=mysql_binlog_url, type="incremental")  # after the writer stopped
    assert full.encrypted and first.encrypted and last.encrypted
    written = state(mysql_binlog_url)["accounts"][0]
    assert len(written) > (full.tables["accounts"].rows or 0) > 0  # it wrote throughout
    target = new_binlog_database()
    assert restore(config, last.id, url=target, yes=True).ok
    assert state(target) == state(mysql_binlog_url)


def _next_second() -> datetime:
    """Sleep past the next whole second; that second (UTC)."""
    now = datetime.now(timezone.utc)
    boundary = now.replace(microsecond=0) + timedelta(seconds=1)
    time.sleep((boundary - now).total_seconds() + 0.05)
    return boundary


def test_until_replays_only_the_changes_before_that_moment(
    config: Config, mysql_binlog_url: str, new_binlog_database: Callable[[], str]
) -> None:
    run(
        mysql_binlog_url,
        "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(50))",
        "CREATE TABLE orders (id INT PRIMARY KEY, account INT)",
        "INSERT INTO accounts VALUES (1, 'ann')",
    )
    create(config, url=mysql_binlog_url, encrypt=False)
    _next_second()
    run(
        mysql_binlog_url,
        "INSERT INTO accounts VALUES (2, 'bob')",
        "INSERT INTO orders VALUES (1, 2)",
    )
    then = state(mysql_binlog_url)
    until = _next_second()
    run(
        mysql_binlog_url,
        "DELETE FROM accounts WHERE id = 1",
        "UPDATE orders SET account = 1",
        "INSERT INTO accounts VALUES (3, 'cy')",
    )
    first = create(config, url=mysql_binlog_url, type="incremental", encrypt=False)
    run(mysql_binlog_url, "INSERT INTO accounts VALUES (4, 'dee')")
    second = create(config, url=mysql_binlog_url, type="incremental", encrypt=False)
    stamp = until.strftime("%Y-%m-%dT%H:%M:%SZ")
    target = new_binlog_database()
    outcome = cli("restore", second.id, "--url", target, "--until", stamp, "--format", "json")
    assert outcome.exit_code == 0, outcome.output
    assert state(target) == then
    assert first.parent is not None


def test_until_refuses_a_bad_time_and_a_time_before_the_chain(
    config: Config, chain: dict[str, Any], new_binlog_database: Callable[[], str]
) -> None:
    target = new_binlog_database()
    for bad in ("yesterday", "2026-12-06T20:00:00"):
        outcome = cli("restore", chain["second"].id, "--url", target, "--until", bad)
        assert outcome.exit_code == 2, outcome.output
        assert "2026-12-06T20:00:00Z" in outcome.output
    outcome = cli("restore", chain["second"].id, "--url", target, "--until", "2000-01-01T00:00:00Z")
    assert outcome.exit_code == 2 and "before the full backup" in outcome.output
    outcome = cli("restore", chain["full"].id, "--url", target, "--until", "2099-01-01T00:00:00Z")
    assert outcome.exit_code == 2 and "incremental" in outcome.output


def test_an_incremental_killed_mid_copy_leaves_nothing_and_the_next_one_covers_its_window(
    config: Config,
    mysql_binlog_url: str,
    new_binlog_database: Callable[[], str],
    tmp_path: Path,
) -> None:
    """Attack: SIGKILL while the binlog is copied into the scratch directory. No
    manifest, no plaintext binlog left behind (the next run removes it), and the
    next incremental starts at the full backup, so the restored chain is whole."""
    run(
        mysql_binlog_url,
        "CREATE TABLE accounts (id INT PRIMARY KEY, name TEXT)",
        "CREATE TABLE orders (id INT PRIMARY KEY, account INT)",
    )
    full = create(config, url=mysql_binlog_url, encrypt=False)
    for batch in range(20):
        run(
            mysql_binlog_url,
            f"INSERT INTO accounts SELECT seq + {batch * 2000}, REPEAT('x', 1000) "
            "FROM seq_1_to_2000",
        )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    cli_main = "from migration_guard.cli import main; main()"
    command = [sys.executable, "-c", cli_main, "backup", "--url", mysql_binlog_url]
    child = subprocess.Popen(
        [*command, "--type", "incremental", "--no-encrypt"], env=env, start_new_session=True
    )
    deadline = time.monotonic() + 60
    # Killed once plaintext binlog is on disk (an empty directory killed before its
    # owner file exists is not recognised as ours, and holds nothing).
    while not list(scratch.glob("migration-guard-binlog-*/raw/*")):
        assert child.poll() is None, "the backup ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    catalog = Catalog.for_config(config)
    assert [m.id for m in catalog.list()] == [full.id]
    assert any(p.name.startswith("migration-guard-binlog-") for p in scratch.iterdir())

    run(mysql_binlog_url, "INSERT INTO orders VALUES (1, 7)")
    after = subprocess.run(
        [*command, "--type", "incremental", "--no-encrypt", "--format", "json"],
        env=env,
        capture_output=True,
        check=True,
    )
    left = [p for p in scratch.iterdir() if p.name.startswith("migration-guard-binlog-")]
    assert not left, [(p, sorted(x.name for x in p.rglob("*")), p.stat().st_mtime) for p in left]
    incremental = catalog.get(json.loads(after.stdout)["id"])
    assert incremental.parent == full.id
    target = new_binlog_database()
    assert restore(config, incremental.id, url=target, yes=True).ok
    assert state(target) == state(mysql_binlog_url)

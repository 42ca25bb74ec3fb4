"""Incremental backups from the binary log, on the binlog-enabled MariaDB (port 3307)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from migration_guard.backup import create
from migration_guard.config import Config

KEY_VARIABLES = (
    "MIGRATION_GUARD_KEY",
    "MIGRATION_GUARD_KEY_FILE",
    "MIGRATION_GUARD_PASSPHRASE",
    "MIGRATION_GUARD_URL",
    "MIGRATION_GUARD_CONFIG",
)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.chdir(tmp_path)
    return Config()


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
        assert binlog["gtid"].startswith("0-1-")
        dumped = manifest.tables["t"].rows
        assert dumped is not None
        after = binlog_inserts(url, "t", binlog["file"], binlog["position"])
        assert dumped + after == final, (dumped, after, final)

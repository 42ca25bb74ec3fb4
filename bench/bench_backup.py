"""Benchmark: backup and restore against their anchors, side by side in one run.

A generated MariaDB database (default 2,000,000 rows with JSON and TEXT columns,
about 300 MB, made with MariaDB's ``seq_1_to_N`` engine) is dumped by:

- ``migration-guard backup`` (mysqldump backend, zstd, AES-256-GCM encryption);
- the original plan's pipeline ``mysqldump --single-transaction | gzip |
  openssl enc -aes-256-cbc -pbkdf2`` (target: migration-guard <= 0.5x);
- raw ``mysqldump --single-transaction > file`` (target: <= 1.3x);

and restored by ``migration-guard restore`` vs ``mariadb db < plain.sql``
(target: <= 1.0x). Peak RSS of migration-guard is measured with ``wait4``
(target: <= 200 MB). Medians of ``--repeat`` runs.

Needs the MariaDB server on 127.0.0.1:3306 (root, no password) and the client
tools. Run: ``python bench/bench_backup.py [--rows N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent
ADMIN = ["-uroot", "-h127.0.0.1", "-P3306"]


def client() -> str:
    return shutil.which("mariadb") or shutil.which("mysql") or "mysql"


def dumper() -> str:
    return shutil.which("mariadb-dump") or shutil.which("mysqldump") or "mysqldump"


def sql(statement: str, database: str | None = None) -> str:
    command = [client(), *ADMIN, "-N", "-e", statement]
    if database:
        command.append(database)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def make_database(name: str, rows: int) -> int:
    sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    sql(
        "CREATE TABLE events (id BIGINT PRIMARY KEY, account_id INT NOT NULL, "
        "payload JSON NOT NULL, body TEXT NOT NULL, created_at DATETIME NOT NULL, "
        "KEY by_account (account_id)) ENGINE=InnoDB",
        name,
    )
    sql(
        "INSERT INTO events SELECT seq, seq % 9973, "
        "JSON_OBJECT('kind', ELT(1 + seq % 3, 'click', 'view', 'buy'), 'n', seq, "
        "'tags', JSON_ARRAY('a', 'b', seq % 7)), "
        "CONCAT(REPEAT(MD5(seq), 2), ' ', REPEAT('lorem ipsum ', 4)), "
        f"'2026-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}",
        name,
    )
    size = sql(
        "SELECT SUM(data_length + index_length) FROM information_schema.tables "
        f"WHERE table_schema = '{name}'"
    )
    return int(float(size.strip() or 0))


def timed(command: str | list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process tree's largest member."""
    start = time.perf_counter()
    process = subprocess.Popen(command, shell=isinstance(command, str), env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {command}")
    return elapsed, usage.ru_maxrss * 1024


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = f"mg_bench_{uuid.uuid4().hex[:8]}"
    target = f"{source}_restore"
    results: dict[str, object] = {"rows": args.rows}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = dict(os.environ)
        key = subprocess.run(
            [str(BIN / "migration-guard"), "keygen"], check=True, capture_output=True, text=True
        ).stdout.strip()
        env["MIGRATION_GUARD_KEY"] = key
        env["MIGRATION_GUARD_BACKUP_DIR"] = str(work / "backups")
        env["BENCH_PASS"] = "bench-passphrase-not-secret"
        try:
            results["database_bytes"] = make_database(source, args.rows)
            url = f"mysql+pymysql://root@127.0.0.1:3306/{source}"
            guard, guard_rss, plan, raw = [], [], [], []
            backup_id = ""
            for _ in range(args.repeat):
                seconds, rss = timed(
                    [str(BIN / "migration-guard"), "backup", "--url", url, "--compress", "zstd",
                     "--encrypt", "--format", "json"],
                    env,
                )
                guard.append(seconds)
                guard_rss.append(rss)
                seconds, _ = timed(
                    f"{dumper()} {' '.join(ADMIN)} --single-transaction {source} | gzip | "
                    "openssl enc -aes-256-cbc -pbkdf2 -pass env:BENCH_PASS "
                    f"> {work}/plan.sql.gz.enc",
                    env,
                )
                plan.append(seconds)
                seconds, _ = timed(
                    f"{dumper()} {' '.join(ADMIN)} --single-transaction {source} > {work}/raw.sql",
                    env,
                )
                raw.append(seconds)
            listing = subprocess.run(
                [str(BIN / "migration-guard"), "backups", "list", "--format", "json"],
                env=env, check=True, capture_output=True, text=True,
            ).stdout
            parsed = json.loads(listing)
            entries = parsed["backups"] if isinstance(parsed, dict) else parsed
            backup_id = entries[0]["id"]
            results.update(
                backup_guard_s=median(guard),
                backup_plan_pipeline_s=median(plan),
                backup_raw_mysqldump_s=median(raw),
                backup_ratio_vs_plan=median(guard) / median(plan),
                backup_ratio_vs_raw=median(guard) / median(raw),
                backup_peak_rss_mb=max(guard_rss) / 1e6,
                artifact_bytes=sum(p.stat().st_size for p in (work / "backups").glob("*.mgb"))
                // args.repeat,
                raw_dump_bytes=(work / "raw.sql").stat().st_size,
            )
            restore_guard, restore_plain, restore_rss = [], [], []
            target_url = f"mysql+pymysql://root@127.0.0.1:3306/{target}"
            for _ in range(args.repeat):
                sql(f"DROP DATABASE IF EXISTS `{target}`")
                sql(f"CREATE DATABASE `{target}`")
                seconds, rss = timed(
                    [str(BIN / "migration-guard"), "restore", backup_id, "--url", target_url,
                     "--yes"],
                    env,
                )
                restore_guard.append(seconds)
                restore_rss.append(rss)
                sql(f"DROP DATABASE IF EXISTS `{target}`")
                sql(f"CREATE DATABASE `{target}`")
                seconds, _ = timed(f"{client()} {' '.join(ADMIN)} {target} < {work}/raw.sql", env)
                restore_plain.append(seconds)
            results.update(
                restore_guard_s=median(restore_guard),
                restore_plain_client_s=median(restore_plain),
                restore_ratio=median(restore_guard) / median(restore_plain),
                restore_peak_rss_mb=max(restore_rss) / 1e6,
            )
        finally:
            sql(f"DROP DATABASE IF EXISTS `{source}`")
            sql(f"DROP DATABASE IF EXISTS `{target}`")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

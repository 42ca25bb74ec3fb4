"""Benchmark: an hourly incremental backup against a full backup of the same data.

The benchmark table of ``bench_backup.py`` (default 2,000,000 rows) is created on
the binlog-enabled MariaDB (127.0.0.1:3307, row-based binary log). Each round
takes a full ``migration-guard backup`` (mysqldump backend, zstd, encrypted),
then changes 1 % of the rows (``--changed``, an UPDATE of every 100th row), then
takes ``migration-guard backup --type incremental``, which copies those binlog
events. Time and archive size of both are reported, as medians of ``--repeat``
rounds after one untimed warm-up round; the target is an incremental in less
than 10 % of the full backup's time.

Before timing, the package is byte-compiled (``compileall``), as an installed
wheel is: a source checkout run with ``PYTHONDONTWRITEBYTECODE=1`` would
otherwise compile every module of migration-guard again in every process,
a fixed cost that is no part of a backup (both kinds of backup get the same).

Every command is a whole process and must exit 0. Run:
``python bench/bench_incremental.py [--rows N] [--repeat N] [--changed FRACTION]``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import bench_backup
from bench_backup import GUARD, Series, make_database, sql, timed, versions

BINLOG_ADMIN = ["-uroot", "-h127.0.0.1", "-P3307"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--changed", type=float, default=0.01, help="fraction of rows changed")
    args = parser.parse_args()
    bench_backup.ADMIN = BINLOG_ADMIN  # every helper talks to the binlog server
    package = Path(__file__).resolve().parent.parent / "migration_guard"
    compileall.compile_dir(package, quiet=1)
    every = max(1, round(1 / args.changed))
    source = f"mg_bench_inc_{uuid.uuid4().hex[:8]}"
    results: dict[str, object] = {
        "rows": args.rows,
        "repeat": args.repeat,
        "changed_rows_per_round": args.rows // every,
        "versions": versions(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = dict(os.environ)
        key = subprocess.run([GUARD, "keygen"], check=True, capture_output=True, text=True)
        env["MIGRATION_GUARD_KEY"] = key.stdout.strip()
        env["MIGRATION_GUARD_BACKUP_DIR"] = str(work / "backups")
        env["MIGRATION_GUARD_CONFIG"] = str(work / "empty.toml")
        (work / "empty.toml").write_text("")
        url = f"mysql+pymysql://root@127.0.0.1:3307/{source}"
        backup = [GUARD, "backup", "--url", url, "--encrypt", "--format", "json"]
        try:
            started = time.perf_counter()
            results["database_bytes"] = make_database(source, args.rows)
            results["generate_s"] = round(time.perf_counter() - started, 1)
            full, incremental = Series(), Series()
            sizes: dict[str, list[int]] = {"full": [], "incremental": []}
            for round_number, warm in enumerate((True, *([False] * args.repeat))):
                run = timed(backup, env)
                full_manifest = json.loads(run.stdout)
                sql(
                    "UPDATE events SET account_id = account_id + 1 "
                    f"WHERE id % {every} = {round_number % every}",
                    source,
                )
                run_incremental = timed([*backup, "--type", "incremental"], env)
                manifest = json.loads(run_incremental.stdout)
                if manifest.get("parent") != full_manifest["id"]:
                    raise SystemExit(f"the incremental does not follow the full backup: {manifest}")
                if warm:
                    continue
                full.add(run, guard=run.rss_of_root())
                incremental.add(run_incremental, guard=run_incremental.rss_of_root())
                sizes["full"].append(int(full_manifest["artifact"]["size"]))
                sizes["incremental"].append(int(manifest["artifact"]["size"]))
            results.update(
                full_backup_s=round(full.median, 2),
                incremental_backup_s=round(incremental.median, 2),
                incremental_time_ratio=round(incremental.median / full.median, 3),
                full_backup_bytes=sizes["full"][-1],
                incremental_bytes=sizes["incremental"][-1],
                incremental_size_ratio=round(sizes["incremental"][-1] / sizes["full"][-1], 3),
                full_samples_s=[round(s, 2) for s in full.seconds],
                incremental_samples_s=[round(s, 2) for s in incremental.seconds],
                # migration-guard and its tools; the server's CPU is not reported (the
                # helper of bench_backup reads the first MariaDB server, not this one).
                client_cpu_s={
                    "full": full.cpu()["client"],
                    "incremental": incremental.cpu()["client"],
                },
                peak_rss_guard_mb={
                    "full": full.peak_mb("guard"),
                    "incremental": incremental.peak_mb("guard"),
                },
            )
        finally:
            sql(f"DROP DATABASE IF EXISTS `{source}`")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

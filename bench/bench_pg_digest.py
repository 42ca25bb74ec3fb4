"""Benchmark: the PostgreSQL row digest alone, ``text-v1`` against ``record-v2``, A/B.

On the table of ``bench_backup_pg.py`` (default 2,000,000 rows: bigint key, int,
jsonb, text, timestamptz), each method's query (``PostgreSQLDialectOps.table_stats``,
count and digest in one scan) runs alternately, ``--repeat`` times:

- ``serial``: one server process (``max_parallel_workers_per_gather = 0``, JIT
  off): the CPU seconds of that backend (``/proc/PID/stat``), which load from
  other processes disturbs far less than wall time;
- ``parallel``: the server's defaults (parallel workers, as a restore runs it):
  wall seconds.

Needs PostgreSQL on 127.0.0.1:5432 (postgres, trust) on this machine (the
backend's CPU is read from /proc). Run:
``python bench/bench_pg_digest.py [--rows N] [--repeat N] [--database NAME]``
(``--database``: an existing database holding the ``events`` table, kept).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid

import sqlalchemy as sa
from bench_backup_pg import make_database, psql

from migration_guard.dialects.postgresql import PostgreSQLDialectOps
from migration_guard.dialects.postgresql_digest import RECORD_DIGEST, TEXT_DIGEST

METHODS = (TEXT_DIGEST, RECORD_DIGEST)


def backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", help="an existing database with the events table")
    args = parser.parse_args()
    name = args.database or f"mg_digest_{uuid.uuid4().hex[:8]}"
    results: dict[str, object] = {"rows": args.rows, "repeat": args.repeat}
    results["load_average_before"] = [round(load, 2) for load in os.getloadavg()]
    if not args.database:
        make_database(name, args.rows)
    ops = PostgreSQLDialectOps()
    engine = sa.create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", poolclass=sa.pool.NullPool
    )
    serial: dict[str, list[float]] = {method: [] for method in METHODS}
    parallel: dict[str, list[float]] = {method: [] for method in METHODS}
    checksums: dict[str, set[str | None]] = {method: set() for method in METHODS}
    try:
        with engine.connect() as conn:
            pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            for method in METHODS:  # warm the cache, once each
                ops.table_stats(conn, ["events"], digest=method)
            for _ in range(args.repeat):
                for method in METHODS:
                    conn.exec_driver_sql("SET max_parallel_workers_per_gather = 0")
                    conn.exec_driver_sql("SET jit = off")
                    before = backend_cpu(pid)
                    stats = ops.table_stats(conn, ["events"], digest=method)["events"]
                    serial[method].append(backend_cpu(pid) - before)
                    checksums[method].add(stats.checksum)
                    conn.exec_driver_sql("RESET max_parallel_workers_per_gather")
                    conn.exec_driver_sql("RESET jit")
                    started = time.perf_counter()
                    ops.table_stats(conn, ["events"], digest=method)
                    parallel[method].append(time.perf_counter() - started)
            conn.rollback()
    finally:
        engine.dispose()
        if not args.database:
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for method in METHODS:
        assert len(checksums[method]) == 1, f"{method} measured different checksums"
        results[method] = {
            "serial_backend_cpu_s": round(statistics.median(serial[method]), 2),
            "serial_samples": [round(s, 2) for s in serial[method]],
            "parallel_wall_s": round(statistics.median(parallel[method]), 2),
            "parallel_samples": [round(s, 2) for s in parallel[method]],
        }
    results["ratio_serial_cpu"] = round(
        statistics.median(serial[RECORD_DIGEST]) / statistics.median(serial[TEXT_DIGEST]), 2
    )
    results["ratio_parallel_wall"] = round(
        statistics.median(parallel[RECORD_DIGEST]) / statistics.median(parallel[TEXT_DIGEST]), 2
    )
    results["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

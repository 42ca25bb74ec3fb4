"""Timeline of a PostgreSQL restore: the guard's against raw ``pg_restore -j 2``.

Builds the 2,000,000-row table of ``bench_backup_pg.py`` (``--rows``), takes one
guard backup and one raw ``pg_dump -Fc``, then restores each ``--rounds`` times
into an empty database (after a ``CHECKPOINT``) while a thread samples, every
100 ms, the statements active in the target database (``pg_stat_activity``) and
how busy the machine's CPUs were (``/proc/stat``). It prints each change of the
active statements with its time from the start, and each restore's total and
mean CPU use: where the time goes, not a ratio (``bench_backup_pg.py`` gives the
ratios). Needs PostgreSQL on 127.0.0.1:5432 and psycopg.

Run: ``python bench/timeline_pg_restore.py [--rows N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backup import GUARD
from bench_backup_pg import CONNECT, guard_env, make_database, psql, recreate


def cpu_times() -> tuple[int, int]:
    """Idle and total jiffies of all CPUs so far."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return values[3] + values[4], sum(values)


def sample(database: str, stop: threading.Event, out: list[tuple[float, float, list[str]]]) -> None:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        last = cpu_times()
        while not stop.is_set():
            rows = conn.execute(
                "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 60) FROM pg_stat_activity "
                "WHERE datname = %s AND state = 'active'",
                (database,),
            ).fetchall()
            now = cpu_times()
            busy = 1 - (now[0] - last[0]) / max(1, now[1] - last[1])
            last = now
            out.append((time.perf_counter() - started, busy, sorted({str(r[0]) for r in rows})))
            time.sleep(0.1)


def timeline(name: str, command: list[str] | str, env: dict[str, str], target: str) -> None:
    recreate(target)
    stop = threading.Event()
    samples: list[tuple[float, float, list[str]]] = []
    sampler = threading.Thread(target=sample, args=(target, stop, samples))
    started = time.perf_counter()
    sampler.start()
    shell = isinstance(command, str)
    subprocess.run(command, env=env, shell=shell, check=True, capture_output=True)
    total = time.perf_counter() - started
    stop.set()
    sampler.join()
    print(name)
    previous: list[str] | None = None
    for at, busy, statements in samples:
        if statements != previous:
            print(f"  {at:6.2f} s  cpu {busy:4.0%}  {statements}")
            previous = statements
    mean = sum(busy for _, busy, _ in samples) / max(1, len(samples))
    print(f"  total {total:.2f} s, both CPUs busy {mean:.0%} on average")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    source = f"mg_bench_{uuid.uuid4().hex[:8]}"
    target = f"{source}_restore"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = guard_env(work)
        connect = " ".join(CONNECT)
        try:
            make_database(source, args.rows)
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{source}"
            backup = [GUARD, "backup", "--url", url, "--encrypt", "--format", "json"]
            made = subprocess.run(backup, env=env, check=True, capture_output=True)
            backup_id = str(json.loads(made.stdout)["id"])
            subprocess.run(
                f"pg_dump {connect} -Fc -d {source} > {work}/raw.pgc", shell=True, check=True
            )
            target_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{target}"
            for _ in range(args.rounds):
                guard = [GUARD, "restore", backup_id, "--url", target_url, "--format", "json"]
                timeline("guard restore", guard, env, target)
                raw = f"pg_restore {connect} -j 2 -d {target} {work}/raw.pgc"
                timeline("raw pg_restore -j 2", raw, env, target)
        finally:
            psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
            psql(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')


if __name__ == "__main__":
    main()

"""Benchmark: PostgreSQL backup and restore against raw pg_dump / pg_restore, side by side.

A generated PostgreSQL database (default 2,000,000 rows: bigint key, int with a
secondary index, jsonb, text, timestamptz; made with ``generate_series``) is
dumped by:

- ``migration-guard backup`` (pgdump backend: ``pg_dump -Fc -Z0`` into zstd +
  AES-256-GCM, counts and row digests read in the dump's exported snapshot);
- raw ``pg_dump -Fc db > file`` (its default compression; target: guard <= 1.3x);
- raw ``pg_dump -Fc -Z0 db > file`` (for information: no compression at all);

and restored into an existing empty database by ``migration-guard restore``
(decrypt, ``pg_restore --jobs``, then every table's count, row digest and
definition compared with the manifest) vs ``pg_restore -j 2 -d target file``
of the raw ``-Fc`` dump (target: guard <= 1.1x).

Fairness as in ``bench_backup.py``: whole processes, one untimed warm-up of
each backup command, then round-robin (the restores' order alternates from
round to round, each after a ``CHECKPOINT``); medians of ``--repeat`` runs, and
the median of the rounds' guard/raw ratios (``restore_ratio_round_median``: each
round's two restores ran back to back, so a machine whose speed drifts moves
both); every run checked (exit status, ``ok``, the plain restore's row count).

Needs PostgreSQL on 127.0.0.1:5432 (postgres, trust) and its client tools.
Run: ``python bench/bench_backup_pg.py [--rows N] [--tables N] [--repeat N]
[--restore-only] [--before DIR]`` (``--before``: a checkout whose code the guard
restore also runs, alternately, for a before/after ratio in one run; it restores a
backup taken by its own code, whose manifest it can read: the row digest method
may differ between the two).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench_backup import GUARD, Series, timed

CONNECT = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]


def psql(statement: str, database: str = "postgres") -> str:
    command = ["psql", *CONNECT, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
    command += ["-d", database, "-c", statement]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def make_database(name: str, rows: int, tables: int = 1) -> int:
    """Create and fill the benchmark database (``rows`` spread over ``tables`` tables
    named ``events``, ``events2``...); its size in bytes."""
    psql(f'CREATE DATABASE "{name}"')
    for number in range(1, tables + 1):
        table = "events" if number == 1 else f"events{number}"
        psql(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, account_id int NOT NULL, "
            "payload jsonb NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL)",
            name,
        )
        psql(
            f"INSERT INTO {table} SELECT g, g % 9973, "
            "jsonb_build_object('kind', (ARRAY['click', 'view', 'buy'])[1 + g % 3], 'n', g, "
            "'tags', jsonb_build_array('a', 'b', g % 7)), "
            "repeat(md5(g::text), 2) || ' ' || repeat('lorem ipsum ', 4), "
            "timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' "
            f"FROM generate_series(1, {rows // tables}) AS g",
            name,
        )
        psql(f"CREATE INDEX by_account{number} ON {table} (account_id)", name)
    psql("VACUUM ANALYZE", name)
    return int(psql("SELECT pg_database_size(current_database())", name).strip())


def table_names(tables: int) -> list[str]:
    return ["events" if number == 1 else f"events{number}" for number in range(1, tables + 1)]


def backup_results(guard: Series, raw: Series, raw0: Series) -> dict[str, object]:
    return {
        "backup_guard_s": round(guard.median, 2),
        "backup_raw_pg_dump_fc_s": round(raw.median, 2),
        "backup_raw_pg_dump_fc_z0_s": round(raw0.median, 2),
        "backup_ratio_vs_raw": round(guard.median / raw.median, 2),
        "backup_ratio_vs_raw_z0": round(guard.median / raw0.median, 2),
        "backup_guard_samples_s": [round(s, 2) for s in guard.seconds],
        "backup_raw_samples_s": [round(s, 2) for s in raw.seconds],
        "backup_raw_z0_samples_s": [round(s, 2) for s in raw0.seconds],
        "backup_client_cpu_s": {"guard": guard.cpu()["client"], "raw": raw.cpu()["client"]},
        "backup_peak_rss_guard_mb": guard.peak_mb("guard"),
    }


def guard_env(work: Path) -> dict[str, str]:
    """The environment of the guard's runs: a new key, backups under ``work`` and an
    empty configuration (nothing of the caller's project applies)."""
    env = dict(os.environ)
    key = subprocess.run([GUARD, "keygen"], check=True, capture_output=True, text=True)
    env["MIGRATION_GUARD_KEY"] = key.stdout.strip()
    env["MIGRATION_GUARD_BACKUP_DIR"] = str(work / "backups")
    env["MIGRATION_GUARD_CONFIG"] = str(work / "empty.toml")
    (work / "empty.toml").write_text("")
    return env


def round_ratios(side: Series, raw: Series) -> list[float]:
    """Each round's ``side`` time over that round's raw time."""
    return [mine / theirs for mine, theirs in zip(side.seconds, raw.seconds, strict=True)]


def recreate(name: str) -> None:
    """An empty ``name``, with the server's dirty pages written out first: each timed
    restore starts from the same state instead of paying for the previous one's
    writes (the side that ran right after a load was up to 0.5 s slower)."""
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')
    psql("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--tables", type=int, default=1, help="spread the rows over this many like tables"
    )
    parser.add_argument(
        "--restore-only",
        action="store_true",
        help="time only the restores (one untimed backup of each kind is taken)",
    )
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also time the guard restore with the code of this checkout (PYTHONPATH=DIR), "
        "alternately: before and after in one run",
    )
    args = parser.parse_args()
    source = f"mg_bench_{uuid.uuid4().hex[:8]}"
    target = f"{source}_restore"
    results: dict[str, object] = {"rows": args.rows, "tables": args.tables, "repeat": args.repeat}
    results["load_average_before"] = [round(load, 2) for load in os.getloadavg()]
    results["versions"] = {
        "server": psql("SHOW server_version").strip(),
        "pg_dump": subprocess.run(
            ["pg_dump", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = guard_env(work)
        connect = " ".join(CONNECT)
        try:
            started = time.perf_counter()
            results["database_bytes"] = make_database(source, args.rows, args.tables)
            results["generate_s"] = round(time.perf_counter() - started, 1)
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{source}"
            guard_backup = [GUARD, "backup", "--url", url, "--encrypt", "--format", "json"]
            raw_dump = f"pg_dump {connect} -Fc -d {source} > {work}/raw.pgc"
            raw_z0 = f"pg_dump {connect} -Fc -Z0 -d {source} > {work}/raw0.pgc"
            guard, raw, raw0 = Series(), Series(), Series()
            manifests: list[dict[str, object]] = []
            for warm in (True, *([False] * (0 if args.restore_only else args.repeat))):
                run = timed(guard_backup, env)
                if args.restore_only:
                    manifests.append(json.loads(run.stdout))
                    subprocess.run(raw_dump, shell=True, env=env, check=True)
                    continue
                if not warm:
                    manifests.append(json.loads(run.stdout))
                    guard.add(run, guard=run.rss_of_root(), dump=run.rss_named("pg_dump"))
                run = timed(raw_dump, env)
                if not warm:
                    raw.add(run, dump=run.rss_named("pg_dump"))
                run = timed(raw_z0, env)
                if not warm:
                    raw0.add(run)
            artifact = manifests[-1]["artifact"]
            assert isinstance(artifact, dict)
            results.update(
                artifact_bytes=artifact["size"], raw_dump_bytes=(work / "raw.pgc").stat().st_size
            )
            if not args.restore_only:
                results.update(backup_results(guard, raw, raw0))
            backup_id = str(manifests[-1]["id"])
            target_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{target}"

            def guard_restore(backup: str) -> list[str]:
                return [GUARD, "restore", backup, "--url", target_url, "--format", "json"]

            raw_restore = f"pg_restore {connect} -j 2 -d {target} {work}/raw.pgc"
            restore_guard, restore_raw, restore_before = Series(), Series(), Series()
            before_env = {**env, "PYTHONPATH": args.before} if args.before else None
            before_id = backup_id
            if before_env is not None:  # its own backup: a manifest its code understands
                before_id = str(json.loads(timed(guard_backup, before_env).stdout)["id"])
            sides = [(restore_guard, env, backup_id)]
            if before_env is not None:
                sides.append((restore_before, before_env, before_id))

            def guard_round(series: Series, side_env: dict[str, str], backup: str) -> None:
                recreate(target)
                run = timed(guard_restore(backup), side_env)
                outcome = json.loads(run.stdout)
                if not outcome.get("ok"):
                    raise SystemExit(f"restore reported mismatches: {outcome}")
                series.add(run, guard=run.rss_of_root())

            def raw_round() -> None:
                recreate(target)
                run = timed(raw_restore, env)
                restored = sum(
                    int(psql(f"SELECT count(*) FROM {table}", target).strip())
                    for table in table_names(args.tables)
                )
                if restored != args.rows // args.tables * args.tables:
                    raise SystemExit(f"plain restore brought back {restored} of {args.rows} rows")
                restore_raw.add(run)

            for number in range(args.repeat):
                order = [*sides, None]
                if number % 2:  # neither side always runs first
                    order.reverse()
                for side in order:
                    if side is None:
                        raw_round()
                    else:
                        guard_round(*side)
            results.update(
                restore_guard_s=round(restore_guard.median, 2),
                restore_raw_pg_restore_j2_s=round(restore_raw.median, 2),
                restore_ratio=round(restore_guard.median / restore_raw.median, 2),
                # Each round's guard and raw restore ran back to back: on a machine whose
                # speed drifts, the median of the rounds' ratios is the steadier figure.
                restore_ratio_round_median=round(
                    statistics.median(round_ratios(restore_guard, restore_raw)), 3
                ),
                restore_round_ratios=[
                    round(r, 3) for r in round_ratios(restore_guard, restore_raw)
                ],
                restore_guard_samples_s=[round(s, 2) for s in restore_guard.seconds],
                restore_raw_samples_s=[round(s, 2) for s in restore_raw.seconds],
                restore_client_cpu_s={
                    "guard": restore_guard.cpu()["client"],
                    "raw": restore_raw.cpu()["client"],
                },
                restore_peak_rss_guard_mb=restore_guard.peak_mb("guard"),
            )
            if before_env is not None:
                results.update(
                    restore_before_s=round(restore_before.median, 2),
                    restore_before_ratio=round(restore_before.median / restore_raw.median, 2),
                    restore_before_ratio_round_median=round(
                        statistics.median(round_ratios(restore_before, restore_raw)), 3
                    ),
                    restore_before_samples_s=[round(s, 2) for s in restore_before.seconds],
                    restore_before_client_cpu_s=restore_before.cpu()["client"],
                )
            results["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
        finally:
            psql(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')
            psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: a full backup with one offsite copy against the same backup local-only.

A generated MariaDB database (``--rows``, default 1,000,000 rows, the table of
``bench_backup.py``) is backed up by ``migration-guard backup`` (mysqldump
backend, zstd, AES-256-GCM) twice per round, round-robin: once local-only and
once with ``MIGRATION_GUARD_OFFSITE=s3://BUCKET/p`` pointing at moto's
standalone S3 server on loopback (``python -m moto.server``, started here on a
free port; ``AWS_ENDPOINT_URL`` and test credentials in the environment, as a
user would set them). The copy is uploaded while the archive is written, so
the target is a ratio of at most 1.2x. Medians of ``--repeat`` rounds, after
one untimed warm-up of each side. Every run is checked (exit status, and the
copy's size equals the local archive's).

moto is a Python process on the same CPUs that keeps every part in memory:
the figure is an upper bound for MinIO or a real S3 service.

``--sqlite-mb N`` uses instead a SQLite database of N rows of 1 MiB random
blobs (incompressible: the archive is as large as the data, so the upload
weighs as much as it can against the dump).

``--baseline DIR`` also times another checkout of migration-guard (``DIR`` is
put first on ``PYTHONPATH``, e.g. a ``git archive`` of main), alternately with
this one in the same rounds, so that a before/after comparison shares the
machine's load. Besides wall time the script reports the CPU seconds of the
backup process and its children (mysqldump) and of moto's server. Each copy
is deleted after its check, so moto holds the same data in every round.

Needs the MariaDB server on 127.0.0.1:3306 (root, no password), its client
tools and ``moto[server]``. Run: ``python bench/bench_offsite.py [--rows N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backup import GUARD, children_cpu_seconds, make_database, sql

ACCESS_KEY = "AKIABENCHOFFSITE0000"
SECRET_KEY = "bench-offsite-secret"


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("moto's server did not start")


def process_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` so far (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_backup(
    url: str, env: dict[str, str], command: list[str]
) -> tuple[float, float, dict[str, object]]:
    """Wall seconds, CPU seconds (the backup and its children) and the JSON result."""
    cpu = children_cpu_seconds()
    started = time.perf_counter()
    completed = subprocess.run(
        [*command, "backup", "--url", url, "--format", "json"],
        env=env,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    cpu = children_cpu_seconds() - cpu
    if completed.returncode != 0:
        raise SystemExit(
            f"backup failed ({completed.returncode}): "
            + completed.stdout.decode(errors="replace")[-2000:]
            + completed.stderr.decode(errors="replace")[-2000:]
        )
    return elapsed, cpu, json.loads(completed.stdout)


def summary(values: list[float]) -> dict[str, object]:
    return {"median": round(statistics.median(values), 3), "runs": [round(v, 3) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sqlite-mb", type=int, default=0, help="SQLite blobs instead")
    parser.add_argument("--baseline", help="another source tree to time alternately (before)")
    args = parser.parse_args()

    import boto3

    name = f"mg_bench_offsite_{uuid.uuid4().hex[:8]}"
    moto, endpoint = start_moto()
    try:
        with tempfile.TemporaryDirectory(prefix="mg-bench-offsite-") as work:
            if args.sqlite_mb:
                database = Path(work) / "blobs.db"
                with sqlite3.connect(database) as db:
                    db.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
                    for i in range(args.sqlite_mb):
                        db.execute("INSERT INTO blobs VALUES (?, ?)", (i, os.urandom(1 << 20)))
                size = database.stat().st_size
                url = f"sqlite:///{database}"
            else:
                size = make_database(name, args.rows)
                url = f"mysql+pymysql://root@127.0.0.1:3306/{name}"
            base = {
                **os.environ,
                "MIGRATION_GUARD_BACKUP_DIR": str(Path(work) / "backups"),
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1",
            }
            base.pop("MIGRATION_GUARD_OFFSITE", None)
            key = subprocess.run(
                [GUARD, "keygen"], env=base, capture_output=True, text=True, check=True
            ).stdout.strip()
            base["MIGRATION_GUARD_KEY"] = key
            os.environ.update({k: base[k] for k in base if k.startswith("AWS_")})
            client = boto3.client("s3")
            client.create_bucket(Bucket="bench")
            offsite = {"MIGRATION_GUARD_OFFSITE": "s3://bench/p"}
            codes = {"this": (base, [GUARD])}
            if args.baseline:
                baseline_path = os.pathsep.join([args.baseline, base.get("PYTHONPATH", "")])
                codes["baseline"] = (
                    {**base, "PYTHONPATH": baseline_path.rstrip(os.pathsep)},
                    [sys.executable, "-m", "migration_guard"],
                )
            sides = {
                (code, side): ({**env, **(offsite if side == "offsite" else {})}, command)
                for code, (env, command) in codes.items()
                for side in ("local", "offsite")
            }
            times: dict[tuple[str, str], list[float]] = {side: [] for side in sides}
            cpus: dict[tuple[str, str], list[float]] = {side: [] for side in sides}
            moto_cpus: dict[tuple[str, str], list[float]] = {side: [] for side in sides}
            archive = 0
            for round_number in range(args.repeat + 1):
                for (code, side), (env, command) in sides.items():
                    before = process_cpu(moto.pid)
                    seconds, cpu, result = run_backup(url, env, command)
                    moto_cpu = process_cpu(moto.pid) - before
                    artifact = result.get("artifact", {})
                    archive = int(artifact.get("size", 0)) if isinstance(artifact, dict) else 0
                    if side == "offsite":
                        key = f"p/{result['id']}.mgb"
                        head = client.head_object(Bucket="bench", Key=key)
                        if int(head["ContentLength"]) != archive:
                            raise SystemExit("the offsite copy differs in size from the archive")
                        for copied in (key, f"p/{result['id']}.manifest.json"):
                            client.delete_object(Bucket="bench", Key=copied)
                    if round_number:  # the first round is the warm-up
                        times[code, side].append(seconds)
                        cpus[code, side].append(cpu)
                        moto_cpus[code, side].append(moto_cpu)
            report: dict[str, object] = {
                "corpus": f"sqlite {args.sqlite_mb} MiB of random blobs"
                if args.sqlite_mb
                else f"mariadb {args.rows} rows",
                "table_bytes": size,
                "archive_bytes": archive,
                "target": 1.2,
            }
            for code in codes:
                local = statistics.median(times[code, "local"])
                copied = statistics.median(times[code, "offsite"])
                report[code] = {
                    "local_s": summary(times[code, "local"]),
                    "offsite_s": summary(times[code, "offsite"]),
                    "ratio": round(copied / local, 3),
                    "cpu_local_s": summary(cpus[code, "local"]),
                    "cpu_offsite_s": summary(cpus[code, "offsite"]),
                    "moto_cpu_offsite_s": summary(moto_cpus[code, "offsite"]),
                }
            report["loadavg"] = os.getloadavg()
            print(json.dumps(report, indent=2))
    finally:
        if not args.sqlite_mb:
            sql(f"DROP DATABASE IF EXISTS `{name}`")
        moto.terminate()
        moto.wait(10)


if __name__ == "__main__":
    main()

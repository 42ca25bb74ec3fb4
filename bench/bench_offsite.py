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

from bench_backup import make_database, sql

BIN = Path(sys.executable).parent
GUARD = str(BIN / "migration-guard")
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


def run_backup(url: str, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    completed = subprocess.run(
        [GUARD, "backup", "--url", url, "--format", "json"],
        env=env,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(
            f"backup failed ({completed.returncode}): "
            + completed.stdout.decode(errors="replace")[-2000:]
            + completed.stderr.decode(errors="replace")[-2000:]
        )
    return elapsed, json.loads(completed.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sqlite-mb", type=int, default=0, help="SQLite blobs instead")
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
            sides = {
                "local": base,
                "offsite": {**base, "MIGRATION_GUARD_OFFSITE": "s3://bench/p"},
            }
            times: dict[str, list[float]] = {side: [] for side in sides}
            archive = 0
            for round_number in range(args.repeat + 1):
                for side, env in sides.items():
                    seconds, result = run_backup(url, env)
                    artifact = result.get("artifact", {})
                    archive = int(artifact.get("size", 0)) if isinstance(artifact, dict) else 0
                    if side == "offsite":
                        head = client.head_object(Bucket="bench", Key=f"p/{result['id']}.mgb")
                        if int(head["ContentLength"]) != archive:
                            raise SystemExit("the offsite copy differs in size from the archive")
                    if round_number:  # the first round is the warm-up
                        times[side].append(seconds)
            local = statistics.median(times["local"])
            offsite = statistics.median(times["offsite"])
            print(
                json.dumps(
                    {
                        "corpus": f"sqlite {args.sqlite_mb} MiB of random blobs"
                        if args.sqlite_mb
                        else f"mariadb {args.rows} rows",
                        "table_bytes": size,
                        "archive_bytes": archive,
                        "local_s": {"median": round(local, 3), "runs": times["local"]},
                        "offsite_s": {"median": round(offsite, 3), "runs": times["offsite"]},
                        "ratio": round(offsite / local, 3),
                        "target": 1.2,
                        "loadavg": os.getloadavg(),
                    },
                    indent=2,
                )
            )
    finally:
        if not args.sqlite_mb:
            sql(f"DROP DATABASE IF EXISTS `{name}`")
        moto.terminate()
        moto.wait(10)


if __name__ == "__main__":
    main()

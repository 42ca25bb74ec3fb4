"""Benchmark: backup and restore against their anchors, side by side in one run.

A generated MariaDB database (default 2,000,000 rows with JSON and TEXT columns,
about 300 MB, made with MariaDB's ``seq_1_to_N`` engine) is dumped by:

- ``migration-guard backup`` (mysqldump backend, zstd, AES-256-GCM encryption);
- the original plan's pipeline ``mysqldump --single-transaction | gzip |
  openssl enc -aes-256-cbc -pbkdf2`` (target: migration-guard <= 0.5x);
- raw ``mysqldump --single-transaction > file`` (target: <= 1.3x);

and restored by ``migration-guard restore`` vs ``mariadb db < plain.sql``
(target: <= 1.0x). Medians of ``--repeat`` runs. The guard's backup with
``server_checksums = true`` (``CHECKSUM TABLE`` per table on top of the stream's
row digests) is timed beside, for information.

Fairness: every command is a whole process (start-up counts on every side);
after one untimed warm-up of each backup command the commands run round-robin,
so background load hits all of them alike. Every run is checked (exit status;
``restore`` must report ``ok``; the plain restore must bring back every row).

Peak RSS: ``wait4``'s ``ru_maxrss`` would be the largest of migration-guard and
its reaped children, so it cannot separate migration-guard's own memory from
the dump tool's. Instead a sampler reads ``VmHWM`` (the kernel's per-process
peak RSS) from ``/proc`` for the whole process tree every few milliseconds and
keeps the largest value seen per process; the target (<= 200 MB) is about
migration-guard's Python process, the dump and client tools are reported beside.

Needs the MariaDB server on 127.0.0.1:3306 (root, no password) and the client
tools. Run: ``python bench/bench_backup.py [--rows N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

BIN = Path(sys.executable).parent
GUARD = str(BIN / "migration-guard")
ADMIN = ["-uroot", "-h127.0.0.1", "-P3306"]
SAMPLE_INTERVAL = 0.005


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
    """Create and fill the benchmark database; its size in bytes (data + indexes)."""
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
    # information_schema sizes are estimates until the statistics are refreshed.
    sql("ANALYZE TABLE events", name)
    return table_bytes(name)


def table_bytes(name: str) -> int:
    size = sql(
        "SELECT SUM(data_length + index_length) FROM information_schema.tables "
        f"WHERE table_schema = '{name}'"
    )
    return int(float(size.strip() or 0))


# -- measuring -----------------------------------------------------------------------------


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants, through ``/proc/<pid>/task/<tid>/children``."""
    found: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    pending.extend(int(child) for child in handle.read().split())
            except OSError:
                continue
    return found


def _peak_rss(pid: int) -> tuple[str, int] | None:
    """(command name, VmHWM bytes) of a live process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            status = handle.read()
    except OSError:
        return None
    name = ""
    peak = 0
    for line in status.splitlines():
        if line.startswith("Name:"):
            name = line.split(None, 1)[1].strip() if len(line.split()) > 1 else ""
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return name, peak


class TreeSampler(threading.Thread):
    """Largest VmHWM seen per process of a tree, keyed by pid; names kept beside."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peaks: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            for pid in _process_tree(self.root):
                sample = _peak_rss(pid)
                if sample is None:
                    continue
                name, peak = sample
                if name and name != self.names.get(pid):
                    # An exec: the forked copy of the parent counted until now.
                    self.names[pid] = name
                    self.peaks[pid] = 0
                self.peaks[pid] = max(self.peaks.get(pid, 0), peak)
            self._halt.wait(SAMPLE_INTERVAL)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak_of(self, predicate: Callable[[int, str], bool]) -> int:
        """The largest peak among the processes ``predicate(pid, name)`` selects."""
        return max(
            (peak for pid, peak in self.peaks.items() if predicate(pid, self.names.get(pid, ""))),
            default=0,
        )


def server_cpu_seconds() -> float:
    """CPU time the local MariaDB server has used so far (0 when it is not visible)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)
        except OSError:
            continue
        if fields[0].endswith("(mariadbd") or fields[0].endswith("(mysqld"):
            values = fields[1].split()
            return (int(values[11]) + int(values[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    """One timed process tree: wall seconds, CPU seconds, output, per-process peaks."""

    seconds: float
    stdout: str
    sampler: TreeSampler
    client_cpu: float
    server_cpu: float

    def rss_of_root(self) -> int:
        return self.sampler.peak_of(lambda pid, _name: pid == self.sampler.root)

    def rss_named(self, *names: str) -> int:
        return self.sampler.peak_of(lambda _pid, name: name in names)


def timed(command: str | list[str], env: dict[str, str]) -> Run:
    """Run one command (a shell pipeline when a string), failing loudly on a bad exit."""
    server_before = server_cpu_seconds()
    children_before = children_cpu_seconds()
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        shell=isinstance(command, str),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    sampler = TreeSampler(process.pid)
    sampler.start()
    stdout, stderr = process.communicate()
    elapsed = time.perf_counter() - start
    sampler.stop()
    client_cpu = children_cpu_seconds() - children_before
    server_cpu = server_cpu_seconds() - server_before
    if process.returncode != 0:
        raise SystemExit(
            f"benchmark command failed ({process.returncode}): {command}\n"
            + stderr.decode(errors="replace")[-2000:]
        )
    return Run(elapsed, stdout.decode(errors="replace"), sampler, client_cpu, server_cpu)


@dataclass
class Series:
    """The samples of one benchmark side."""

    seconds: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    rss: dict[str, list[int]] = field(default_factory=dict)

    def add(self, run: Run, **rss: int) -> None:
        self.seconds.append(run.seconds)
        self.client_cpu.append(run.client_cpu)
        self.server_cpu.append(run.server_cpu)
        for name, value in rss.items():
            self.rss.setdefault(name, []).append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def cpu(self) -> dict[str, float]:
        """Median CPU seconds of the command's processes and of the database server."""
        return {
            "client": round(statistics.median(self.client_cpu), 2),
            "server": round(statistics.median(self.server_cpu), 2),
        }

    def peak_mb(self, name: str) -> float:
        return round(max(self.rss.get(name, [0])) / 1e6, 1)


def versions() -> dict[str, str]:
    def first_line(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError:
            return "missing"
        return (done.stdout or done.stderr).strip().splitlines()[0]

    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "missing"

    return {
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}",
        "python": platform.python_version(),
        "migration-guard": dist("migration-guard"),
        "zstandard": dist("zstandard"),
        "cryptography": dist("cryptography"),
        "server": sql("SELECT VERSION()").strip(),
        "dump tool": first_line([dumper(), "--version"]),
        "client": first_line([client(), "--version"]),
        "gzip": first_line(["gzip", "--version"]),
        "openssl": first_line(["openssl", "version"]),
    }


# -- the benchmark -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = f"mg_bench_{uuid.uuid4().hex[:8]}"
    target = f"{source}_restore"
    results: dict[str, object] = {"rows": args.rows, "repeat": args.repeat}
    results["versions"] = versions()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = dict(os.environ)
        key = subprocess.run([GUARD, "keygen"], check=True, capture_output=True, text=True)
        env["MIGRATION_GUARD_KEY"] = key.stdout.strip()
        env["MIGRATION_GUARD_BACKUP_DIR"] = str(work / "backups")
        env["BENCH_PASS"] = "bench-passphrase-not-secret"
        # No pyproject.toml of the repository is picked up: defaults only.
        env["MIGRATION_GUARD_CONFIG"] = str(work / "empty.toml")
        (work / "empty.toml").write_text("")
        admin = " ".join(ADMIN)
        try:
            started = time.perf_counter()
            results["database_bytes"] = make_database(source, args.rows)
            results["generate_s"] = round(time.perf_counter() - started, 1)
            url = f"mysql+pymysql://root@127.0.0.1:3306/{source}"
            guard_backup = [
                GUARD,
                "backup",
                "--url",
                url,
                "--compress",
                "zstd",
                "--encrypt",
                "--format",
                "json",
            ]
            plan_pipeline = (
                f"{dumper()} {admin} --single-transaction {source} | gzip | "
                "openssl enc -aes-256-cbc -pbkdf2 -pass env:BENCH_PASS "
                f"> {work}/plan.sql.gz.enc"
            )
            raw_dump = f"{dumper()} {admin} --single-transaction {source} > {work}/raw.sql"
            # For information only: the same backup with server checksums on.
            (work / "server-checksums.toml").write_text(
                "[tool.migration_guard.backup]\nserver_checksums = true\n"
            )
            checksums_env = {**env, "MIGRATION_GUARD_CONFIG": str(work / "server-checksums.toml")}
            guard, plan, raw, with_checksums = Series(), Series(), Series(), Series()
            manifests: list[dict[str, object]] = []
            dump_names = ("mariadb-dump", "mysqldump")
            for warm in (True, *([False] * args.repeat)):
                run = timed(guard_backup, env)
                manifest = json.loads(run.stdout)
                if not warm:
                    manifests.append(manifest)
                    guard.add(run, guard=run.rss_of_root(), dump=run.rss_named(*dump_names))
                run = timed(plan_pipeline, env)
                if not warm:
                    plan.add(run, dump=run.rss_named(*dump_names))
                run = timed(raw_dump, env)
                if not warm:
                    raw.add(run, dump=run.rss_named(*dump_names))
                run = timed(guard_backup, checksums_env)
                if not warm:
                    with_checksums.add(run, guard=run.rss_of_root())
            backup_id = str(manifests[-1]["id"])
            artifact = manifests[-1]["artifact"]
            assert isinstance(artifact, dict)
            results.update(
                backup_guard_s=round(guard.median, 2),
                backup_plan_pipeline_s=round(plan.median, 2),
                backup_raw_mysqldump_s=round(raw.median, 2),
                backup_ratio_vs_plan=round(guard.median / plan.median, 2),
                backup_ratio_vs_raw=round(guard.median / raw.median, 2),
                backup_guard_server_checksums_s=round(with_checksums.median, 2),
                backup_guard_checksums_ratio_vs_raw=round(with_checksums.median / raw.median, 2),
                backup_cpu_s={
                    "guard": guard.cpu(),
                    "guard server checksums": with_checksums.cpu(),
                    "plan pipeline": plan.cpu(),
                    "raw mysqldump": raw.cpu(),
                },
                backup_guard_samples_s=[round(s, 2) for s in guard.seconds],
                backup_plan_samples_s=[round(s, 2) for s in plan.seconds],
                backup_raw_samples_s=[round(s, 2) for s in raw.seconds],
                backup_peak_rss_guard_mb=guard.peak_mb("guard"),
                backup_peak_rss_dump_tool_mb=guard.peak_mb("dump"),
                raw_dump_peak_rss_dump_tool_mb=raw.peak_mb("dump"),
                artifact_bytes=artifact["size"],
                plain_bytes=artifact["plain_size"],
                plan_pipeline_bytes=(work / "plan.sql.gz.enc").stat().st_size,
                raw_dump_bytes=(work / "raw.sql").stat().st_size,
            )
            restore_guard, restore_plain = Series(), Series()
            target_url = f"mysql+pymysql://root@127.0.0.1:3306/{target}"
            guard_restore = [
                GUARD,
                "restore",
                backup_id,
                "--url",
                target_url,
                "--yes",
                "--format",
                "json",
            ]
            plain_restore = f"{client()} {admin} {target} < {work}/raw.sql"
            client_names = ("mariadb", "mysql")
            for _ in range(args.repeat):
                sql(f"DROP DATABASE IF EXISTS `{target}`")
                sql(f"CREATE DATABASE `{target}`")
                run = timed(guard_restore, env)
                outcome = json.loads(run.stdout)
                if not outcome.get("ok"):
                    raise SystemExit(f"restore reported mismatches: {outcome}")
                restore_guard.add(run, guard=run.rss_of_root(), client=run.rss_named(*client_names))
                sql(f"DROP DATABASE IF EXISTS `{target}`")
                sql(f"CREATE DATABASE `{target}`")
                run = timed(plain_restore, env)
                restored = int(sql("SELECT COUNT(*) FROM events", target).strip())
                if restored != args.rows:
                    raise SystemExit(f"plain restore brought back {restored} of {args.rows} rows")
                restore_plain.add(run, client=run.rss_named(*client_names))
            results.update(
                restore_guard_s=round(restore_guard.median, 2),
                restore_plain_client_s=round(restore_plain.median, 2),
                restore_ratio=round(restore_guard.median / restore_plain.median, 2),
                restore_cpu_s={"guard": restore_guard.cpu(), "plain": restore_plain.cpu()},
                restore_guard_samples_s=[round(s, 2) for s in restore_guard.seconds],
                restore_plain_samples_s=[round(s, 2) for s in restore_plain.seconds],
                restore_peak_rss_guard_mb=restore_guard.peak_mb("guard"),
                restore_peak_rss_client_mb=restore_guard.peak_mb("client"),
            )
        finally:
            sql(f"DROP DATABASE IF EXISTS `{source}`")
            sql(f"DROP DATABASE IF EXISTS `{target}`")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

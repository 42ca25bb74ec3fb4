"""Benchmark: the guarded upgrade against a plain ``alembic upgrade``, in one run.

1. Guard overhead. A generated 50-revision Alembic chain (every revision creates
   a table or adds a nullable column, so the check finds nothing and no safety
   backup is taken) is applied to a fresh database by ``migration-guard upgrade
   head --yes`` and by ``alembic upgrade head``, on a SQLite file and on MariaDB.
   Target: <= 1.25x.
2. Safety-backup time. On MariaDB, a protected table ``accounts`` of about 1 MB
   sits beside an untouched table ``history`` at two sizes (about 30 MB and
   300 MB, made with ``seq_1_to_N``). A revision drops a column of ``accounts``,
   approved with ``--allow drop-column:accounts --reason bench``. The safety
   backup's time is read from its manifest (``finished_at - started_at``); as a
   second measure ``migration-guard backup --type tables --tables accounts`` is
   timed as a whole process. Target: under 2 s and independent of the untouched
   size. One full backup per size is timed for contrast.

Fairness: every command is a whole process (start-up counts on every side);
after one untimed warm-up of each, the commands run interleaved, ``--repeat``
times each, on a fresh database each time (created outside the timing). The
order alternates from round to round (A B, B A, A B, ...), so neither side
always runs first after a reset or right after the other one. Every run is
checked: exit status, the guard's JSON outcome (``applied``, no findings and no
backup in part 1; a safety backup of ``accounts`` in part 2) and the version
table (the chain's last revision). Reported: the median of each side, its
spread (min, quartiles, max), the ratio of the medians and, because the two
runs of a round share the machine's state of that moment, the median of the
per-round ratios with its own spread. Part 1's verdict is on the latter. Part 1
also reports the CPU time (user + system) of each process and the median per-round
CPU ratio: on a shared machine it moves far less than wall time (it leaves out the
database server's work and the waits for the disk).

The project's env.py is Alembic's own ``generic`` template: it knows nothing of
migration-guard. Needs MariaDB on 127.0.0.1:3306 (root, no password).
Run: ``python bench/bench_upgrade.py [--repeat N] [--revisions N]``.
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
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

import alembic

BIN = Path(sys.executable).parent
GUARD = str(BIN / "migration-guard")
ALEMBIC = str(BIN / "alembic")
ADMIN = ["-uroot", "-h127.0.0.1", "-P3306"]
SERVER = "mysql+pymysql://root@127.0.0.1:3306"
TEMPLATE = Path(alembic.__file__).parent / "templates" / "generic"

INI = """\
[alembic]
script_location = %(here)s/migrations
prepend_sys_path = .
path_separator = os
sqlalchemy.url = {url}

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %%(levelname)-5.5s [%%(name)s] %%(message)s
"""

REVISION = '''\
"""{doc}"""
import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{body}

def downgrade():
    pass
'''


def client() -> str:
    return shutil.which("mariadb") or shutil.which("mysql") or "mysql"


def sql(statement: str, database: str | None = None) -> str:
    command = [client(), *ADMIN, "-N", "-e", statement]
    if database:
        command.append(database)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


# -- projects ------------------------------------------------------------------------------


def write_project(
    root: Path, url: str, revisions: list[tuple[str, str]], protected: tuple[str, ...] = ()
) -> Path:
    """alembic.ini, the generic env.py, the revisions and a pyproject.toml; returns the toml."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    shutil.copy(TEMPLATE / "env.py", root / "migrations" / "env.py")
    shutil.copy(TEMPLATE / "script.py.mako", root / "migrations" / "script.py.mako")
    (root / "alembic.ini").write_text(INI.format(url=url.replace("%", "%%")), encoding="utf-8")
    previous: str | None = None
    for index, (doc, body) in enumerate(revisions):
        revision = f"r{index:03d}"
        (versions / f"{revision}.py").write_text(
            REVISION.format(doc=doc, revision=revision, down=previous, body=body),
            encoding="utf-8",
        )
        previous = revision
    listing = ", ".join(f'"{name}"' for name in protected)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        "[tool.migration_guard]\n"
        f"protected_tables = [{listing}]\n"
        f'backup_dir = "{root / "backups"}"\n'
        f'alembic_config = "{root / "alembic.ini"}"\n',
        encoding="utf-8",
    )
    return pyproject


def chain(count: int) -> list[tuple[str, str]]:
    """``count`` revisions: a table every third one, nullable columns in between."""
    revisions = []
    for index in range(count):
        if index % 3 == 0:
            body = (
                f"    op.create_table('t{index}', sa.Column('id', sa.Integer, primary_key=True),"
                " sa.Column('name', sa.String(50)))\n"
            )
            doc = f"create table t{index}"
        else:
            table = f"t{index - index % 3}"
            body = f"    op.add_column('{table}', sa.Column('c{index}', sa.Text, nullable=True))\n"
            doc = f"add column c{index} to {table}"
        revisions.append((doc, body))
    return revisions


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Command:
    """One timed process, how to reset the database before it and how to check it."""

    name: str
    argv: list[str]
    reset: Callable[[], None]
    check: Callable[[str], None]
    samples: list[float] = field(default_factory=list)
    #: CPU seconds (user + system) of the process itself, not of the database server.
    cpu_samples: list[float] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def run(self, env: dict[str, str], record: bool) -> None:
        self.reset()
        cpu_before = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(self.argv, capture_output=True, env=env, check=False, text=True)
        elapsed = time.perf_counter() - start
        cpu = _children_cpu() - cpu_before
        if done.returncode != 0:
            raise SystemExit(
                f"{self.name} failed ({done.returncode}): {' '.join(self.argv)}\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        self.check(done.stdout)
        if record:
            self.samples.append(elapsed)
            self.cpu_samples.append(cpu)
            self.outputs.append(done.stdout)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def round_robin(commands: list[Command], env: dict[str, str], repeat: int) -> None:
    """One untimed warm-up of each command, then ``repeat`` timed rounds; every other
    round runs the commands in reverse order (A B, B A, ...)."""
    for command in commands:
        command.run(env, record=False)
    for index in range(repeat):
        for command in commands if index % 2 == 0 else commands[::-1]:
            command.run(env, record=True)


def spread(samples: list[float]) -> dict[str, float]:
    """min, quartiles and max of ``samples`` (rounded for the report)."""
    ordered = sorted(samples)
    if len(ordered) >= 2:
        low, median, high = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        low = median = high = ordered[0]
    return {
        "min": round(ordered[0], 3),
        "q1": round(low, 3),
        "median": round(median, 3),
        "q3": round(high, 3),
        "max": round(ordered[-1], 3),
    }


def bench_env(work: Path, pyproject: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["MIGRATION_GUARD_CONFIG"] = str(pyproject)
    for variable in ("MIGRATION_GUARD_URL", "MIGRATION_GUARD_BACKUP_DIR"):
        env.pop(variable, None)
    return env


def current_revision(url: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


# -- part 1: guard overhead ----------------------------------------------------------------


def overhead(work: Path, backend: str, revisions: int, repeat: int) -> dict[str, object]:
    root = work / f"overhead-{backend}"
    root.mkdir()
    if backend == "sqlite":
        database = root / "app.db"
        url = f"sqlite:///{database}"

        def reset() -> None:
            database.unlink(missing_ok=True)

        def drop() -> None:
            database.unlink(missing_ok=True)
    else:
        name = f"mg_bench_up_{uuid.uuid4().hex[:8]}"
        url = f"{SERVER}/{name}"

        def reset() -> None:
            sql(f"DROP DATABASE IF EXISTS `{name}`")
            sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")

        def drop() -> None:
            sql(f"DROP DATABASE IF EXISTS `{name}`")

    pyproject = write_project(root, url, chain(revisions))
    env = bench_env(work, pyproject)
    last = f"r{revisions - 1:03d}"
    ini = str(root / "alembic.ini")

    def check_alembic(_stdout: str) -> None:
        if current_revision(url) != last:
            raise SystemExit(f"alembic upgrade did not reach {last}")

    def check_guard(stdout: str) -> None:
        outcome = json.loads(stdout)
        if outcome["outcome"] != "applied" or outcome["to"] != [last]:
            raise SystemExit(f"guarded upgrade did not apply the chain: {outcome['outcome']}")
        if outcome["findings"] or outcome["backup"]["id"]:
            raise SystemExit("the benchmark chain must need no backup; it had findings")
        check_alembic(stdout)

    guard = Command(
        "migration-guard upgrade",
        [GUARD, "upgrade", "head", "--yes", "-c", ini, "--format", "json"],
        reset,
        check_guard,
    )
    plain = Command(
        "alembic upgrade", [ALEMBIC, "-c", ini, "upgrade", "head"], reset, check_alembic
    )
    try:
        round_robin([guard, plain], env, repeat)
    finally:
        drop()
    paired = [g / a for g, a in zip(guard.samples, plain.samples, strict=True)]
    return {
        "revisions": revisions,
        "guard_s": round(guard.median, 3),
        "alembic_s": round(plain.median, 3),
        "ratio_of_medians": round(guard.median / plain.median, 2),
        "ratio": round(statistics.median(paired), 2),
        "ratio_spread": {key: round(value, 2) for key, value in spread(paired).items()},
        "guard_spread_s": spread(guard.samples),
        "alembic_spread_s": spread(plain.samples),
        "guard_samples_s": [round(s, 3) for s in guard.samples],
        "alembic_samples_s": [round(s, 3) for s in plain.samples],
        # CPU time of the two processes (not the server's): steadier than wall time on
        # a shared machine, and what the guard's own work costs.
        "cpu_ratio": round(
            statistics.median(
                g / a for g, a in zip(guard.cpu_samples, plain.cpu_samples, strict=True)
            ),
            2,
        ),
        "guard_cpu_s": spread(guard.cpu_samples),
        "alembic_cpu_s": spread(plain.cpu_samples),
        "target": 1.25,
        "met": statistics.median(paired) <= 1.25,
    }


# -- part 2: safety-backup time ------------------------------------------------------------

ACCOUNTS_ROWS = 8_000


def fill_accounts(database: str) -> None:
    """A ~1 MB protected table with a column the revision drops."""
    sql("DROP TABLE IF EXISTS accounts", database)
    sql(
        "CREATE TABLE accounts (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL, "
        "legacy_note VARCHAR(100), created_at DATETIME NOT NULL) ENGINE=InnoDB",
        database,
    )
    sql(
        "INSERT INTO accounts SELECT seq, CONCAT('user', seq, '@example.com'), "
        "REPEAT(MD5(seq), 2), '2026-01-01' + INTERVAL seq MINUTE "
        f"FROM seq_1_to_{ACCOUNTS_ROWS}",
        database,
    )
    sql("ANALYZE TABLE accounts", database)
    sql("DELETE FROM alembic_version", database)
    sql("INSERT INTO alembic_version VALUES ('r000')", database)


def fill_history(database: str, rows: int) -> None:
    """The untouched table: ~200 bytes of JSON and TEXT per row."""
    sql(
        "CREATE TABLE history (id BIGINT PRIMARY KEY, account_id INT NOT NULL, "
        "payload JSON NOT NULL, body TEXT NOT NULL, created_at DATETIME NOT NULL, "
        "KEY by_account (account_id)) ENGINE=InnoDB",
        database,
    )
    sql(
        "INSERT INTO history SELECT seq, seq % 8000, "
        "JSON_OBJECT('kind', ELT(1 + seq % 3, 'click', 'view', 'buy'), 'n', seq), "
        "CONCAT(REPEAT(MD5(seq), 2), ' ', REPEAT('lorem ipsum ', 4)), "
        f"'2026-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}",
        database,
    )


def table_sizes(database: str) -> dict[str, int]:
    rows = sql(
        "SELECT table_name, data_length + index_length FROM information_schema.tables "
        f"WHERE table_schema = '{database}'"
    )
    return {name: int(size) for name, size in (line.split("\t") for line in rows.splitlines())}


def manifest_seconds(env: dict[str, str], backup_id: str) -> float:
    shown = subprocess.run(
        [GUARD, "backups", "show", backup_id, "--format", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    manifest = json.loads(shown)
    started = datetime.fromisoformat(manifest["started_at"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(manifest["finished_at"].replace("Z", "+00:00"))
    return (finished - started).total_seconds()


def safety_backup(work: Path, history_rows: int, repeat: int) -> dict[str, object]:
    name = f"mg_bench_sb_{uuid.uuid4().hex[:8]}"
    url = f"{SERVER}/{name}"
    root = work / f"safety-{history_rows}"
    root.mkdir()
    revisions = [
        ("accounts (made by the benchmark)", "    pass\n"),
        ("drop accounts.legacy_note", "    op.drop_column('accounts', 'legacy_note')\n"),
    ]
    pyproject = write_project(root, url, revisions, protected=("accounts",))
    env = bench_env(work, pyproject)
    ini = str(root / "alembic.ini")
    sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)", name)
        fill_history(name, history_rows)
        fill_accounts(name)
        sql("ANALYZE TABLE history", name)
        sizes = table_sizes(name)

        def reset() -> None:
            fill_accounts(name)

        def check_upgrade(stdout: str) -> None:
            outcome = json.loads(stdout)
            if outcome["outcome"] != "applied" or "accounts" not in outcome["backup"]["tables"]:
                raise SystemExit(f"the guarded upgrade took no safety backup: {outcome}")
            if "history" in outcome["backup"]["tables"]:
                raise SystemExit("the safety backup covered the untouched table")

        def check_backup(stdout: str) -> None:
            if sorted(json.loads(stdout)["tables"]) != ["accounts"]:
                raise SystemExit("the tables backup did not hold just accounts")

        upgrade = Command(
            "migration-guard upgrade (drop-column, approved)",
            [
                GUARD,
                "upgrade",
                "head",
                "--yes",
                "-c",
                ini,
                "--allow",
                "drop-column:accounts",
                "--reason",
                "bench",
                "--format",
                "json",
            ],
            reset,
            check_upgrade,
        )
        tables_backup = Command(
            "migration-guard backup --type tables --tables accounts",
            [
                GUARD,
                "backup",
                "--url",
                url,
                "--type",
                "tables",
                "--tables",
                "accounts",
                "--format",
                "json",
            ],
            reset,
            check_backup,
        )
        round_robin([upgrade, tables_backup], env, repeat)
        safety = [manifest_seconds(env, json.loads(out)["backup"]["id"]) for out in upgrade.outputs]
        direct = [manifest_seconds(env, json.loads(out)["id"]) for out in tables_backup.outputs]
        full = Command(
            "migration-guard backup (full, for contrast)",
            [GUARD, "backup", "--url", url, "--format", "json"],
            reset,
            lambda _out: None,
        )
        full.run(env, record=True)
        return {
            "history_bytes": sizes.get("history", 0),
            "accounts_bytes": sizes.get("accounts", 0),
            "safety_backup_manifest_s": round(statistics.median(safety), 3),
            "safety_backup_manifest_samples_s": [round(s, 3) for s in safety],
            "upgrade_process_s": round(upgrade.median, 3),
            "tables_backup_process_s": round(tables_backup.median, 3),
            "tables_backup_manifest_s": round(statistics.median(direct), 3),
            "full_backup_process_s": round(full.median, 3),
        }
    finally:
        sql(f"DROP DATABASE IF EXISTS `{name}`")


def versions() -> dict[str, str]:
    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "missing"

    return {
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}",
        "python": platform.python_version(),
        "migration-guard": dist("migration-guard"),
        "alembic": dist("alembic"),
        "sqlalchemy": dist("sqlalchemy"),
        "pymysql": dist("pymysql"),
        "server": sql("SELECT VERSION()").strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--revisions", type=int, default=50)
    parser.add_argument(
        "--history-rows",
        type=int,
        nargs="+",
        default=[150_000, 1_500_000],
        help="rows of the untouched table (about 200 bytes each)",
    )
    parser.add_argument("--only", choices=["overhead", "safety"], default=None)
    # bench/run.py passes its own arguments to every benchmark; ignore the others' options.
    args, _ = parser.parse_known_args()
    results: dict[str, object] = {"repeat": args.repeat, "versions": versions()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only in (None, "overhead"):
            for backend in ("sqlite", "mysql"):
                results[f"overhead_{backend}"] = overhead(
                    work, backend, args.revisions, args.repeat
                )
        if args.only in (None, "safety"):
            results["safety_backup"] = [
                safety_backup(work, rows, args.repeat) for rows in args.history_rows
            ]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: ``migration-guard check`` against its anchors, side by side in one run.

1. A generated 5,000-statement PostgreSQL corpus: whole-process time of
   ``migration-guard check --format json`` vs ``squawk --reporter json`` vs a
   bare ``sqlglot.parse`` of the same text (also a process, so start-up counts
   on every side). Targets: <= 2x squawk with the ``fast`` extra, <= 3x
   without; <= 1.6x bare parse.
1b. A corpus where findings are many: 5,000 statements of which 2,000 drop,
   truncate or delete (without ``WHERE``) protected tables, so the JSON report
   is large. Same commands and targets against squawk.
2. A generated 300-revision Alembic chain: ``migration-guard check --range
   base:head`` vs ``alembic upgrade base:head --sql``. Target: <= 1.5x.
3. Start-up, which is what a pre-commit hook feels: ``migration-guard
   --version``, ``check`` of a one-statement file, and ``python -c pass`` /
   ``python -c "import sqlglot"`` as reference points.

Fairness: every command is a whole process; after one untimed warm-up of each
(page cache, bytecode cache) the commands run round-robin, ``--repeat`` times
each, so that background load hits all of them alike; medians are reported,
of wall-clock time and of CPU seconds (user + system of the process and its
children, which other jobs on a shared machine disturb far less).
Each run's exit status and output are checked, so a command that fails fast
cannot look fast. Python processes get a bytecode cache (``PYTHONPYCACHEPREFIX``
in the temporary directory, ``PYTHONDONTWRITEBYTECODE`` removed) as in any
normal installation; the repository itself is not written to.

Whether the compiled sqlglot (``pip install 'migration-guard[fast]'``, i.e.
``sqlglotc``) is installed is reported; run once with and once without it.

Run: ``python bench/bench_check.py [--repeat N]``; prints a JSON summary and a
Markdown table for docs/performance.md.
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
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

BIN = Path(sys.executable).parent

TEMPLATES = (
    "CREATE TABLE t{i} (id bigint PRIMARY KEY, name varchar(100) NOT NULL, "
    "created_at timestamptz DEFAULT now(), payload jsonb);",
    "ALTER TABLE t{j} ADD COLUMN note_{i} text;",
    "CREATE INDEX CONCURRENTLY idx_{i} ON t{j} (name);",
    "INSERT INTO t{j} (id, name) VALUES ({i}, 'row {i}; not a statement');",
    "UPDATE t{j} SET name = 'x' WHERE id = {i};",
    "ALTER TABLE t{j} ALTER COLUMN name TYPE varchar(200);",
    "DELETE FROM t{j} WHERE id < {i};",
    "COMMENT ON TABLE t{j} IS 'table {i}';",
    "ALTER TABLE t{j} RENAME COLUMN note_{i} TO remark_{i};",
    "DROP INDEX IF EXISTS idx_{j};",
)


#: Destructive statements on protected tables (``--protect 'vault_*'``): one finding each.
DESTRUCTIVE = (
    "DROP TABLE vault_{i};",
    "TRUNCATE TABLE vault_{i};",
    "DELETE FROM vault_{i};",
    "DROP TABLE IF EXISTS vault_{i} CASCADE;",
)


def findings_corpus(statements: int) -> str:
    """``statements`` statements; two in five destroy data in a protected table."""
    lines = []
    for i in range(statements):
        if i % 5 in (1, 3):
            lines.append(DESTRUCTIVE[(i // 5) % len(DESTRUCTIVE)].format(i=i))
        else:
            lines.append(TEMPLATES[i % len(TEMPLATES)].format(i=i, j=max(i - 10, 0)))
    return "\n".join(lines) + "\n"


def postgres_corpus(statements: int) -> str:
    lines = []
    for i in range(statements):
        template = TEMPLATES[i % len(TEMPLATES)]
        lines.append(template.format(i=i, j=max(i - 10, 0)))
    return "\n".join(lines) + "\n"


def alembic_chain(root: Path, revisions: int) -> Path:
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic.ini").write_text(
        textwrap.dedent(
            """\
            [alembic]
            script_location = %(here)s/migrations
            sqlalchemy.url = sqlite:///%(here)s/bench.db
            """
        )
    )
    (root / "migrations" / "env.py").write_text(
        textwrap.dedent(
            """\
            from alembic import context
            from sqlalchemy import engine_from_config, pool

            config = context.config

            def run_migrations_offline():
                context.configure(url=config.get_main_option("sqlalchemy.url"),
                                  literal_binds=True, dialect_opts={"paramstyle": "named"})
                with context.begin_transaction():
                    context.run_migrations()

            def run_migrations_online():
                engine = engine_from_config(config.get_section(config.config_ini_section, {}),
                                            prefix="sqlalchemy.", poolclass=pool.NullPool)
                with engine.connect() as connection:
                    context.configure(connection=connection)
                    with context.begin_transaction():
                        context.run_migrations()

            if context.is_offline_mode():
                run_migrations_offline()
            else:
                run_migrations_online()
            """
        )
    )
    (root / "migrations" / "script.py.mako").write_text("")
    previous = None
    for index in range(revisions):
        revision = f"r{index:04d}"
        body = (
            f"    op.create_table('t{index}', sa.Column('id', sa.Integer, primary_key=True),"
            f" sa.Column('name', sa.String(50)))\n"
            if index % 3 == 0
            else f"    op.add_column('t{index - index % 3}', sa.Column('c{index}', sa.Text))\n"
        )
        (versions / f"{revision}.py").write_text(
            f'"""revision {index}"""\n'
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = {revision!r}\ndown_revision = {previous!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade():\n{body}\n\ndef downgrade():\n    pass\n"
        )
        previous = revision
    return root / "alembic.ini"


TINY_SQL = "ALTER TABLE accounts ADD COLUMN note text;\n"


@dataclass
class Command:
    """One timed process and how to tell that it did its work."""

    name: str
    argv: list[str]
    ok_codes: tuple[int, ...] = (0,)
    validate: Callable[[bytes], str | None] | None = None
    samples: list[float] = field(default_factory=list)
    #: CPU seconds (user + system) of each timed run: far less sensitive to other load.
    cpu_samples: list[float] = field(default_factory=list)

    def run(self, env: dict[str, str]) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        completed = subprocess.run(self.argv, capture_output=True, env=env, check=False)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.last_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        problem = None
        if completed.returncode not in self.ok_codes:
            problem = f"exit status {completed.returncode}"
        elif self.validate is not None:
            problem = self.validate(completed.stdout)
        if problem:
            raise SystemExit(
                f"{self.name} failed ({problem}): {' '.join(self.argv)}\n"
                + completed.stderr.decode(errors="replace")[-2000:]
            )
        return elapsed

    last_cpu: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_samples)


def guard_json_with(statements: int, errors: int | None = None) -> Callable[[bytes], str | None]:
    """Validate a ``--format json`` report that analysed ``statements`` statements
    (and found ``errors`` errors, when given)."""

    def validate(stdout: bytes) -> str | None:
        try:
            summary = json.loads(stdout)["summary"]
        except (ValueError, KeyError, TypeError) as exc:
            return f"no JSON report ({exc})"
        if summary.get("statements") != statements:
            return f"analysed {summary.get('statements')} statements, expected {statements}"
        if errors is not None and summary.get("errors") != errors:
            return f"found {summary.get('errors')} errors, expected {errors}"
        return None

    return validate


def json_list(stdout: bytes) -> str | None:
    try:
        return None if isinstance(json.loads(stdout), list) else "not a JSON list"
    except ValueError as exc:
        return f"no JSON output ({exc})"


def sql_with(marker: str) -> Callable[[bytes], str | None]:
    def validate(stdout: bytes) -> str | None:
        return None if marker.encode() in stdout else f"{marker!r} missing from the output"

    return validate


def measure(commands: Sequence[Command], repeat: int, env: dict[str, str]) -> None:
    """One untimed warm-up each, then ``repeat`` round-robin timed runs."""
    for command in commands:
        command.run(env)
    for _ in range(repeat):
        for command in commands:
            command.samples.append(command.run(env))
            command.cpu_samples.append(command.last_cpu)


def child_environment(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    env.pop("NO_COLOR", None)
    return env


def installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--revisions", type=int, default=300)
    args = parser.parse_args()
    guard_bin = str(BIN / "migration-guard")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = child_environment(root / "pycache")
        corpus = root / "corpus.sql"
        corpus.write_text(postgres_corpus(args.statements))
        many = root / "findings.sql"
        many.write_text(findings_corpus(args.statements))
        tiny = root / "tiny.sql"
        tiny.write_text(TINY_SQL)
        ini = alembic_chain(root / "chain", args.revisions)
        squawk = shutil.which("squawk", path=str(BIN)) or shutil.which("squawk")
        last = f"r{args.revisions - 1:04d}"

        guard = Command(
            "guard",
            [guard_bin, "check", str(corpus), "--dialect", "postgresql", "--format", "json"],
            ok_codes=(0, 1),
            validate=guard_json_with(args.statements),
        )
        bare = Command(
            "bare_parse",
            [
                sys.executable,
                "-c",
                "import sys, sqlglot\n"
                "n = len(sqlglot.parse(open(sys.argv[1]).read(), read='postgres'))\n"
                "print(n)",
                str(corpus),
            ],
            validate=sql_with(str(args.statements)),
        )
        many_guard = Command(
            "findings_guard",
            [
                *[guard_bin, "check", str(many), "--dialect", "postgresql"],
                *["--format", "json", "--protect", "vault_*"],
            ],
            ok_codes=(1,),
            validate=guard_json_with(args.statements, errors=args.statements * 2 // 5),
        )
        corpus_commands = [guard, bare, many_guard]
        squawk_command = many_squawk = None
        if squawk:
            squawk_command = Command(
                "squawk", [squawk, "--reporter", "json", str(corpus)], (0, 1), json_list
            )
            many_squawk = Command(
                "findings_squawk", [squawk, "--reporter", "json", str(many)], (0, 1), json_list
            )
            corpus_commands += [squawk_command, many_squawk]
        chain_guard = Command(
            "chain_guard",
            [guard_bin, "check", "-c", str(ini), "--range", "base:head", "--format", "json"],
            ok_codes=(0, 1),
            validate=guard_json_with(args.revisions),
        )
        chain_alembic = Command(
            "chain_alembic_sql",
            [str(BIN / "alembic"), "-c", str(ini), "upgrade", "base:head", "--sql"],
            validate=sql_with(last),
        )
        startup = [
            Command("python_pass", [sys.executable, "-c", "pass"]),
            Command("python_import_sqlglot", [sys.executable, "-c", "import sqlglot"]),
            Command("guard_version", [guard_bin, "--version"]),
            Command(
                "guard_check_tiny",
                [guard_bin, "check", str(tiny), "--dialect", "postgresql"],
                ok_codes=(0, 1),
            ),
        ]
        measure(corpus_commands, args.repeat, env)
        measure([chain_guard, chain_alembic], args.repeat, env)
        measure(startup, args.repeat, env)

    results: dict[str, object] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "sqlglot": installed("sqlglot"),
        "sqlglotc": installed("sqlglotc") or "not installed",
        "squawk": installed("squawk-cli") or "not installed",
        "repeat": args.repeat,
    }
    for command in [*corpus_commands, chain_guard, chain_alembic, *startup]:
        results[f"{command.name}_s"] = round(command.median, 4)
    results["ratio_vs_bare_parse"] = round(guard.median / bare.median, 3)
    if squawk_command is not None and many_squawk is not None:
        results["ratio_vs_squawk"] = round(guard.median / squawk_command.median, 3)
        results["ratio_findings_vs_squawk"] = round(many_guard.median / many_squawk.median, 3)
        for command in (guard, squawk_command, many_guard, many_squawk):
            results[f"{command.name}_cpu_s"] = round(command.cpu_median, 4)
        results["cpu_ratio_vs_squawk"] = round(guard.cpu_median / squawk_command.cpu_median, 3)
        results["cpu_ratio_findings_vs_squawk"] = round(
            many_guard.cpu_median / many_squawk.cpu_median, 3
        )
    results["ratio_chain"] = round(chain_guard.median / chain_alembic.median, 3)
    print(json.dumps(results, indent=2))
    print(markdown(results, squawk_command is not None))


def markdown(results: dict[str, object], with_squawk: bool) -> str:
    def row(what: str, key: str, anchor: str = "", ratio: str = "", target: str = "") -> str:
        ratio_text = f"{results[ratio]:.2f}x" if ratio else ""
        return f"| {what} | {results[key]:.3f} | {anchor} | {ratio_text} | {target} |"

    lines = [
        f"sqlglotc: {results['sqlglotc']}",
        "",
        "| command | median s | compared with | ratio | target |",
        "|---|---|---|---|---|",
        row("check --format json, corpus", "guard_s"),
        row("bare sqlglot.parse, corpus", "bare_parse_s", "", "", ""),
    ]
    target = "<= 2x" if results["sqlglotc"] != "not installed" else "<= 3x"
    if with_squawk:
        lines.append(row("squawk --reporter json, corpus", "squawk_s"))
        lines.append(row("check vs squawk", "guard_s", "squawk", "ratio_vs_squawk", target))
    lines.append(row("check --format json, many findings", "findings_guard_s"))
    if with_squawk:
        lines += [
            row("check, CPU s (user + system)", "guard_cpu_s"),
            row("squawk, CPU s", "squawk_cpu_s"),
            row("check vs squawk, CPU", "guard_cpu_s", "squawk", "cpu_ratio_vs_squawk", target),
            row("check, many findings, CPU s", "findings_guard_cpu_s"),
            row("squawk, many findings, CPU s", "findings_squawk_cpu_s"),
            row(
                "check vs squawk, many findings, CPU",
                "findings_guard_cpu_s",
                "squawk",
                "cpu_ratio_findings_vs_squawk",
                target,
            ),
            row("squawk --reporter json, many findings", "findings_squawk_s"),
            row(
                "check vs squawk, many findings",
                "findings_guard_s",
                "squawk",
                "ratio_findings_vs_squawk",
                target,
            ),
        ]
    lines += [
        row("check vs bare parse", "guard_s", "bare parse", "ratio_vs_bare_parse", "<= 1.6x"),
        row("check --range base:head, chain", "chain_guard_s"),
        row("alembic upgrade base:head --sql", "chain_alembic_sql_s"),
        row("check vs alembic --sql", "chain_guard_s", "alembic", "ratio_chain", "<= 1.5x"),
        row("python -c pass", "python_pass_s"),
        row('python -c "import sqlglot"', "python_import_sqlglot_s"),
        row("migration-guard --version", "guard_version_s"),
        row("check of a one-statement file", "guard_check_tiny_s"),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

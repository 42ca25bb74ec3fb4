"""Benchmark: ``migration-guard check`` against its anchors, side by side in one run.

1. A generated 5,000-statement PostgreSQL corpus: whole-process time of
   ``migration-guard check --format json`` vs ``squawk --reporter json`` vs a
   bare ``sqlglot.parse`` of the same text (also a process, so start-up counts
   on every side). Targets: <= 3x squawk, <= 1.6x bare parse.
2. A generated 300-revision Alembic chain: ``migration-guard check --range
   base:head`` vs ``alembic upgrade base:head --sql``. Target: <= 1.5x.

Run: ``python bench/bench_check.py [--repeat N]``; prints a JSON summary and a
Markdown table for docs/performance.md.
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
import textwrap
import time
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


def postgres_corpus(statements: int) -> str:
    lines = []
    for i in range(statements):
        template = TEMPLATES[i % len(TEMPLATES)]
        lines.append(template.format(i=i, j=max(i - 10, 0)))
    return "\n".join(lines) + "\n"


def median_seconds(command: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--revisions", type=int, default=300)
    args = parser.parse_args()
    results: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus.sql"
        corpus.write_text(postgres_corpus(args.statements))
        guard = [str(BIN / "migration-guard"), "check", str(corpus), "--dialect", "postgresql",
                 "--format", "json"]
        bare = [sys.executable, "-c",
                "import sys, sqlglot; sqlglot.parse(open(sys.argv[1]).read(), read='postgres')",
                str(corpus)]
        results["guard_s"] = median_seconds(guard, args.repeat)
        results["bare_parse_s"] = median_seconds(bare, args.repeat)
        squawk = shutil.which("squawk", path=str(BIN)) or shutil.which("squawk")
        if squawk:
            results["squawk_s"] = median_seconds(
                [squawk, "--reporter", "json", str(corpus)], args.repeat
            )
            results["ratio_vs_squawk"] = results["guard_s"] / results["squawk_s"]
        else:
            results["squawk_s"] = "not installed (pip install squawk-cli)"
        results["ratio_vs_bare_parse"] = results["guard_s"] / results["bare_parse_s"]
        try:
            import sqlglotc  # noqa: F401

            results["sqlglotc"] = "installed"
        except ImportError:
            results["sqlglotc"] = "not installed"

        ini = alembic_chain(root / "chain", args.revisions)
        env = dict(os.environ)
        guard_chain = [str(BIN / "migration-guard"), "check", "-c", str(ini), "--range",
                       "base:head", "--format", "json"]
        alembic_sql = [str(BIN / "alembic"), "-c", str(ini), "upgrade", "base:head", "--sql"]
        results["chain_guard_s"] = median_seconds(guard_chain, args.repeat, env)
        results["chain_alembic_sql_s"] = median_seconds(alembic_sql, args.repeat, env)
        results["ratio_chain"] = results["chain_guard_s"] / results["chain_alembic_sql_s"]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

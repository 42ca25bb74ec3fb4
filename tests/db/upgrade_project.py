"""A small Alembic project in a temporary directory, for the guarded-upgrade tests.

Its env.py is exactly the ``alembic init`` generic template: it reads
``sqlalchemy.url`` from alembic.ini and knows nothing of migration-guard.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import alembic
import pytest
import sqlalchemy as sa

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
level = WARNING
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

HEADER = '''\
"""{doc}"""
import os
import time

import sqlalchemy as sa
from alembic import context, op

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def _tick():
    """Fault injection: count statements; raise after the one named by -x fail_at."""
    if context.is_offline_mode():
        return
    arguments = context.get_x_argument(as_dictionary=True)
    counter = context.config.attributes.setdefault("mg_test_counter", [0])
    if int(arguments.get("fail_at", "-1")) == counter[0]:
        raise RuntimeError(f"injected failure after statement {{counter[0]}}")
    counter[0] += 1


def _online():
    return not context.is_offline_mode()

'''

BASE_REVISION = """
def upgrade():
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("notes", sa.Text, nullable=True),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
    )
    op.create_table(
        "scratch",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("payload", sa.String(50)),
    )


def downgrade():
    op.drop_table("scratch")
    op.drop_table("orders")
    op.drop_table("customers")
"""


@dataclass
class Project:
    """Paths and helpers of a generated project."""

    root: Path
    url: str

    @property
    def ini(self) -> Path:
        return self.root / "alembic.ini"

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"

    @property
    def versions(self) -> Path:
        return self.root / "migrations" / "versions"

    @property
    def backup_dir(self) -> Path:
        return self.root / "backups"

    def add_revision(self, revision: str, down: str | None, body: str, doc: str = "") -> Path:
        path = self.versions / f"{revision}.py"
        text = HEADER.format(doc=doc or revision, revision=revision, down=down)
        path.write_text(text + textwrap.dedent(body), encoding="utf-8")
        return path

    def config(self) -> Any:
        from migration_guard.config import load_config

        return load_config(self.pyproject)

    def alembic_upgrade(self, revision: str = "head") -> None:
        """A plain, unguarded ``alembic upgrade``."""
        from alembic import command
        from alembic.config import Config

        command.upgrade(Config(str(self.ini)), revision)

    def execute(self, *statements: str) -> None:
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(sa.text(statement))
        finally:
            engine.dispose()

    def snapshot(self) -> dict[str, Any]:
        """Every table's rows, checksum and DDL, and the Alembic heads."""
        from migration_guard.dialects import get_dialect_ops

        url = sa.engine.make_url(self.url)
        ops = get_dialect_ops(url.get_backend_name())
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                tables = ops.list_tables(conn)
                stats = ops.table_stats(conn, tables)
                heads: list[str] = []
                if "alembic_version" in tables:
                    heads = sorted(
                        str(row[0])
                        for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                    )
        finally:
            engine.dispose()
        return {
            "tables": {
                name: (value.rows, value.checksum, value.ddl_sha256)
                for name, value in stats.items()
            },
            "heads": heads,
        }

    def file_digest(self) -> str | None:
        """SHA-256 of the SQLite database file (None for a server database)."""
        url = sa.engine.make_url(self.url)
        if url.get_backend_name() != "sqlite":
            return None
        return hashlib.sha256(Path(url.database or "").read_bytes()).hexdigest()


def make_project(
    root: Path,
    url: str,
    *,
    protected: tuple[str, ...] = ("customers", "orders"),
    upgrade_settings: str = "",
) -> Project:
    """Write alembic.ini, the generic env.py, pyproject.toml and the base revision."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "migrations" / "versions").mkdir(parents=True)
    shutil.copy(TEMPLATE / "env.py", root / "migrations" / "env.py")
    shutil.copy(TEMPLATE / "script.py.mako", root / "migrations" / "script.py.mako")
    (root / "alembic.ini").write_text(INI.format(url=url.replace("%", "%%")), encoding="utf-8")
    listing = ", ".join(f'"{name}"' for name in protected)
    (root / "pyproject.toml").write_text(
        "[tool.migration_guard]\n"
        f"protected_tables = [{listing}]\n"
        f'backup_dir = "{root / "backups"}"\n'
        f'alembic_config = "{root / "alembic.ini"}"\n'
        + (f"\n[tool.migration_guard.upgrade]\n{upgrade_settings}\n" if upgrade_settings else ""),
        encoding="utf-8",
    )
    project = Project(root, url)
    project.add_revision("r1", None, BASE_REVISION, doc="base tables")
    return project


def seed(project: Project) -> None:
    """Apply the base revision with plain Alembic and put rows in."""
    project.alembic_upgrade("r1")
    project.execute(
        "INSERT INTO customers (id, email, notes) VALUES "
        "(1, 'a@example.com', 'vip'), (2, 'b@example.com', NULL), (3, 'c@example.com', 'x')",
        "INSERT INTO orders (id, customer_id, total) VALUES (1, 1, 100), (2, 1, 250), "
        "(3, 2, 75), (4, 3, 10), (5, 3, 20)",
        "INSERT INTO scratch (id, payload) VALUES (1, 'tmp'), (2, 'tmp2')",
    )


#: The guard's own settings from the environment, which would change what a test runs.
GUARD_ENVIRONMENT = (
    "MIGRATION_GUARD_BACKUP_DIR",
    "MIGRATION_GUARD_CONFIG",
    "MIGRATION_GUARD_KEY",
    "MIGRATION_GUARD_KEY_FILE",
    "MIGRATION_GUARD_PASSPHRASE",
    "MIGRATION_GUARD_RECIPIENTS",
    "MIGRATION_GUARD_RECIPIENTS_FILE",
    "MIGRATION_GUARD_URL",
    "DATABASE_URL",
)


@pytest.fixture(autouse=True)
def no_guard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the surrounding environment reaches the guard (autouse where imported)."""
    for name in GUARD_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def scalar(project: Project, sql: str) -> Any:
    """The first value of ``sql`` run on ``project``'s database, over a connection of its own."""
    engine = sa.create_engine(project.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def upgrade_process(project: Project, *args: str) -> subprocess.Popen[bytes]:
    """``migration-guard upgrade`` of ``project`` as a process of its own."""
    env = dict(os.environ, MIGRATION_GUARD_CONFIG=str(project.pyproject))
    return subprocess.Popen(
        [sys.executable, "-m", "migration_guard", "upgrade", "-c", str(project.ini), *args],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def wait_for(path: Path, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Wait until ``process`` (still running) has made ``path``."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the run ended early: {out!r} {err!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)

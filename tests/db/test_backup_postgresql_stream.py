# ruff: noqa: F811  (fixtures imported from test_backup_postgresql)
"""pgdump restores into an empty database: the rows load from the decrypted stream.

``pg_restore --section=pre-data --section=data`` reads its stdin while the same
bytes go to the private scratch file that ``--section=post-data --jobs N`` reads
afterwards; an archive of many like tables loads with ``--jobs N`` from the
file instead. A load that fails stops the stream and leaves no plaintext.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from migration_guard.backup.backends.pg_load import stream_pays
from migration_guard.backup.backends.pgdump import PgdumpBackend
from migration_guard.dialects.postgresql import PostgreSQLDialectOps
from migration_guard.errors import BackupError
from tests.db.test_backup_postgresql import (  # noqa: F401  (fixtures)
    _children_of,
    load_varied,
    new_database,
    picture,
)

pytestmark = pytest.mark.postgresql


@pytest.fixture
def empty_target(
    postgres_admin_engine: sa.Engine, new_database: Callable[[], URL]
) -> Iterator[URL]:
    url = new_database()
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    yield url


def _with_padding(url: str, tables: int = 1, rows: int = 20000) -> None:
    """Enough rows that pg_restore is seen running while the stream is fed."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for number in range(tables):
            conn.exec_driver_sql(
                f"CREATE TABLE big{number} AS SELECT g, repeat(md5(g::text), 20) AS pad "
                f"FROM generate_series(1, {rows}) AS g"
            )
    engine.dispose()


class Watcher:
    """The argv of every pg_restore child seen while the restore reports progress."""

    def __init__(self) -> None:
        self.argvs: list[list[str]] = []
        self.environs: list[bytes] = []

    def __call__(self, _: int) -> None:
        for child in _children_of(os.getpid()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                environ = Path(f"/proc/{child}/environ").read_bytes()
            except OSError:
                continue
            words = [arg.decode() for arg in argv if arg]
            if words and Path(words[0]).name == "pg_restore" and words not in self.argvs:
                self.argvs.append(words)
                self.environs.append(environ)

    def loading(self) -> list[list[str]]:
        return [argv for argv in self.argvs if "--section=data" in argv]

    def finishing(self) -> list[list[str]]:
        return [argv for argv in self.argvs if "--section=post-data" in argv]


def _dump(url: str) -> tuple[bytes, str]:
    sink = io.BytesIO()
    result = PgdumpBackend().dump(sa.make_url(url), sink)
    return sink.getvalue(), result.stream_format


def test_rows_load_from_the_stream_while_the_file_is_written(
    postgres_url: str, empty_target: URL
) -> None:
    load_varied(postgres_url, rows=5)
    _with_padding(postgres_url)
    data, stream_format = _dump(postgres_url)
    watcher = Watcher()
    outcome = PgdumpBackend().restore(
        empty_target, io.BytesIO(data), stream_format=stream_format, progress=watcher
    )
    assert watcher.loading(), watcher.argvs
    for argv in watcher.loading():  # reads its stdin: no file, one job
        assert not any(arg.endswith("dump.pgc") for arg in argv), argv
        assert not any(arg.startswith("--jobs") for arg in argv), argv
        if shutil.which("stdbuf"):  # it reads 1 MiB at a time, not stdio's 4 KiB
            environ = watcher.environs[watcher.argvs.index(argv)]
            assert b"_STDBUF_I=1048576" in environ.split(b"\0")
    assert watcher.finishing(), watcher.argvs
    for argv in watcher.finishing():  # the file the stream was written to, in parallel
        assert argv[-1].endswith("dump.pgc") and any(a.startswith("--jobs") for a in argv)
    assert picture(empty_target) == picture(postgres_url)
    assert outcome.measured["big0"].rows == 20000


def test_an_archive_of_many_like_tables_loads_in_parallel_from_the_file(
    postgres_url: str, empty_target: URL
) -> None:
    load_varied(postgres_url, rows=5)
    _with_padding(postgres_url, tables=4, rows=5000)
    data, stream_format = _dump(postgres_url)
    watcher = Watcher()
    sizes = {f"big{number}": 1_000_000 for number in range(4)}
    PgdumpBackend().planned(sizes).restore(
        empty_target, io.BytesIO(data), stream_format=stream_format, progress=watcher
    )
    assert watcher.loading(), watcher.argvs
    for argv in watcher.loading():
        assert argv[-1].endswith("dump.pgc") and any(a.startswith("--jobs") for a in argv)
    assert picture(empty_target) == picture(postgres_url)


def test_a_streamed_load_that_fails_stops_and_leaves_no_plaintext(
    postgres_url: str,
    empty_target: URL,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _with_padding(postgres_url, rows=50000)
    data, stream_format = _dump(postgres_url)
    engine = sa.create_engine(empty_target, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # no table, so empty; but pg_restore's CREATE TABLE fails
        conn.exec_driver_sql("CREATE TYPE big0 AS (x int)")
    engine.dispose()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    read = 0

    class Source(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            nonlocal read
            chunk = super().read(size)
            read += len(chunk)
            return chunk

    with pytest.raises(BackupError, match="pg_restore"):
        PgdumpBackend().restore(empty_target, Source(data), stream_format=stream_format)
    assert not list(scratch.iterdir())  # the plaintext and the password file are gone
    assert read < len(data)  # the rest of the stream was not decrypted for nothing


def test_the_stream_pays_when_one_table_holds_most_of_the_bytes() -> None:
    assert stream_pays({"events": 600_000_000}, jobs=2)
    assert stream_pays({"events": 600_000_000, "small": 1_000_000, "none": None}, jobs=2)
    assert not stream_pays({f"t{number}": 30_000_000 for number in range(20)}, jobs=2)
    assert not stream_pays({"a": 300, "b": 200}, jobs=2)
    assert stream_pays({f"t{number}": 30_000_000 for number in range(20)}, jobs=1)
    assert stream_pays({}, jobs=2) and stream_pays({"a": None}, jobs=2)


def _sessions(admin: sa.Engine, database: str) -> int:
    with admin.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        return int(
            conn.execute(
                sa.text("SELECT sessions FROM pg_stat_database WHERE datname = :d"),
                {"d": database},
            ).scalar_one()
        )


def _settled(admin: sa.Engine, database: str, at_least: int) -> int:
    """The database's session count once it reaches ``at_least`` (statistics lag a little)."""
    deadline = time.monotonic() + 5
    count = _sessions(admin, database)
    while count < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        count = _sessions(admin, database)
    time.sleep(0.3)
    return _sessions(admin, database)


def test_the_emptiness_check_logs_in_to_the_target_once(
    postgres_url: str, postgres_admin_engine: sa.Engine
) -> None:
    ops = PostgreSQLDialectOps()
    url = sa.make_url(postgres_url)
    target = str(url.database)
    before = _sessions(postgres_admin_engine, target)
    assert ops.is_empty(url)
    assert _settled(postgres_admin_engine, target, before + 1) == before + 1

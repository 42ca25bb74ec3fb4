# ruff: noqa: F811  (fixtures imported from test_backup_postgresql)
"""pgdump restores into an empty database: the rows load from the decrypted stream.

``pg_restore --section=pre-data --section=data`` reads its stdin while the same
bytes go to the private scratch file that ``--section=post-data --jobs N`` reads
afterwards; an archive of many like tables loads with ``--jobs N`` from the
file instead. A load that fails stops the stream and leaves no plaintext.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


class Spawned:
    """The argv of every pg_restore this process starts (recorded at the start, so a
    process too short-lived to be seen running is not missed)."""

    def __init__(self) -> None:
        self.argvs: list[list[str]] = []

    def record(self, args: object) -> None:
        words = [str(arg) for arg in args] if isinstance(args, list) else []
        if any(Path(word).name == "pg_restore" for word in words):
            self.argvs.append(words)

    def loading(self) -> list[list[str]]:
        return [argv for argv in self.argvs if "--section=data" in argv]

    def finishing(self) -> list[list[str]]:
        return [argv for argv in self.argvs if "--section=post-data" in argv]


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Spawned:
    record = Spawned()
    real = subprocess.Popen

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            record.record(args)
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    return record


def _dump(url: str) -> tuple[bytes, str]:
    sink = io.BytesIO()
    result = PgdumpBackend().dump(sa.make_url(url), sink)
    return sink.getvalue(), result.stream_format


def test_rows_load_from_the_stream_while_the_file_is_written(
    postgres_url: str, empty_target: URL, spawned: Spawned
) -> None:
    load_varied(postgres_url, rows=5)
    _with_padding(postgres_url)
    data, stream_format = _dump(postgres_url)
    outcome = PgdumpBackend().restore(empty_target, io.BytesIO(data), stream_format=stream_format)
    assert spawned.loading(), spawned.argvs
    for argv in spawned.loading():  # reads its stdin: no file, one job
        assert not any(arg.endswith("dump.pgc") for arg in argv), argv
        assert not any(arg.startswith("--jobs") for arg in argv), argv
        if shutil.which("stdbuf"):  # it reads 1 MiB at a time, not stdio's 4 KiB
            assert Path(argv[0]).name == "stdbuf" and "--input=1M" in argv, argv
    assert spawned.finishing(), spawned.argvs
    for argv in spawned.finishing():  # the file the stream was written to, in parallel
        assert argv[-1].endswith("dump.pgc") and any(a.startswith("--jobs") for a in argv)
    assert picture(empty_target) == picture(postgres_url)
    assert outcome.measured["big0"].rows == 20000


def test_an_archive_of_many_like_tables_loads_in_parallel_from_the_file(
    postgres_url: str, empty_target: URL, spawned: Spawned
) -> None:
    load_varied(postgres_url, rows=5)
    _with_padding(postgres_url, tables=4, rows=5000)
    data, stream_format = _dump(postgres_url)
    sizes = {f"big{number}": 1_000_000 for number in range(4)}
    PgdumpBackend().planned(sizes).restore(
        empty_target, io.BytesIO(data), stream_format=stream_format
    )
    assert spawned.loading(), spawned.argvs
    for argv in spawned.loading():
        assert argv[-1].endswith("dump.pgc") and any(a.startswith("--jobs") for a in argv)
    assert picture(empty_target) == picture(postgres_url)


def test_a_streamed_load_that_fails_stops_and_leaves_no_plaintext(
    postgres_url: str, empty_target: URL, scratch: Path
) -> None:
    _with_padding(postgres_url, rows=50000)
    data, stream_format = _dump(postgres_url)
    engine = sa.create_engine(empty_target, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # no table, so empty; but pg_restore's CREATE TABLE fails
        conn.exec_driver_sql("CREATE TYPE big0 AS (x int)")
    engine.dispose()
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


class ScratchSizes:
    """The largest the restore's scratch file was seen, each time the stream moves on."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.largest = 0

    def __call__(self, _: int) -> None:
        for path in self.scratch.glob("migration-guard-restore-*/dump.pgc"):
            with contextlib.suppress(OSError):
                self.largest = max(self.largest, path.stat().st_size)


def test_a_streamed_restore_writes_only_the_archives_head_to_disk(
    postgres_url: str, empty_target: URL, scratch: Path
) -> None:
    # Post-data (indexes, constraints, triggers) needs only the table of contents:
    # the rows that load from the stream never reach the disk as plaintext.
    load_varied(postgres_url, rows=5)
    _with_padding(postgres_url, rows=40000)
    data, stream_format = _dump(postgres_url)
    sizes = ScratchSizes(scratch)
    outcome = PgdumpBackend().restore(
        empty_target, io.BytesIO(data), stream_format=stream_format, progress=sizes
    )
    assert len(data) > 20 * 1024 * 1024
    assert 0 < sizes.largest <= 4 * 1024 * 1024, sizes.largest
    assert picture(empty_target) == picture(postgres_url)  # post-data from the head alone
    assert outcome.measured["big0"].rows == 40000
    assert not list(scratch.iterdir())


def test_a_table_of_contents_longer_than_many_reads_reaches_the_file_whole(
    postgres_url: str, empty_target: URL
) -> None:
    # The head written to the file ends where pg_restore --list stopped reading: after
    # the whole table of contents, however long (here several MiB of comments).
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DO $$ BEGIN FOR i IN 1..300 LOOP EXECUTE format("
            "'CREATE TABLE t%%s (id int PRIMARY KEY, v text); CREATE INDEX t%%s_v ON t%%s (v); "
            "COMMENT ON TABLE t%%s IS %%L; INSERT INTO t%%s VALUES (1, ''x'')', "
            "i, i, i, i, repeat('a long comment ', 1000), i); END LOOP; END $$"
        )
    engine.dispose()
    data, stream_format = _dump(postgres_url)
    assert len(data) > 4 * 1024 * 1024  # nearly all of it the table of contents
    outcome = PgdumpBackend().restore(empty_target, io.BytesIO(data), stream_format=stream_format)
    assert len(outcome.measured) == 300
    engine = sa.create_engine(empty_target, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # post-data's indexes, and the last table's comment
        indexes = conn.exec_driver_sql("SELECT count(*) FROM pg_indexes WHERE tablename ~ '^t'")
        assert indexes.scalar_one() == 600
        comment = conn.exec_driver_sql("SELECT obj_description('t300'::regclass)").scalar_one()
        assert comment.startswith("a long comment")
    engine.dispose()

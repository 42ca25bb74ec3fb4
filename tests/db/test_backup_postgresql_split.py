# ruff: noqa: F811  (fixtures imported from test_backup_postgresql)
"""pgdump restores into an empty database: the largest table over two COPY connections.

``pg_restore --list`` and ``--section=pre-data`` read the head of the stream,
``--section=data`` loads every other entry, and ``--file=-`` gives the big
table's rows, which two connections load in blocks cut at line ends. Every row
arrives exactly once (the proof's counts and digests), and any failure stops
all of it: no hang, no process, no session, no plaintext left behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from migration_guard.backup import create, keygen, restore
from migration_guard.backup.backends import pg_split
from migration_guard.backup.backends.pgdump import PgdumpBackend
from migration_guard.backup.manifest import ROW_DIGEST_METHOD
from migration_guard.config import Config
from migration_guard.dialects.base import database_unavailable
from migration_guard.errors import BackupError, RestoreFailed
from tests.db.test_backup_postgresql import (  # noqa: F401  (fixtures)
    _children_of,
    load_varied,
    new_database,
    password_role,
    picture,
)

pytestmark = pytest.mark.postgresql

BIG = '"Odd Schema"."Mixed ""Case"""'
#: The manifest's name of BIG.
BIG_NAME = 'Odd Schema.Mixed "Case"'


def _run(url: URL | str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _awkward_source(url: URL | str, rows: int = 20000) -> None:
    """BIG with rows COPY text must escape, NULLs, every byte, rows longer than a block;
    a second table referring to it, a sequence moved on, and the varied objects of
    test_backup_postgresql (loaded the usual way beside it)."""
    load_varied(url, rows=5)
    _run(
        url,
        'CREATE SCHEMA "Odd Schema"',
        f"CREATE TABLE {BIG} (id bigserial PRIMARY KEY, body text, raw bytea, n int)",
        f"INSERT INTO {BIG} (body, raw, n) SELECT CASE WHEN mod(g, 7) = 0 THEN NULL ELSE "
        "E'line\\nnext\\ttab\\\\back\\r\\n\\\\.\\n.\\\\.' || repeat(md5(g::text), mod(g, 5)) "
        "|| E'\\n\\\\.' END, "
        "CASE WHEN mod(g, 11) = 0 THEN NULL ELSE "
        "(SELECT string_agg(set_byte('\\x00'::bytea, 0, mod(b + g, 256)), ''::bytea) "
        "FROM generate_series(0, 255) AS b) END, "
        f"CASE WHEN mod(g, 3) = 0 THEN NULL ELSE g END FROM generate_series(1, {rows}) AS g",
        f"INSERT INTO {BIG} (body, raw) SELECT repeat(E'x\\\\\\n\\t', 1000000) || g, "
        "'\\x5c2e0a'::bytea FROM generate_series(1, 2) AS g",
        f"CREATE TABLE child (id int PRIMARY KEY, big_id bigint REFERENCES {BIG} (id), note text)",
        "INSERT INTO child SELECT g, g, E'\\\\.' FROM generate_series(1, 100) AS g",
        "CREATE SEQUENCE tickets START 10",
        "SELECT setval('tickets', 4321)",
    )


def _rows(url: URL | str, table: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            query = f"SELECT t::text FROM {table} t ORDER BY t.id"
            return [str(row[0]) for row in conn.exec_driver_sql(query)]
    finally:
        engine.dispose()


Measures = dict[str, tuple[int | None, str | None]]


def _dump(
    url: URL | str,
) -> tuple[bytes, str, dict[str, int | None], Measures, PgdumpBackend]:
    """The archive, its tables' sizes and measures, and a backend restoring it as the
    engine would (planned by those sizes, measuring by the dump's digest method)."""
    sink = io.BytesIO()
    result = PgdumpBackend().dump(sa.make_url(url), sink)
    sizes = {name: stats.size_bytes for name, stats in result.tables.items()}
    measures = {name: (stats.rows, stats.checksum) for name, stats in result.tables.items()}
    backend = PgdumpBackend().planned(sizes).digesting(result.extra.get(ROW_DIGEST_METHOD))
    return sink.getvalue(), result.stream_format, sizes, measures, backend


@pytest.fixture
def empty_target(
    postgres_admin_engine: sa.Engine, new_database: Callable[[], URL]
) -> Iterator[URL]:
    url = new_database()
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    yield url


@pytest.fixture
def split_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any table is big enough to split (the real threshold wants tens of MB)."""
    monkeypatch.setattr(pg_split, "SPLIT_MIN_BYTES", 1)


class Watcher:
    """The argv of every pg_restore child, and the most COPY sessions of the guard's
    own connections (not pg_restore's) seen at once in the target."""

    def __init__(self, admin: sa.Engine, database: str) -> None:
        self.argvs: list[list[str]] = []
        self.admin = admin
        self.database = database
        self.copies = 0

    def __call__(self, _: int) -> None:
        for child in _children_of(os.getpid()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [arg.decode() for arg in argv if arg]
            if any(Path(word).name == "pg_restore" for word in words[:3]):
                at = [Path(word).name for word in words].index("pg_restore")
                words = ["pg_restore", *words[at + 1 :]]  # the wrapper's argv, or the real
                if words not in self.argvs:
                    self.argvs.append(words)
        self.copies = max(self.copies, _copy_sessions(self.admin, self.database))

    def seen(self, flag: str) -> list[list[str]]:
        return [argv for argv in self.argvs if flag in argv]


def _copy_sessions(admin: sa.Engine, database: str) -> int:
    with admin.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                    "AND query LIKE 'COPY %' AND application_name <> 'pg_restore' "
                    "AND state = 'active'"
                ),
                {"d": database},
            ).scalar_one()
        )


def _sessions(admin: sa.Engine, database: str) -> int:
    with admin.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                    "AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            ).scalar_one()
        )


def _settled(check: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_largest_table_loads_over_two_connections_with_every_row_intact(
    postgres_url: str,
    empty_target: URL,
    postgres_admin_engine: sa.Engine,
    split_everything: None,
) -> None:
    _awkward_source(postgres_url)
    data, stream_format, sizes, measures, backend = _dump(postgres_url)
    assert max(sizes, key=lambda name: sizes[name] or 0) == BIG_NAME
    watcher = Watcher(postgres_admin_engine, str(empty_target.database))
    outcome = backend.restore(
        empty_target, io.BytesIO(data), stream_format=stream_format, progress=watcher
    )
    (script,) = watcher.seen("--file=-")  # the big table's rows as a script ...
    assert "--section=data" in script and "--dbname" not in " ".join(script)
    (others,) = [argv for argv in watcher.seen("--section=data") if argv != script]
    assert any(arg.startswith("--use-list=") for arg in others)  # ... the others without it
    (defining,) = watcher.seen("--section=pre-data")  # alone: the definitions first
    assert "--section=data" not in defining
    assert watcher.copies == 2  # both connections loading at once
    assert {name: (s.rows, s.checksum) for name, s in outcome.measured.items()} == measures
    assert picture(empty_target) == picture(postgres_url)  # sequences, FKs, every row


def test_rows_in_the_dumps_own_encoding_reach_the_server_unchanged(
    postgres_admin_engine: sa.Engine,
    new_database: Callable[[], URL],
    split_everything: None,
) -> None:
    source, target = new_database(), new_database()
    with postgres_admin_engine.connect() as conn:  # the target UTF8: the dump's
        conn.exec_driver_sql(  # client_encoding (LATIN1) must be set to convert
            f"CREATE DATABASE \"{source.database}\" ENCODING 'LATIN1' LC_COLLATE 'C' "
            "LC_CTYPE 'C' TEMPLATE template0"
        )
        conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    latin = "".join(chr(c) for c in range(0xA0, 0x100))  # not UTF-8 as LATIN1 bytes
    _run(
        source,
        'CREATE TABLE "Ünïcode" (id int, body text)',
        f"INSERT INTO \"Ünïcode\" SELECT g, '{latin}' || g FROM generate_series(1, 50000) AS g",
    )
    data, stream_format, _, measures, backend = _dump(source)
    watcher = Watcher(postgres_admin_engine, str(target.database))
    outcome = backend.restore(
        target, io.BytesIO(data), stream_format=stream_format, progress=watcher
    )
    assert watcher.seen("--file=-")
    counts = {name: rows for name, (rows, _) in measures.items()}
    assert {name: s.rows for name, s in outcome.measured.items()} == counts
    assert _rows(target, '"Ünïcode"') == _rows(source, '"Ünïcode"')
    assert _rows(target, '"Ünïcode"')[0].endswith(latin + "1)")


def test_a_small_archive_keeps_one_pg_restore_for_definitions_and_rows(
    postgres_url: str, empty_target: URL, postgres_admin_engine: sa.Engine
) -> None:
    _awkward_source(postgres_url, rows=200)
    data, stream_format, sizes, _, backend = _dump(postgres_url)
    assert all((size or 0) < pg_split.SPLIT_MIN_BYTES for size in sizes.values())
    watcher = Watcher(postgres_admin_engine, str(empty_target.database))
    backend.restore(empty_target, io.BytesIO(data), stream_format=stream_format, progress=watcher)
    loading = watcher.seen("--section=data")
    assert loading and all("--section=pre-data" in argv for argv in loading)
    assert not watcher.seen("--file=-") and not watcher.seen("--list")
    assert picture(empty_target) == picture(postgres_url)


def test_a_table_the_archive_lacks_loads_everything_through_one_pg_restore(
    postgres_url: str,
    empty_target: URL,
    postgres_admin_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _awkward_source(postgres_url, rows=200)
    data, stream_format, _, _, backend = _dump(postgres_url)
    watcher = Watcher(postgres_admin_engine, str(empty_target.database))
    matched: list[object] = []
    real = pg_split.toc_lists

    def toc_lists(*args: Any) -> object:
        matched.append(real(*args))
        return matched[-1]

    # The entry list is read (a pg_restore --list too short-lived to watch for sure).
    monkeypatch.setattr(pg_split, "toc_lists", toc_lists)
    backend.planned({"not there": 10**10}).restore(
        empty_target, io.BytesIO(data), stream_format=stream_format, progress=watcher
    )
    assert matched == [None] and not watcher.seen("--file=-")
    assert all(not arg.startswith("--use-list") for argv in watcher.argvs for arg in argv)
    assert picture(empty_target) == picture(postgres_url)


@pytest.mark.usefixtures("split_everything")
def test_connections_the_server_refuses_mean_the_usual_load_not_a_failure(
    postgres_url: str,
    empty_target: URL,
    postgres_admin_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A connection limit, a pooler or a driver that does not load: known before any
    # definition is written, so the rows load through one pg_restore as before.
    _awkward_source(postgres_url, rows=200)
    data, stream_format, _, _, backend = _dump(postgres_url)

    @contextlib.contextmanager
    def refused(url: URL, count: int) -> Iterator[list[object]]:
        raise database_unavailable(url, RuntimeError("too many connections for role"))
        yield []  # a generator, as the real one

    monkeypatch.setattr(pg_split, "_connections", refused)
    watcher = Watcher(postgres_admin_engine, str(empty_target.database))
    backend.restore(empty_target, io.BytesIO(data), stream_format=stream_format, progress=watcher)
    assert not watcher.seen("--file=-")
    assert all(not arg.startswith("--use-list") for argv in watcher.argvs for arg in argv)
    assert picture(empty_target) == picture(postgres_url)


@pytest.mark.usefixtures("split_everything")
def test_ctrl_c_during_the_split_load_stays_an_interrupt(
    postgres_url: str,
    empty_target: URL,
    postgres_admin_engine: sa.Engine,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl-C reaches pg_restore too, which may fail first: still an interrupt (exit
    # 130 at the CLI), not "pg_restore failed".
    _awkward_source(postgres_url, rows=2000)
    data, stream_format, _, _, backend = _dump(postgres_url)
    real = pg_split.tee

    def interrupted(feeds: list[Any], *args: Any, **kwargs: Any) -> None:
        load = args[-1] if len(args) == 5 else None
        if load is None:  # the table of contents: as it is
            real(feeds, *args, **kwargs)
            return
        load.fail(pg_split.Exited(feeds[0].pid))
        raise KeyboardInterrupt

    monkeypatch.setattr(pg_split, "tee", interrupted)
    with pytest.raises(KeyboardInterrupt):
        backend.restore(empty_target, io.BytesIO(data), stream_format=stream_format)
    _no_leftovers(postgres_admin_engine, str(empty_target.database), scratch)


def _no_leftovers(admin: sa.Engine, database: str, scratch: Path) -> None:
    assert not [
        child
        for child in _children_of(os.getpid())
        if b"pg_restore" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]
    assert threading.active_count() == 1 or not [
        thread for thread in threading.enumerate() if thread.name.startswith("migration-guard-")
    ]
    assert _settled(lambda: _sessions(admin, database) == 0)
    assert not list(scratch.iterdir())  # the plaintext, the lists, the password file


class Terminator(threading.Thread):
    """Terminates one of the guard's COPY sessions in ``database`` once it runs."""

    def __init__(self, admin: sa.Engine, database: str) -> None:
        super().__init__(daemon=True)
        self.admin, self.database = admin, database
        self.done = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with self.admin.connect() as conn:
                killed = conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :d AND query LIKE 'COPY %' "
                        "AND application_name <> 'pg_restore' AND state = 'active' LIMIT 1"
                    ),
                    {"d": self.database},
                ).all()
            if killed:
                self.done.set()
                return
            time.sleep(0.01)


def test_a_lost_copy_connection_fails_the_restore_cleanly_and_it_says_partly_loaded(
    config: Config,
    postgres_url: str,
    new_database: Callable[[], URL],
    postgres_admin_engine: sa.Engine,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    split_everything: None,
) -> None:
    _awkward_source(postgres_url, rows=60000)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=postgres_url)
    target = new_database()
    killer = Terminator(postgres_admin_engine, str(target.database))
    killer.start()
    started = time.monotonic()
    try:
        with pytest.raises(RestoreFailed) as caught:
            restore(config, manifest.id, url=str(target))
    finally:
        killer.stop.set()
        killer.join()
    assert killer.done.is_set(), "no COPY session was seen to terminate"
    assert time.monotonic() - started < 120
    message = str(caught.value)
    assert "partly loaded" in message and BIG_NAME in message, message
    _no_leftovers(postgres_admin_engine, str(target.database), scratch)


def test_a_damaged_stream_during_the_split_load_stops_everything(
    postgres_url: str,
    empty_target: URL,
    postgres_admin_engine: sa.Engine,
    scratch: Path,
    split_everything: None,
) -> None:
    _awkward_source(postgres_url, rows=60000)
    data, stream_format, _, _, backend = _dump(postgres_url)

    class Damaged(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > len(data) // 2:
                raise BackupError("the archive failed its authentication tag")
            return super().read(size)

    with pytest.raises(BackupError, match="authentication tag"):
        backend.restore(empty_target, Damaged(data), stream_format=stream_format)
    _no_leftovers(postgres_admin_engine, str(empty_target.database), scratch)
    engine = sa.create_engine(empty_target, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # neither connection committed its rows
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {BIG}").scalar_one() == 0
    engine.dispose()


def test_a_failing_definition_reports_pg_restores_own_error(
    postgres_url: str,
    empty_target: URL,
    postgres_admin_engine: sa.Engine,
    scratch: Path,
    split_everything: None,
) -> None:
    _awkward_source(postgres_url, rows=2000)
    data, stream_format, _, _, backend = _dump(postgres_url)
    _run(empty_target, "CREATE TYPE child AS (x int)")  # CREATE TABLE child fails
    with pytest.raises(BackupError, match="already exists"):
        backend.restore(empty_target, io.BytesIO(data), stream_format=stream_format)
    _no_leftovers(postgres_admin_engine, str(empty_target.database), scratch)


RESTORE_SCRIPT = """
import sys
from migration_guard.backup import restore
from migration_guard.backup.backends import pg_split
from migration_guard.config import Config
pg_split.SPLIT_MIN_BYTES = 1
restore(Config(), sys.argv[1], url=sys.argv[2])
"""


def test_a_killed_split_restore_leaves_nothing_running_and_the_next_run_cleans_up(
    config: Config,
    backup_dir: Path,
    postgres_url: str,
    new_database: Callable[[], URL],
    postgres_admin_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    scratch: Path,
) -> None:
    _awkward_source(postgres_url, rows=60000)
    monkeypatch.setenv("MIGRATION_GUARD_KEY", keygen())
    manifest = create(config, url=postgres_url)
    target = new_database()
    child = subprocess.Popen(
        [sys.executable, "-c", RESTORE_SCRIPT, manifest.id, str(target)], env={**os.environ}
    )
    try:
        assert _settled(
            lambda: (
                child.poll() is None
                and bool(list(scratch.glob("migration-guard-restore-*/table.list")))
                and _copy_sessions(postgres_admin_engine, str(target.database)) > 0
            ),
            seconds=60,
        ), "the split load was not seen running"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    leftovers = list(scratch.glob("migration-guard-restore-*"))
    assert leftovers  # SIGKILL leaves it: nothing in the process can run

    def orphans() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes() if entry.isdigit() else b""
            except OSError:
                continue
            if b"pg_restore" in argv and str(leftovers[0]).encode() in argv:
                found.append(int(entry))
        return found

    # The pg_restore children see their pipes close and end; the server ends the sessions.
    assert _settled(lambda: not orphans()), orphans()
    assert _settled(lambda: _sessions(postgres_admin_engine, str(target.database)) == 0)
    subprocess.run(
        [sys.executable, "-m", "migration_guard", "backup", "--url", postgres_url],
        env={**os.environ},
        check=True,
        capture_output=True,
    )
    assert not any(path.exists() for path in leftovers)


def test_a_copy_waiting_for_a_lock_is_cancelled_when_the_other_fails(
    postgres_url: str,
    empty_target: URL,
    postgres_admin_engine: sa.Engine,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    split_everything: None,
) -> None:
    _awkward_source(postgres_url, rows=60000)
    data, stream_format, _, _, backend = _dump(postgres_url)
    database = str(empty_target.database)
    holder = sa.create_engine(empty_target, poolclass=sa.pool.NullPool).connect()
    real = pg_split._read_toc

    def locked_first(*args: Any, **kwargs: Any) -> bytes:
        """The definitions are in: another session locks BIG before the COPYs start."""
        toc = real(*args, **kwargs)
        holder.exec_driver_sql(f"LOCK TABLE {BIG} IN ACCESS EXCLUSIVE MODE")
        return toc

    monkeypatch.setattr(pg_split, "_read_toc", locked_first)
    done = threading.Event()

    def end_one_waiting_copy() -> None:
        query = (
            "SELECT pid FROM pg_stat_activity WHERE datname = :d AND query LIKE 'COPY %' "
            "AND application_name <> 'pg_restore' AND wait_event_type = 'Lock'"
        )
        with postgres_admin_engine.connect() as admin:
            while not done.is_set():
                pids = admin.execute(sa.text(query), {"d": database}).scalars().all()
                if len(pids) == 2:
                    admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pids[0]})
                    return
                time.sleep(0.01)

    killer = threading.Thread(target=end_one_waiting_copy, daemon=True)
    killer.start()
    started = time.monotonic()
    try:  # it ends while the lock is held: the other COPY's wait was cancelled
        with pytest.raises(BackupError, match="over two connections"):
            backend.restore(empty_target, io.BytesIO(data), stream_format=stream_format)
        assert time.monotonic() - started < 60
    finally:
        done.set()
        killer.join()
        holder.rollback()
        holder.close()
    _no_leftovers(postgres_admin_engine, database, scratch)


def test_the_split_load_passes_no_password_to_its_children(
    password_role: tuple[URL, URL, str],
    monkeypatch: pytest.MonkeyPatch,
    split_everything: None,
) -> None:
    source, target, password = password_role
    _awkward_source(source, rows=20000)
    seen: list[tuple[list[bytes], dict[bytes, bytes]]] = []

    def inspect_children(_: int) -> None:
        for child in _children_of(os.getpid()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                environ = Path(f"/proc/{child}/environ").read_bytes()
            except OSError:
                continue
            if any(Path(arg.decode()).name == "pg_restore" for arg in argv[:3]):
                pairs = (line.split(b"=", 1) for line in environ.split(b"\0") if b"=" in line)
                seen.append((argv, dict(pairs)))

    monkeypatch.setenv("PGPASSWORD", password)  # must not reach the children
    data, stream_format, _, measures, backend = _dump(source)
    outcome = backend.restore(
        target, io.BytesIO(data), stream_format=stream_format, progress=inspect_children
    )
    assert any(b"--file=-" in argv for argv, _ in seen), seen  # the split ran
    for argv, variables in seen:
        assert all(password.encode() not in arg for arg in argv)
        assert all(password.encode() not in value for value in variables.values())
        assert b"PGPASSWORD" not in variables
        if any(arg.startswith(b"--dbname") for arg in argv):  # those that log in
            assert b"PGPASSFILE" in variables
    assert {name: (s.rows, s.checksum) for name, s in outcome.measured.items()} == measures


@pytest.mark.usefixtures("split_everything")
def test_the_split_load_writes_only_the_archives_head_to_disk(
    postgres_url: str, empty_target: URL, scratch: Path
) -> None:
    _awkward_source(postgres_url, rows=30000)
    data, stream_format, _, measures, backend = _dump(postgres_url)
    largest = 0

    def watch(_: int) -> None:
        nonlocal largest
        for path in scratch.glob("migration-guard-restore-*/dump.pgc"):
            with contextlib.suppress(OSError):
                largest = max(largest, path.stat().st_size)

    outcome = backend.restore(
        empty_target, io.BytesIO(data), stream_format=stream_format, progress=watch
    )
    assert len(data) > 20 * 1024 * 1024
    assert 0 < largest <= 4 * 1024 * 1024, largest
    assert {name: (s.rows, s.checksum) for name, s in outcome.measured.items()} == measures
    assert picture(empty_target) == picture(postgres_url)  # post-data from the head alone
    assert not list(scratch.iterdir())

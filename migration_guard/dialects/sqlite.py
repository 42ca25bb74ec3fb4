"""SQLite facts: a database is a file; checksums are SHA-256 over ordered rows."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket
import sqlite3
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from migration_guard.dialects.base import DialectOps, HeldLock, TableStats, sha256_text
from migration_guard.errors import LockTimeout, UsageError

OBJECT_TYPES = {"view": "views", "trigger": "triggers"}
#: Authorizer actions that can lose rows: (kind, which argument names the table).
_WRITE_ACTIONS: dict[int, tuple[str, int]] = {
    sqlite3.SQLITE_DELETE: ("delete", 0),
    sqlite3.SQLITE_UPDATE: ("update", 0),
    sqlite3.SQLITE_DROP_TABLE: ("drop", 0),
    sqlite3.SQLITE_ALTER_TABLE: ("alter", 1),
}


def quote_sqlite_identifier(name: str) -> str:
    """Double-quote ``name``; embedded double quotes are doubled."""
    return '"' + name.replace('"', '""') + '"'


def sqlite_path(url: URL) -> Path:
    """The database file of a ``sqlite:///path`` URL; in-memory databases are refused."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise UsageError(
            "an in-memory SQLite database cannot be backed up or restored; "
            "use a file URL such as sqlite:///app.db"
        )
    return Path(database)


def _encode_value(value: Any) -> bytes:
    """A type-tagged, unambiguous encoding of one SQLite value."""
    if value is None:
        return b"N"
    if isinstance(value, bool):  # pragma: no cover - sqlite3 never returns bool
        value = int(value)
    if isinstance(value, int):
        text = str(value).encode()
        return b"I" + struct.pack(">I", len(text)) + text
    if isinstance(value, float):
        return b"R" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return b"T" + struct.pack(">I", len(data)) + data
    data = bytes(value)
    return b"B" + struct.pack(">I", len(data)) + data


def rows_checksum(rows: Iterable[Sequence[Any]]) -> tuple[int, str]:
    """``(row count, sha256)`` over ``rows`` in the order given."""
    digest = hashlib.sha256()
    count = 0
    for row in rows:
        count += 1
        digest.update(b"(")
        for value in row:
            digest.update(_encode_value(value))
        digest.update(b")")
    return count, digest.hexdigest()


def has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    """Whether ``table`` is an ordinary rowid table (not ``WITHOUT ROWID``)."""
    try:
        conn.execute(f"SELECT rowid FROM {quote_sqlite_identifier(table)} LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return not any(column.lower() == "rowid" for column in table_columns(conn, table))


def table_columns(conn: sqlite3.Connection, table: str, *, stored_only: bool = False) -> list[str]:
    """Column names of ``table``; ``stored_only`` leaves out generated columns."""
    rows = conn.execute(f"PRAGMA table_xinfo({quote_sqlite_identifier(table)})").fetchall()
    # table_xinfo's "hidden": 0 normal, 1 hidden (virtual tables), 2/3 generated.
    return [str(row[1]) for row in rows if not (stored_only and row[6] != 0)]


def order_clause(conn: sqlite3.Connection, table: str) -> str:
    """An ``ORDER BY`` that gives a stable row order for ``table``."""
    if has_rowid(conn, table):
        return "ORDER BY rowid"
    info = conn.execute(f"PRAGMA table_info({quote_sqlite_identifier(table)})").fetchall()
    keys = sorted((row for row in info if row[5]), key=lambda row: row[5]) or info
    return "ORDER BY " + ", ".join(quote_sqlite_identifier(str(row[1])) for row in keys)


def sqlite_table_stats(conn: sqlite3.Connection, tables: Sequence[str]) -> dict[str, TableStats]:
    """Row counts, SHA-256 checksums over ordered rows and DDL hashes on a raw connection."""
    stats: dict[str, TableStats] = {}
    for table in tables:
        ddl_row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        columns = ", ".join(quote_sqlite_identifier(c) for c in table_columns(conn, table))
        cursor = conn.execute(
            f"SELECT {columns} FROM {quote_sqlite_identifier(table)} {order_clause(conn, table)}"
        )
        rows, checksum = rows_checksum(cursor)
        size = _table_size(conn, table)
        stats[table] = TableStats(
            rows=rows,
            checksum=checksum,
            size_bytes=size,
            ddl_sha256=sha256_text(str(ddl_row[0])) if ddl_row else None,
        )
    return stats


def _table_size(conn: sqlite3.Connection, table: str) -> int | None:
    try:
        row = conn.execute("SELECT SUM(pgsize) FROM dbstat WHERE name = ?", (table,)).fetchone()
    except sqlite3.Error:  # dbstat is an optional compile-time module
        return None
    return None if row is None or row[0] is None else int(row[0])


def list_sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    """User tables of a raw connection, sorted (internal ``sqlite_*`` tables excluded)."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _raw(conn: Connection) -> sqlite3.Connection:
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


class SQLiteDialectOps(DialectOps):
    """SQLite 3 files."""

    name: ClassVar[str] = "sqlite"

    def quote_identifier(self, name: str) -> str:
        return quote_sqlite_identifier(name)

    def server_version(self, conn: Connection) -> str:
        return str(conn.exec_driver_sql("SELECT sqlite_version()").scalar_one())

    def list_tables(self, conn: Connection) -> list[str]:
        return list_sqlite_tables(_raw(conn))

    def suspend_foreign_key_actions(self, conn: Connection) -> bool:
        raw = _raw(conn)
        if not raw.execute("PRAGMA foreign_keys").fetchone()[0]:
            return False
        if raw.in_transaction:
            # SQLite ignores the pragma inside a transaction: end it first.
            raw.commit()
        raw.execute("PRAGMA foreign_keys=OFF")
        if raw.execute("PRAGMA foreign_keys").fetchone()[0]:
            raise UsageError(
                "a table rebuild would delete the referencing rows through their ON DELETE "
                "actions, and SQLite did not switch foreign keys off; the rebuild was not run. "
                "Switch foreign keys off for migrations in env.py"
            )

        def back_on(dbapi_connection: Any, _record: Any) -> None:
            if dbapi_connection is raw:
                with contextlib.suppress(sqlite3.Error):
                    raw.execute("PRAGMA foreign_keys=ON")

        # Back on when the connection returns to its pool (after its transaction ends).
        sa.event.listen(conn.engine, "checkin", back_on, once=True)
        return True

    def foreign_key_violations(self, conn: Connection) -> list[str]:
        rows = _raw(conn).execute("PRAGMA foreign_key_check").fetchall()
        return [
            f"{table} row {rowid} refers to no row of {parent}" for table, rowid, parent, _ in rows
        ]

    def table_stats(
        self,
        conn: Connection,
        tables: Sequence[str],
        *,
        rows: bool = True,
        checksums: bool = True,
        digest: str | None = None,
    ) -> dict[str, TableStats]:
        # One ordered pass gives both the count and the checksum; SQLite tables
        # are local files, so it is always taken. One checksum method: no digest.
        del rows, checksums, digest
        return sqlite_table_stats(_raw(conn), tables)

    def objects(self, conn: Connection) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {kind: {} for kind in OBJECT_TYPES.values()}
        rows = conn.execute(
            sa.text("SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')")
        )
        for kind, name, sql in rows:
            result[OBJECT_TYPES[str(kind)]][str(name)] = sha256_text(str(sql))
        return result

    def acquire_lock(self, url: URL, name: str, timeout: float) -> HeldLock:
        """An exclusive ``flock`` on ``<database file>.<name>.lock``.

        The holder's pid, host and user are written inside so that a waiting
        run can name it; the kernel frees the lock when the holder dies.
        """
        path = sqlite_path(url)
        lock_path = path.with_name(f"{path.name}.{name}.lock")
        return acquire_file_lock(lock_path, timeout, what=f"database file {path}")

    def admin_url(self, url: URL) -> URL:
        return url

    def database_name(self, url: URL) -> str:
        return str(sqlite_path(url))

    def scratch_url(self, url: URL, name: str) -> URL:
        """A file called ``name`` + ``.db`` next to ``url``'s file."""
        path = sqlite_path(url)
        return url.set(database=str(path.with_name(f"{name}.db")))

    def create_database(
        self,
        admin_conn: Connection | None,
        name: str,
        *,
        charset: str | None = None,
        collation: str | None = None,
    ) -> None:
        """Create the empty database file ``name`` (a path)."""
        del admin_conn, charset, collation
        sqlite3.connect(name).close()

    def drop_database(self, admin_conn: Connection | None, name: str) -> None:
        """Delete the database file ``name`` and its journal/WAL companions."""
        del admin_conn
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name + suffix)

    def database_exists(self, url: URL) -> bool:
        path = sqlite_path(url)
        return path.is_file() and path.stat().st_size > 0

    def probe_connect_args(self, url: URL, timeout: int) -> dict[str, Any] | None:
        del timeout  # a local file answers at once
        database = url.database or ""
        if database in ("", ":memory:") or not os.path.isfile(database):
            return None  # connecting would create the file
        return {}

    def serverless_scratch_url(self, near: URL | None, name: str) -> URL | None:
        """``name.db`` next to ``near``'s file, else in the temporary directory."""
        from sqlalchemy.engine import make_url

        directory = Path(tempfile.gettempdir())
        if near is not None and near.database:
            directory = Path(near.database).parent
        return make_url(f"sqlite:///{directory / (name + '.db')}")

    def guard_raw_writes(
        self, dbapi_connection: Any, refuse: Callable[[str, str], bool]
    ) -> Callable[[], None] | None:
        """SQLite's authorizer: every statement the connection prepares, also one of
        ``executescript`` or a raw cursor, is asked before it runs. It replaces an
        authorizer the application had set on that connection until the undo."""
        set_authorizer = getattr(dbapi_connection, "set_authorizer", None)
        if set_authorizer is None:
            return None

        def authorizer(action: int, arg1: Any, arg2: Any, _db: Any, _source: Any) -> int:
            found = _WRITE_ACTIONS.get(action)
            if found is None:
                return sqlite3.SQLITE_OK
            kind, table = found[0], (arg1, arg2)[found[1]]
            if table and refuse(kind, str(table)):
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK

        set_authorizer(authorizer)
        return lambda: set_authorizer(None)

    # -- the lock's heartbeat -------------------------------------------------
    def lock_is_held(self, lock: HeldLock) -> bool:
        """The lock file at its path is still the one this process locked (not deleted
        or swapped) and names this process as its owner."""
        return isinstance(lock, _FileLock) and lock.still_owned()

    # -- names ----------------------------------------------------------------
    def default_schema(self, conn: Connection) -> str | None:
        """``main``: unqualified names resolve there first (then in temp, attached)."""
        del conn
        return "main"


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_LOCK_POLL_SECONDS = 0.05


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


class _FileLock(HeldLock):
    def __init__(self, path: Path, descriptor: int) -> None:
        super().__init__(str(path), f"lock file {path}")
        self._descriptor = descriptor

    def still_owned(self) -> bool:
        """The file at the path is the one locked here, and records this process."""
        if self.released:
            return False
        try:
            mine = os.fstat(self._descriptor)
            there = os.stat(self.name)
            data = json.loads(os.pread(self._descriptor, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return False
        same_file = (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)
        return same_file and isinstance(data, dict) and data.get("pid") == os.getpid()

    def _release(self) -> None:
        # The file stays: unlinking it would let two waiters lock different inodes.
        try:
            os.ftruncate(self._descriptor, 0)
        finally:
            os.close(self._descriptor)


def acquire_file_lock(path: Path, timeout: float, *, what: str) -> HeldLock:
    """Hold an exclusive ``flock`` on ``path``, waiting up to ``timeout`` seconds.

    Raises :class:`LockTimeout` naming the holder recorded in the file.
    """
    if fcntl is None:  # pragma: no cover - Windows
        raise UsageError("the SQLite migration lock needs fcntl (POSIX systems)")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + max(0.0, timeout)
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _file_lock_holder(path)
                    raise LockTimeout(
                        f"another migration run holds the migration lock of {what} "
                        f"({path}): {holder}; waited {timeout:g} s. Wait for it to finish, "
                        "or raise lock_timeout in [tool.migration_guard.upgrade].",
                        holder=holder,
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        record: dict[str, object] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "user": _current_user(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(record).encode("utf-8"), 0)
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        raise
    return _FileLock(path, descriptor)


def _file_lock_holder(path: Path) -> str:
    from migration_guard.dialects.locks import lock_holder_text

    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict) or not data:
        return "an unknown holder"
    text = lock_holder_text(data.get("user"), data.get("host"), pid=data.get("pid"))
    since = data.get("since")
    return f"{text}, since {since}" if since else text

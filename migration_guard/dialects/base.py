"""The per-database facts every other layer relies on, behind one interface.

Backends, the backup engine and the upgrade runner never branch on a dialect
name: they ask :func:`migration_guard.dialects.get_dialect_ops` for a
:class:`DialectOps` and call it.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from migration_guard.errors import DatabaseUnavailableError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

    from migration_guard.urls import PlainURL


@dataclass(frozen=True)
class TableStats:
    """What a restore must give back for one table.

    ``checksum`` is the database's own content checksum (``CHECKSUM TABLE`` on
    MySQL/MariaDB, a SHA-256 over ordered rows on SQLite); ``ddl_sha256`` is the
    SHA-256 of the table's ``CREATE`` statement as the server prints it.
    ``content_sha256`` is a digest of the rows as a dump tool printed them (see
    :mod:`migration_guard.backup.backends.dumpscan`). ``rows`` and ``checksum``
    are ``None`` when they were not measured; ``digest`` names the checksum's
    method (:attr:`DialectOps.digest_methods`; None where there is one).
    """

    rows: int | None
    checksum: str | None
    size_bytes: int | None
    ddl_sha256: str | None = None
    content_sha256: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class ForeignKeyAction:
    """One foreign key: ``child`` refers to ``parent``; the actions as the database
    names them (``CASCADE``, ``SET NULL``, ``RESTRICT``...; None when not stated)."""

    child: str
    parent: str
    on_delete: str | None = None
    on_update: str | None = None


def sha256_text(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def safe_url_text(url: URL | PlainURL) -> str:
    """``url`` as text with the password masked, for messages."""
    return url.render_as_string(hide_password=True)


class DialectOps(abc.ABC):
    """Facts and small operations that differ from one database to another."""

    name: ClassVar[str]

    # -- naming ---------------------------------------------------------------
    @abc.abstractmethod
    def quote_identifier(self, name: str) -> str:
        """``name`` quoted as an identifier, safe for any character it contains."""

    # -- introspection --------------------------------------------------------
    @abc.abstractmethod
    def server_version(self, conn: Connection) -> str:
        """The server's version string (e.g. ``10.11.19-MariaDB``)."""

    @abc.abstractmethod
    def list_tables(self, conn: Connection) -> list[str]:
        """The base tables (no views, no sequences) of the connected database, sorted."""

    #: The methods of :meth:`table_stats`'s ``checksum`` (empty: one, unnamed), and the
    #: method of a measurement that names none (:mod:`.digests`).
    digest_methods: ClassVar[tuple[str, ...]] = ()
    unnamed_digest: ClassVar[str | None] = None

    def check_server_digest(self, url: URL, digest: str | None) -> None:
        """``UsageError`` if the server at ``url`` cannot measure by ``digest`` (all can)."""
        del url, digest

    @abc.abstractmethod
    def table_stats(
        self,
        conn: Connection,
        tables: Sequence[str],
        *,
        rows: bool = True,
        checksums: bool = True,
        digest: str | None = None,
    ) -> dict[str, TableStats]:
        """Row count, content checksum, size and DDL hash of each of ``tables``.

        ``rows=False`` / ``checksums=False`` skip the row count / the content
        checksum (each reads the whole table) where the database can. ``digest``:
        the checksum's method (None: the newest the server has); a comparison with
        a recorded measurement passes the recorded one (:mod:`.digests`).
        """

    def foreign_key_actions(self, conn: Connection) -> list[ForeignKeyAction]:
        """Every foreign key between the tables of the connected database, with its actions."""
        import sqlalchemy as sa

        inspector = sa.inspect(conn)
        found: list[ForeignKeyAction] = []
        for table in self.list_tables(conn):
            for fk in inspector.get_foreign_keys(table):
                options = fk.get("options") or {}
                found.append(
                    ForeignKeyAction(
                        child=table,
                        parent=str(fk["referred_table"]),
                        on_delete=options.get("ondelete"),
                        on_update=options.get("onupdate"),
                    )
                )
        return found

    def suspend_foreign_key_actions(self, conn: Connection) -> bool:
        """Keep foreign-key actions from firing on ``conn`` while tables are rebuilt.

        A rebuild (copy, drop, rename) deletes every row of the old table; where that
        deletion fires ``ON DELETE`` actions the dialect switches them off here until
        the connection goes back to its pool (committing the open transaction first
        where the database can only switch them outside one), and returns True.
        Raises :class:`~migration_guard.errors.UsageError` when they stay on.
        Databases whose ``DROP TABLE`` fires no row actions return False.
        """
        del conn
        return False

    def foreign_key_violations(self, conn: Connection) -> list[str]:
        """Rows whose foreign key points at no row (checked after a rebuild)."""
        del conn
        return []

    @abc.abstractmethod
    def objects(self, conn: Connection) -> dict[str, dict[str, str]]:
        """Views, triggers, routines and events: ``{"views": {name: sha256}, ...}``.

        The hashes cover the definition with the database's own name
        normalised away, so a restore into another database compares equal.
        """

    def binlog_position(self, conn: Connection) -> dict[str, str] | None:
        """The replication position of the current snapshot, if the server has one."""
        del conn
        return None

    # -- databases ------------------------------------------------------------
    @abc.abstractmethod
    def admin_url(self, url: URL) -> URL:
        """A URL for the same server that does not need ``url``'s database to exist."""

    def database_name(self, url: URL) -> str:
        """The database (or file) ``url`` points at."""
        return url.database or ""

    def scratch_url(self, url: URL, name: str) -> URL:
        """``url`` pointed at another database called ``name`` on the same server."""
        return url.set(database=name)

    @abc.abstractmethod
    def create_database(
        self,
        admin_conn: Connection | None,
        name: str,
        *,
        charset: str | None = None,
        collation: str | None = None,
    ) -> None:
        """Create the empty database ``name``."""

    @abc.abstractmethod
    def drop_database(self, admin_conn: Connection | None, name: str) -> None:
        """Drop the database ``name`` if it exists."""

    @abc.abstractmethod
    def database_exists(self, url: URL) -> bool:
        """Whether ``url``'s database exists."""

    def probe_connect_args(self, url: URL, timeout: int) -> dict[str, Any] | None:
        """Connection arguments for a quick look at ``url`` that gives up after
        ``timeout`` seconds, or None when connecting would create something (a
        SQLite file that does not exist yet)."""
        del url
        return {"connect_timeout": timeout}

    # -- migration lock -------------------------------------------------------
    def acquire_lock(self, url: URL, name: str, timeout: float) -> HeldLock:
        """Take the migration lock ``name`` for the database at ``url``.

        Waits up to ``timeout`` seconds, then raises
        :class:`~migration_guard.errors.LockTimeout` naming the holder. The lock
        stays held until :meth:`release_lock` (or until this process dies).
        """
        del url, name, timeout
        raise UsageError(
            f"migration-guard has no migration lock for {self.name} databases yet; "
            "use MySQL/MariaDB, PostgreSQL or SQLite"
        )

    def release_lock(self, lock: HeldLock) -> None:
        """Give back a lock taken with :meth:`acquire_lock` (idempotent)."""
        lock.release()

    # -- transactions of a guarded run ------------------------------------------
    #: Whether DDL runs inside the migration's transaction, so that a failure rolls the
    #: run's uncommitted changes back whole (PostgreSQL). A failed run's tables are then
    #: measured first and reloaded from a backup only where they still differ.
    transactional_ddl: ClassVar[bool] = False

    def table_definitions(self, conn: Connection, tables: Sequence[str]) -> dict[str, str]:
        """A SHA-256 per table of its whole definition (columns, constraints, indexes,
        triggers, options), for the proof of a restore; empty where ``ddl_sha256`` of
        :meth:`table_stats` covers all of it already."""
        del conn, tables
        return {}

    def outside_transaction_only(
        self, sql: str, server_version: tuple[int, ...] | None
    ) -> str | None:
        """The kind of statement (``CREATE INDEX CONCURRENTLY``) when ``sql`` holds one
        that the server refuses inside a transaction block; None otherwise."""
        del sql, server_version
        return None

    def locks_a_backup_waits_for(self, conn: Connection, holder: Connection) -> list[str]:
        """The tables on which ``holder``'s open transaction holds a lock that a backup
        (read on another connection, ``conn``) would wait for; empty where none would."""
        del conn, holder
        return []

    def in_autocommit(self, conn: Connection) -> bool:
        """Whether ``conn``'s driver connection commits each statement on its own (as in
        Alembic's ``autocommit_block()``)."""
        del conn
        return False

    def drop_tables(self, conn: Connection, tables: Sequence[str]) -> None:
        """Drop ``tables`` (which exist) regardless of the foreign keys between them."""
        for table in tables:
            run_sql(conn, f"DROP TABLE {self.quote_identifier(table)}")

    def is_empty(self, url: URL) -> bool:
        """Whether ``url``'s database is missing or holds no table."""
        return not self.database_exists(url) or not self.holds_tables(url)

    def holds_tables(self, url: URL) -> bool:
        """Whether ``url``'s database, which exists, holds a table (one login)."""
        with connected(url) as conn:
            return bool(self.backup_tables(conn))

    # -- backups --------------------------------------------------------------
    @property
    def family(self) -> str:
        """Dialects of one family restore each other's backups (``mariadb`` is ``mysql``)."""
        return self.name

    def serverless_scratch_url(self, near: URL | None, name: str) -> URL | None:
        """A scratch database called ``name`` that needs no server, or None.

        Databases that live in a file put it next to ``near``'s (or in the
        temporary directory); server databases return None and get theirs from
        :meth:`scratch_url` on a server URL.
        """
        del near, name
        return None

    def unknown_database_options(
        self, admin_conn: Connection | None, *, charset: str | None, collation: str | None
    ) -> list[str]:
        """What of ``charset`` and ``collation`` this server does not know; empty: all fine.

        The values come from a manifest, so they are checked against the server's
        own catalog before :meth:`create_database` puts them into SQL. Databases
        without such options (``create_database`` ignores them) know everything.
        """
        del admin_conn, charset, collation
        return []

    def database_option_problems(
        self, admin_conn: Connection | None, options: Mapping[str, Any]
    ) -> list[str]:
        """What of a manifest's ``database_options`` this server does not know.

        By default the ``charset`` and ``collation`` of :meth:`unknown_database_options`;
        a database with more options (PostgreSQL's locale and extensions) checks those too.
        """
        return self.unknown_database_options(
            admin_conn, charset=options.get("charset"), collation=options.get("collation")
        )

    def create_database_like(
        self, admin_conn: Connection | None, name: str, options: Mapping[str, Any]
    ) -> None:
        """Create the empty database ``name`` as a manifest's ``database_options`` say
        (checked by :meth:`database_option_problems` first)."""
        self.create_database(
            admin_conn, name, charset=options.get("charset"), collation=options.get("collation")
        )

    #: The longest table name the database accepts (None: no limit of its own).
    max_identifier_length: ClassVar[int | None] = None

    def identifier_problem(self, name: object) -> str | None:
        """Why ``name`` (from a manifest) cannot be a table name here, or None.

        Names are always quoted when they reach SQL; this refuses what no
        quoting makes valid: non-text, empty, NUL, longer than the database allows.
        """
        if not isinstance(name, str) or not name:
            return "is empty or not text"
        if "\x00" in name:
            return "contains a NUL character"
        limit = self.max_identifier_length
        if limit is not None and len(name) > limit:
            return f"is longer than {limit} characters"
        return None

    def backup_tables(self, conn: Connection) -> list[str]:
        """The tables a full backup holds, as its manifest names them.

        :meth:`list_tables` by default; a database with schemas adds the tables of
        the others, qualified (PostgreSQL: ``schema.table``).
        """
        return self.list_tables(conn)

    # -- statements below SQLAlchemy ------------------------------------------
    def guard_raw_writes(
        self, dbapi_connection: Any, refuse: Callable[[str, str], bool]
    ) -> Callable[[], None] | None:
        """Make ``dbapi_connection`` itself refuse a write that ``refuse(kind, table)``
        says no to (``kind`` is ``delete``, ``update``, ``drop`` or ``alter``), also one
        sent through a raw cursor that no SQLAlchemy hook sees.

        Returns the undo, or None where the driver offers no such hook (the default).
        """
        del dbapi_connection, refuse
        return None

    # -- the lock's heartbeat -------------------------------------------------
    def lock_is_held(self, lock: HeldLock) -> bool:
        """Whether ``lock`` (from :meth:`acquire_lock`) is still held by this process.

        Asked before a guarded run commits and before it restores: a server-side lock
        lives on one connection, which a ``wait_timeout``, a proxy, a failover or an
        administrator's ``KILL`` can end without this process noticing. Never raises:
        a lock that cannot be checked counts as lost.
        """
        return not lock.released

    # -- names ----------------------------------------------------------------
    def default_schema(self, conn: Connection) -> str | None:
        """The schema an unqualified table name is in on ``conn`` (MySQL/MariaDB: the
        current database), or None when unknown."""
        del conn
        return None


def run_sql(conn: Connection, sql: str) -> Any:
    """Execute literal ``sql`` with no parameter substitution (``%`` in names stays ``%``)."""
    return conn.exec_driver_sql(sql, execution_options={"no_parameters": True})


class HeldLock(abc.ABC):
    """A migration lock held by this process; :meth:`release` gives it back."""

    def __init__(self, name: str, description: str, connection: Connection | None = None) -> None:
        self.name = name
        #: Where the lock lives, for messages (``GET_LOCK('...')``, a lock file...).
        self.description = description
        #: The dedicated connection a server-side lock lives on (None for a lock file).
        #: The holder may run its own short reads on it instead of opening another.
        self.connection = connection
        self.released = False

    @abc.abstractmethod
    def _release(self) -> None:
        """Give the lock back; called once."""

    def release(self) -> None:
        """Give the lock back; later calls do nothing."""
        if self.released:
            return
        self.released = True
        self._release()


#: Execution option that marks the guard's own engines (locks, backups, proofs): the
#: statement interceptor of a guarded run judges every other statement in the process.
GUARD_CONNECTION_OPTION = "migration_guard_own"


def guard_engine(url: URL | str, **kw: Any) -> Engine:
    """An engine of the guard's own for ``url``: no pool, marked with
    :data:`GUARD_CONNECTION_OPTION` so that a guarded run never judges its statements."""
    import sqlalchemy as sa

    options = {**kw.pop("execution_options", {}), GUARD_CONNECTION_OPTION: True}
    kw.setdefault("poolclass", sa.pool.NullPool)
    return sa.create_engine(url, execution_options=options, **kw)


def connect_engine(url: URL) -> Engine:
    """An engine for ``url`` without a pool; connection failures become clear errors."""
    import sqlalchemy as sa

    engine = guard_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise database_unavailable(url, exc) from None
    return engine


def open_connection(engine: Engine, url: URL) -> Connection:
    """``engine.connect()`` with connection failures turned into clear errors.

    Unlike :func:`connect_engine` it costs one login, not two (a probe, then the
    connection): on a real server each login is a network round trip or more.
    """
    import sqlalchemy as sa

    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        raise database_unavailable(url, exc) from None


@contextmanager
def connected(url: URL) -> Iterator[Connection]:
    """One short-lived connection to ``url``, closed (and its engine disposed) afterwards."""
    engine = guard_engine(url)
    try:
        with open_connection(engine, url) as conn:
            yield conn
    finally:
        engine.dispose()


@contextmanager
def transaction(url: URL) -> Iterator[Connection]:
    """Like :func:`connected`, inside a transaction committed on success."""
    with connected(url) as conn, conn.begin():
        yield conn


def database_unavailable(url: URL | PlainURL, exc: BaseException) -> DatabaseUnavailableError:
    """A :class:`DatabaseUnavailableError` for a failed connection, without secrets."""
    original = getattr(exc, "orig", None) or exc
    detail = str(original)
    if url.password:
        detail = detail.replace(str(url.password), "***")
    return DatabaseUnavailableError(
        f"cannot connect to {safe_url_text(url)}: {detail}. "
        "Check that the server is running and reachable and that the user, password "
        "and database name are right."
    )

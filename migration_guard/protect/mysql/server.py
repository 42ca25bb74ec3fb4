"""What protection reads from a MySQL/MariaDB session, and the server's error codes.

The server version and the table list come from
:class:`~migration_guard.dialects.mysql.MySQLDialectOps`, shared with backups and
upgrades; the rest (session
``sql_mode``, triggers, the guard's record, binary-log settings) is the
guard's own reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration_guard.dialects.mysql import MySQLDialectOps, parse_server_version
from migration_guard.errors import UsageError, describe
from migration_guard.protect.base import read_state
from migration_guard.protect.model import META_TABLE, Account
from migration_guard.protect.mysql import sql
from migration_guard.protect.mysql.sql import Quoting

_DIALECT = MySQLDialectOps()
#: Multiple triggers per event and FOLLOWS/PRECEDES arrived in these versions.
MIN_MYSQL = (5, 7, 2)
MIN_MARIADB = (10, 2, 3)

ER_DBACCESS_DENIED = 1044
ER_TABLEACCESS_DENIED = 1142
ER_NONEXISTING_GRANT = 1141
ER_SPECIFIC_ACCESS_DENIED = 1227
ER_LOCK_WAIT_TIMEOUT = 1205
ER_CANT_DROP_FIELD = 1091
ER_SIGNAL_EXCEPTION = 1644
ER_BINLOG_CREATE_ROUTINE_NEED_SUPER = 1419
#: The codes of "access denied", whatever the level it was denied at.
ACCESS_DENIED = frozenset({ER_DBACCESS_DENIED, ER_TABLEACCESS_DENIED, ER_SPECIFIC_ACCESS_DENIED})

BINLOG_FIX = (
    "binary logging is on and log_bin_trust_function_creators is 0, so creating a trigger "
    "needs the SUPER privilege. Fix: run install with an account that has SUPER, or set "
    "log_bin_trust_function_creators = 1 (SET GLOBAL log_bin_trust_function_creators = 1, "
    "and in the server configuration so that it survives a restart)"
)


def error_code(exc: BaseException) -> int | None:
    """The server's error number of a driver error (SQLAlchemy-wrapped or not)."""
    original = getattr(exc, "orig", None) or exc
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int):
        return int(args[0])
    return None


#: error code -> what the admin should know beyond the server's message.
_ADVICE: dict[int, str] = {
    ER_BINLOG_CREATE_ROUTINE_NEED_SUPER: f": {BINLOG_FIX}",
    **dict.fromkeys(ACCESS_DENIED, " (the admin URL's account lacks this privilege)"),
}


def explain_error(exc: BaseException) -> str:
    """A failed plan step's error with the fix for the errors the guard knows."""
    return describe(exc) + _ADVICE.get(error_code(exc) or 0, "")


def binlog_problem(*, log_bin: bool, trust_function_creators: bool, has_super: bool) -> str | None:
    """Why creating a trigger will fail with binary logging on, or None."""
    if log_bin and not trust_function_creators and not has_super:
        return BINLOG_FIX
    return None


def database_name(conn: Connection) -> str:
    name = conn.exec_driver_sql(sql.DATABASE_SQL).scalar()
    if not name:
        raise UsageError("the URL names no database; add it, e.g. mysql+pymysql://admin@host/appdb")
    return str(name)


def session_quoting(conn: Connection) -> Quoting:
    """String quoting as the session's ``sql_mode`` reads it."""
    mode = str(conn.exec_driver_sql(sql.SQL_MODE_SQL).scalar() or "")
    return Quoting(no_backslash_escapes="NO_BACKSLASH_ESCAPES" in mode.upper())


def is_mariadb(conn: Connection) -> bool:
    return _DIALECT.is_mariadb(conn)


def product(conn: Connection) -> str:
    """``mariadb`` or ``mysql``: the dialect shown in plans and status."""
    return "mariadb" if is_mariadb(conn) else "mysql"


def check_version(conn: Connection) -> str:
    """The product name; a server too old for several triggers per event is a usage error."""
    text = _DIALECT.server_version(conn)
    numbers, mariadb = parse_server_version(text)
    minimum = MIN_MARIADB if mariadb else MIN_MYSQL
    if numbers < minimum:
        name = "MariaDB" if mariadb else "MySQL"
        raise UsageError(
            f"unsupported server version {text}: protect needs {name} "
            f"{'.'.join(map(str, minimum))} or later (several triggers per event, "
            "FOLLOWS/PRECEDES)"
        )
    return "mariadb" if mariadb else "mysql"


def list_tables(conn: Connection) -> list[str]:
    """The database's base tables without the guard's metadata table."""
    tables = _DIALECT.list_tables(conn)
    return [table for table in tables if table != META_TABLE]


def current_account(conn: Connection) -> Account:
    """The account the connection logged in as (``CURRENT_USER()``)."""
    text = str(conn.exec_driver_sql(sql.CURRENT_USER_SQL).scalar())
    user, _, host = text.rpartition("@")
    return Account(user, host)


@dataclass(frozen=True)
class TriggerInfo:
    """One trigger of the database, as information_schema.TRIGGERS shows it."""

    name: str
    table: str
    timing: str
    event: str
    statement: str
    order: int

    def recreate(self, quoting: Quoting) -> str:
        """Undo for dropping this trigger: a plain re-creation of it."""
        return sql.create_trigger(
            self.name, self.timing, self.event, self.table, self.statement, quoting
        )


def read_triggers(conn: Connection) -> list[TriggerInfo]:
    rows = conn.execute(sa.text(sql.TRIGGERS_SQL))
    return [
        TriggerInfo(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5] or 0))
        for r in rows
    ]


def meta_exists(conn: Connection) -> bool:
    count = conn.execute(sa.text(sql.TABLE_EXISTS_SQL), {"name": META_TABLE}).scalar()
    return bool(count)


def read_install_state(conn: Connection, quoting: Quoting) -> dict[str, Any] | None:
    """The record of the last install; ``None`` when protection was never installed."""
    if not meta_exists(conn):
        return None
    return read_state(conn, quoting.ident(META_TABLE))


def binlog_settings(conn: Connection) -> tuple[bool, bool]:
    """``(log_bin, log_bin_trust_function_creators)`` of the server."""
    variables: dict[str, Any] = dict(conn.exec_driver_sql(sql.BINLOG_SETTINGS_SQL).fetchall())
    return (
        str(variables.get("log_bin")) in ("1", "ON"),
        str(variables.get("trust")) in ("1", "ON"),
    )

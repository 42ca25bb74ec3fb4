"""The statement text of MySQL/MariaDB protection.

The guard's own names (triggers, the metadata table, the bypass variable),
string and account quoting for the session's ``sql_mode``, and the text of
every CREATE TRIGGER, GRANT and REVOKE it plans. Identifier quoting is
:func:`migration_guard.dialects.mysql.quote_mysql_identifier`, shared with
every other part that talks to these servers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from migration_guard.dialects.mysql import quote_mysql_identifier
from migration_guard.protect.model import META_TABLE, TRIGGER_PREFIX, TRIGGER_SUFFIX, Account

#: MySQL/MariaDB session variable that lets deliberate deletes through.
BYPASS_VARIABLE = "@migration_guard_allow_delete"
MAX_IDENTIFIER = 64
MAX_MESSAGE_TEXT = 128
MESSAGE_TEMPLATE = (
    "migration-guard: deleting from {table} is blocked; "
    "SET @migration_guard_allow_delete = 1 for a deliberate delete"
)


@dataclass(frozen=True)
class Quoting:
    """Identifier, string and account quoting for one session's ``sql_mode``."""

    no_backslash_escapes: bool = False

    def ident(self, name: str) -> str:
        """Backtick-quote ``name``; embedded backticks are doubled."""
        return quote_mysql_identifier(name)

    def string(self, value: str) -> str:
        """A string literal; quotes doubled, backslashes escaped unless the mode forbids."""
        if not self.no_backslash_escapes:
            value = value.replace("\\", "\\\\")
        return "'" + value.replace("'", "''") + "'"

    def account(self, account: Account) -> str:
        return f"{self.string(account.user)}@{self.string(account.host)}"


def trigger_name(table: str) -> str:
    """``mg_guard_<table>_bd``; long names keep a prefix plus a hash to fit 64 characters."""
    name = f"{TRIGGER_PREFIX}{table}{TRIGGER_SUFFIX}"
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(table.encode("utf-8")).hexdigest()[:8]
    keep = MAX_IDENTIFIER - len(TRIGGER_PREFIX) - len(TRIGGER_SUFFIX) - len(digest) - 1
    return f"{TRIGGER_PREFIX}{table[:keep]}_{digest}{TRIGGER_SUFFIX}"


def delete_message(table: str) -> str:
    """The SIGNAL text; the table name is shortened so that it fits MESSAGE_TEXT (128)."""
    # No backslashes: MariaDB's information_schema shows trigger bodies with escapes
    # already processed, and the body must compare equal to what was installed.
    shown = "".join(ch if ch.isprintable() and ch != "\\" else "?" for ch in table)
    room = MAX_MESSAGE_TEXT - len(MESSAGE_TEMPLATE.format(table=""))
    if len(shown) > room:
        shown = shown[: room - 3] + "..."
    return MESSAGE_TEMPLATE.format(table=shown)


def trigger_body(table: str, quoting: Quoting) -> str:
    """The trigger's statement (what information_schema.TRIGGERS.ACTION_STATEMENT shows)."""
    message = quoting.string(delete_message(table))
    return (
        f"IF NOT ({BYPASS_VARIABLE} <=> 1) THEN "
        f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = {message}; END IF"
    )


def normalise_sql(text: str) -> str:
    """``text`` with runs of white space made one space, for comparing trigger bodies."""
    return " ".join(text.split())


def create_guard_trigger(table: str, quoting: Quoting, *, precedes: str | None = None) -> str:
    """CREATE TRIGGER for the guard of ``table``, before the trigger ``precedes`` if given."""
    order = f" PRECEDES {quoting.ident(precedes)}" if precedes else ""
    return (
        f"CREATE TRIGGER {quoting.ident(trigger_name(table))} BEFORE DELETE ON "
        f"{quoting.ident(table)} FOR EACH ROW{order} {trigger_body(table, quoting)}"
    )


def create_trigger(
    name: str, timing: str, event: str, table: str, statement: str, quoting: Quoting
) -> str:
    """A plain CREATE TRIGGER, used to re-create a dropped trigger on undo."""
    return (
        f"CREATE TRIGGER {quoting.ident(name)} {timing} {event} "
        f"ON {quoting.ident(table)} FOR EACH ROW {statement}"
    )


def create_meta_table(quoting: Quoting) -> str:
    """The guard's metadata table: name/value rows, the install record among them."""
    return (
        f"CREATE TABLE IF NOT EXISTS {quoting.ident(META_TABLE)} "
        "(name VARCHAR(64) NOT NULL PRIMARY KEY, "
        "value LONGTEXT NOT NULL, updated_at TIMESTAMP NOT NULL "
        "DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB"
    )


def privilege_list(privileges: Iterable[str]) -> str:
    """``ALTER, DROP``: privileges in a stable order, as GRANT and REVOKE take them."""
    return ", ".join(sorted(privileges))


def on_schema(quoting: Quoting, pattern: str) -> str:
    """The ``ON`` target of a database-level grant."""
    return f"{quoting.ident(pattern)}.*"


def on_table(quoting: Quoting, database: str, table: str) -> str:
    """The ``ON`` target of a table-level grant."""
    return f"{quoting.ident(database)}.{quoting.ident(table)}"


def grant(privileges: str, on: str, target: str) -> str:
    return f"GRANT {privileges} ON {on} TO {target}"


def revoke(privileges: str, on: str, target: str) -> str:
    return f"REVOKE {privileges} ON {on} FROM {target}"


# The information_schema and mysql-schema queries the guard reads with.
DATABASE_SQL = "SELECT DATABASE()"
SQL_MODE_SQL = "SELECT @@SESSION.sql_mode"
CURRENT_USER_SQL = "SELECT CURRENT_USER()"
ENABLED_ROLES_SQL = "SELECT COUNT(ROLE_NAME) FROM information_schema.ENABLED_ROLES"
BINLOG_SETTINGS_SQL = (
    "SELECT 'log_bin', @@GLOBAL.log_bin UNION ALL "
    "SELECT 'trust', @@GLOBAL.log_bin_trust_function_creators"
)
TRIGGERS_SQL = (
    "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, "
    "ACTION_STATEMENT, ACTION_ORDER FROM information_schema.TRIGGERS "
    "WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER"
)
TABLE_EXISTS_SQL = (
    "SELECT COUNT(*) FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name"
)
TABLE_ENGINES_SQL = (
    "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
)
GLOBAL_PRIVILEGES_SQL = (
    "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES "
    "WHERE GRANTEE = :grantee"
)
SCHEMA_PRIVILEGES_SQL = (
    "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE "
    "FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = :grantee"
)
TABLE_PRIVILEGES_SQL = (
    "SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES "
    "WHERE GRANTEE = :grantee AND TABLE_SCHEMA = :database"
)
MARIADB_ROLES_SQL = "SELECT Role, '' FROM mysql.roles_mapping WHERE User = :user AND Host = :host"
MYSQL_ROLES_SQL = (
    "SELECT FROM_USER, FROM_HOST FROM mysql.role_edges WHERE TO_USER = :user AND TO_HOST = :host"
)

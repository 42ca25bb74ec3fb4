"""SQLite protection: BEFORE DELETE triggers with a bypass table.

SQLite has no accounts and no privileges, and no trigger fires on DDL, so only
row deletes can be refused. ``DROP TABLE`` (which also drops the table's
triggers) and ``ALTER TABLE ... DROP COLUMN`` cannot be stopped; ``status``
says so. A deliberate delete inserts a row into
:data:`BYPASS_TABLE` inside its own transaction and removes it before
committing (:func:`allow_deletes`), so other connections never see it set.

The guard's own statements live in this module; identifier quoting and the
table list come from :mod:`migration_guard.dialects.sqlite`.
"""

from __future__ import annotations

import copy
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from migration_guard.dialects.base import connect_engine, connected
from migration_guard.dialects.sqlite import list_sqlite_tables, quote_sqlite_identifier
from migration_guard.errors import ProtectError, UsageError, describe
from migration_guard.protect.base import (
    NOT_INSTALLED,
    STATE_KEY,
    Protector,
    read_state,
    require_installed,
)
from migration_guard.protect.model import (
    META_TABLE,
    TRIGGER_PREFIX,
    TRIGGER_SUFFIX,
    Account,
    ProtectPlan,
    TableOptions,
    dump_json,
    options_for,
)
from migration_guard.protect.report import ProbeResult, ProtectStatus, TableStatus

#: One row with ``allow = 1`` lets deletes through; set and cleared in one transaction.
BYPASS_TABLE = "migration_guard_bypass"
LIMITATIONS = (
    "DROP TABLE: SQLite has no privileges and no DDL triggers; dropping a table also drops "
    "its delete trigger. Keep backups (migration-guard backup) and file permissions tight",
    "ALTER TABLE ... DROP COLUMN / RENAME: no trigger fires on schema changes",
)


def quote_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def trigger_name(table: str) -> str:
    return f"{TRIGGER_PREFIX}{table}{TRIGGER_SUFFIX}"


def delete_message(table: str) -> str:
    return (
        f"migration-guard: deleting from {table} is blocked; use migration_guard.protect."
        f"sqlite.allow_deletes() (a row in {BYPASS_TABLE}) for a deliberate delete"
    )


def create_trigger_sql(table: str) -> str:
    """The exact CREATE TRIGGER statement (sqlite_master.sql stores it verbatim)."""
    return (
        f"CREATE TRIGGER {quote_sqlite_identifier(trigger_name(table))} BEFORE DELETE ON "
        f"{quote_sqlite_identifier(table)} FOR EACH ROW BEGIN SELECT RAISE(ABORT, "
        f"{quote_string(delete_message(table))}) WHERE NOT EXISTS (SELECT 1 FROM "
        f"{quote_sqlite_identifier(BYPASS_TABLE)} WHERE allow = 1); END"
    )


def _normalise(sql: str) -> str:
    return " ".join(sql.split())


def _raw(conn: Connection | sqlite3.Connection) -> sqlite3.Connection:
    if isinstance(conn, sqlite3.Connection):
        return conn
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


@contextmanager
def allow_deletes(conn: Connection | sqlite3.Connection) -> Iterator[None]:
    """Let deletes through the guard triggers inside the caller's transaction.

    The bypass row is inserted on entry and deleted on exit (also on error), so it
    is never committed on its own: commit after the ``with`` block.
    """
    raw = _raw(conn)
    bypass = quote_sqlite_identifier(BYPASS_TABLE)
    raw.execute(f"INSERT INTO {bypass} (allow) VALUES (1)")
    try:
        yield
    finally:
        raw.execute(f"DELETE FROM {bypass} WHERE allow = 1")


class SQLiteProtector(Protector):
    """Delete triggers for SQLite files."""

    dialect: ClassVar[str] = "sqlite"
    uses_accounts: ClassVar[bool] = False

    @contextmanager
    def connect(self, url: URL) -> Iterator[Connection]:
        """A plain connection to an existing file: protecting a new empty file is a typo."""
        database = url.database or ""
        if database in ("", ":memory:") or not os.path.isfile(database):
            raise UsageError(
                f"SQLite database {database or '(in-memory)'} does not exist; "
                "protect works on an existing database file"
            )
        with connected(url) as conn:
            yield conn

    def database_name(self, conn: Connection) -> str:
        row = conn.exec_driver_sql("PRAGMA database_list").fetchone()
        return str(row[2]) if row is not None and row[2] else "main"

    def list_tables(self, conn: Connection) -> list[str]:
        own = {META_TABLE, BYPASS_TABLE}
        return [table for table in list_sqlite_tables(_raw(conn)) if table not in own]

    def _triggers(self, conn: Connection) -> dict[str, tuple[str, str]]:
        rows = conn.exec_driver_sql(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
        )
        return {str(name): (str(table), str(sql)) for name, table, sql in rows}

    def _has_table(self, conn: Connection, name: str) -> bool:
        row = conn.execute(
            sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": name},
        ).first()
        return row is not None

    def _read_state(self, conn: Connection) -> dict[str, Any] | None:
        if not self._has_table(conn, META_TABLE):
            return None
        return read_state(conn, quote_sqlite_identifier(META_TABLE))

    @staticmethod
    def _no_accounts(app_users: Sequence[Account]) -> None:
        if app_users:
            raise UsageError(
                "SQLite has no accounts or privileges; --app-user applies to MySQL/MariaDB only"
            )

    def plan_install(
        self,
        conn: Connection,
        tables: Sequence[str],
        app_users: Sequence[Account],
        options: Mapping[str, TableOptions],
    ) -> ProtectPlan:
        self._no_accounts(app_users)
        plan = ProtectPlan("install", "sqlite", self.database_name(conn))
        plan.notes.extend(f"cannot protect {item}" for item in LIMITATIONS)
        old_state = self._read_state(conn)
        state: dict[str, Any] = (
            copy.deepcopy(old_state) if old_state else {"version": 1, "tables": {}}
        )
        live = set(self.list_tables(conn))
        for gone in sorted(set(state["tables"]) - live):
            plan.notes.append(f"{gone} no longer exists; it is dropped from the guard's record")
            del state["tables"][gone]
        meta, bypass = quote_sqlite_identifier(META_TABLE), quote_sqlite_identifier(BYPASS_TABLE)
        if not self._has_table(conn, META_TABLE):
            plan.add(
                f"create the guard's metadata table {META_TABLE}",
                f"CREATE TABLE {meta} (name TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)",
            )
        if not self._has_table(conn, BYPASS_TABLE):
            plan.add(
                f"create the bypass table {BYPASS_TABLE} (a row with allow = 1 lets deletes "
                "through)",
                f"CREATE TABLE {bypass} (allow INTEGER NOT NULL)",
            )
        triggers = self._triggers(conn)
        trigger_steps = ProtectPlan("install", "sqlite", plan.database)
        for table in tables:
            name = trigger_name(table)
            expected = create_trigger_sql(table)
            existing = triggers.get(name)
            if not options_for(options, table).blocks_deletes:
                state["tables"][table] = {"deletes": "allow", "trigger": None, "sql": None}
                if existing is not None:
                    trigger_steps.add(
                        f'drop the delete guard of {table} (deletes = "allow")',
                        f"DROP TRIGGER {quote_sqlite_identifier(name)}",
                    )
                continue
            state["tables"][table] = {"deletes": "block", "trigger": name, "sql": expected}
            if (
                existing is not None
                and existing[0] == table
                and _normalise(existing[1]) == _normalise(expected)
            ):
                continue
            if existing is not None:
                trigger_steps.add(
                    f"replace the altered delete guard {name}",
                    f"DROP TRIGGER {quote_sqlite_identifier(name)}",
                )
            trigger_steps.add(f"refuse row deletes on {table}", expected)
        if old_state is None or dump_json(old_state) != dump_json(state):
            plan.add(
                "record the protected tables",
                f"INSERT OR REPLACE INTO {meta} (name, value) VALUES "
                f"({quote_string(STATE_KEY)}, {quote_string(dump_json(state))})",
            )
        plan.steps.extend(trigger_steps.steps)
        return plan

    def plan_remove(self, conn: Connection, app_users: Sequence[Account]) -> ProtectPlan:
        self._no_accounts(app_users)
        plan = ProtectPlan("remove", "sqlite", self.database_name(conn))
        state = self._read_state(conn)
        triggers = self._triggers(conn)
        recorded = state["tables"] if state else {}
        for table, entry in sorted(recorded.items()):
            name = entry.get("trigger")
            if name and name in triggers:
                plan.add(
                    f"drop the delete guard of {table}",
                    f"DROP TRIGGER {quote_sqlite_identifier(name)}",
                )
        for own in (BYPASS_TABLE, META_TABLE):
            if self._has_table(conn, own):
                plan.add(
                    f"drop the guard's table {own}", f"DROP TABLE {quote_sqlite_identifier(own)}"
                )
        if state is None:
            plan.notes.append("no protection is recorded in this database")
        return plan

    def apply(self, conn: Connection, plan: ProtectPlan) -> list[str]:
        """SQLite DDL is transactional: the whole plan commits or none of it does."""
        raw = _raw(conn)
        if raw.in_transaction:
            raw.commit()
        raw.execute("BEGIN IMMEDIATE")
        for number, step in enumerate(plan.steps, 1):
            try:
                raw.execute(step.sql)
            except sqlite3.Error as exc:
                raw.rollback()
                raise ProtectError(
                    f"protect {plan.action} failed at step {number} of {len(plan.steps)} "
                    f"({step.description}): {describe(exc)}. The transaction was rolled "
                    "back; nothing was changed.",
                    rolled_back=True,
                ) from None
        raw.commit()
        return []

    def status(
        self, conn: Connection, app_users: Sequence[Account], tables: Sequence[str] = ()
    ) -> ProtectStatus:
        self._no_accounts(app_users)
        state = self._read_state(conn)
        result = ProtectStatus("sqlite", self.database_name(conn), state is not None)
        result.limitations.extend(LIMITATIONS)
        if state is None:
            result.drift.append(NOT_INSTALLED)
        recorded: dict[str, Any] = state["tables"] if state else {}
        if state is not None and not self._has_table(conn, BYPASS_TABLE):
            result.drift.append(f"the bypass table {BYPASS_TABLE} is missing")
        live = set(self.list_tables(conn))
        triggers = self._triggers(conn)
        for table in sorted(set(recorded) | set(tables)):
            entry = recorded.get(table)
            name = trigger_name(table)
            if table not in live:
                result.tables.append(
                    TableStatus(
                        table,
                        "table-missing",
                        drift=["the table no longer exists (SQLite cannot refuse DROP TABLE)"],
                    )
                )
                continue
            if entry is None:
                result.tables.append(
                    TableStatus(
                        table,
                        "missing",
                        name,
                        drift=["protected by the configuration but not installed: run install"],
                    )
                )
                continue
            if entry.get("deletes") == "allow":
                result.tables.append(TableStatus(table, "not-required"))
                continue
            status = TableStatus(table, "intact", name)
            found = triggers.get(name)
            if found is None:
                status.trigger = "missing"
                status.drift.append(f"delete trigger {name} is missing")
            elif found[0] != table or _normalise(found[1]) != _normalise(str(entry["sql"])):
                status.trigger = "altered"
                status.drift.append(f"delete trigger {name} was altered")
            result.tables.append(status)
        return result

    def verify(self, admin_url: URL, app_url: URL | None) -> list[ProbeResult]:
        """DELETE every protected table inside a transaction that is always rolled back."""
        engine = connect_engine(app_url or admin_url)
        results: list[ProbeResult] = []
        try:
            with engine.connect() as conn:
                state = require_installed(self._read_state(conn))
                live = set(self.list_tables(conn))
                raw = _raw(conn)
                for table, entry in sorted(state["tables"].items()):
                    if table not in live:
                        continue
                    results.append(self._probe_delete(raw, table, entry))
                    for operation in ("DROP TABLE", "ALTER TABLE DROP COLUMN"):
                        results.append(
                            ProbeResult(
                                table,
                                operation,
                                "skipped",
                                "not attempted: SQLite cannot refuse schema changes",
                            )
                        )
        finally:
            engine.dispose()
        return results

    def _probe_delete(
        self, raw: sqlite3.Connection, table: str, entry: Mapping[str, Any]
    ) -> ProbeResult:
        if entry.get("deletes") == "allow":
            return ProbeResult(table, "DELETE", "skipped", 'deletes = "allow"')
        name = quote_sqlite_identifier(table)
        if raw.execute(f"SELECT 1 FROM {name} LIMIT 1").fetchone() is None:
            return ProbeResult(table, "DELETE", "skipped", "the table is empty")
        if raw.in_transaction:
            raw.commit()
        raw.execute("SAVEPOINT mg_probe")
        try:
            raw.execute(f"DELETE FROM {name}")
            return ProbeResult(table, "DELETE", "allowed", "rolled back")
        except sqlite3.DatabaseError as exc:
            if "migration-guard" in str(exc):
                return ProbeResult(table, "DELETE", "refused", "the delete trigger refused it")
            return ProbeResult(table, "DELETE", "skipped", f"inconclusive: {describe(exc)}")
        finally:
            raw.execute("ROLLBACK TO mg_probe")
            raw.execute("RELEASE mg_probe")
            if raw.in_transaction:
                raw.rollback()

"""``protect status`` on MySQL/MariaDB: triggers and privilege guards against the record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from migration_guard.errors import UsageError
from migration_guard.protect.base import NOT_INSTALLED
from migration_guard.protect.model import Account
from migration_guard.protect.mysql import server, sql
from migration_guard.protect.mysql.grants import Grants, effective_grants, show_grants
from migration_guard.protect.mysql.server import TriggerInfo
from migration_guard.protect.report import ProtectStatus, TableStatus


def protection_status(
    conn: Connection, app_users: Sequence[Account], tables: Sequence[str] = ()
) -> ProtectStatus:
    """Per table: the delete trigger and what each account can do to it; drift."""
    database = server.database_name(conn)
    dialect = server.product(conn)
    quoting = server.session_quoting(conn)
    state = server.read_install_state(conn, quoting)
    result = ProtectStatus(dialect, database, state is not None)
    recorded: dict[str, Any] = state["accounts"] if state else {}
    accounts = sorted(
        {Account(item["user"], item["host"]) for item in recorded.values()} | set(app_users)
    )
    result.accounts = [str(account) for account in accounts]
    if state is None:
        result.drift.append(NOT_INSTALLED)
    recorded_tables: dict[str, Any] = state["tables"] if state else {}
    live = set(server.list_tables(conn))
    triggers = {t.name: t for t in server.read_triggers(conn)}
    holdings: dict[Account, list[Grants] | None] = {}
    for account in accounts:
        try:
            show_grants(conn, account, quoting)
        except UsageError:
            holdings[account] = None
            result.drift.append(f"account {account} recorded at install no longer exists")
            continue
        holdings[account] = effective_grants(conn, account, database)
        if account.key not in recorded:
            result.drift.append(
                f"account {account} is not guarded: run protect install --app-user {account.key}"
            )
    for table in sorted(set(recorded_tables) | set(tables)):
        if table not in live:
            result.tables.append(
                TableStatus(
                    table,
                    "table-missing",
                    drift=["the table no longer exists; run protect install to update"],
                )
            )
            continue
        status = _trigger_status(table, recorded_tables.get(table), triggers)
        _privilege_status(status, accounts, holdings)
        result.tables.append(status)
    return result


def _trigger_status(
    table: str, entry: Mapping[str, Any] | None, triggers: Mapping[str, TriggerInfo]
) -> TableStatus:
    """The delete trigger of a live table against what install recorded for it."""
    if entry is None:
        return TableStatus(
            table,
            "missing",
            sql.trigger_name(table),
            drift=["protected by the configuration but not installed: run install"],
        )
    if entry.get("deletes") == "allow":
        return TableStatus(table, "not-required")
    name = str(entry["trigger"])
    status = TableStatus(table, "intact", name)
    found = triggers.get(name)
    if found is None:
        status.trigger = "missing"
        status.drift.append(f"delete trigger {name} is missing")
    elif (
        found.table != table
        or (found.timing, found.event) != ("BEFORE", "DELETE")
        or sql.normalise_sql(found.statement) != sql.normalise_sql(str(entry["body"]))
    ):
        status.trigger = "altered"
        status.drift.append(f"delete trigger {name} was altered")
    return status


def _privilege_status(
    status: TableStatus,
    accounts: Sequence[Account],
    holdings: Mapping[Account, list[Grants] | None],
) -> None:
    """Whether each account (itself or through a role) can DROP or ALTER the table."""
    for account in accounts:
        grants = holdings.get(account)
        if grants is None:
            continue
        found_ddl = [d for g in grants[:1] for d in g.guarded_on(status.table)] + [
            f"{d} via role {g.account}" for g in grants[1:] for d in g.guarded_on(status.table)
        ]
        if found_ddl:
            status.privileges[str(account)] = "can " + "; ".join(found_ddl)
            status.drift.append(
                f"{account} can DROP/ALTER/TRUNCATE this table ({'; '.join(found_ddl)})"
            )
        else:
            status.privileges[str(account)] = "guarded (no DROP, no ALTER)"

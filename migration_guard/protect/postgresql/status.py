"""``protect status`` on PostgreSQL: triggers, owners, grants and event triggers
against the install record.

Every fact about the protected tables is read by one catalog query over all of
them (:class:`_Facts`), so the number of queries does not grow with the number
of protected tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration_guard.protect.base import NOT_INSTALLED
from migration_guard.protect.model import Account
from migration_guard.protect.postgresql import catalog, sql
from migration_guard.protect.postgresql.catalog import Table
from migration_guard.protect.postgresql.planner import DIALECT
from migration_guard.protect.report import ProtectStatus, TableStatus

PARTIAL = (
    "partial protection: install ran without a superuser, so the event trigger that "
    "refuses DROP/ALTER of protected tables by their owner or a superuser is not "
    "installed; run protect install again as a superuser"
)


@dataclass(frozen=True)
class _Facts:
    """What status reads about every live protected table, one query per fact."""

    owners: dict[int, tuple[str, bool]]
    triggers: dict[int, dict[str, catalog.Trigger]]
    can_own: dict[catalog.OnTable, tuple[bool, bool]]
    schemas: dict[catalog.OnTable, str]
    privileges: dict[catalog.OnTable, list[str]]
    partitions: dict[int, list[Table]]

    @classmethod
    def read(cls, conn: Connection, tables: Sequence[Table], roles: Sequence[str]) -> _Facts:
        oids = [table.oid for table in tables]
        return cls(
            catalog.owners(conn, oids),
            catalog.triggers_of(conn, oids),
            catalog.can_own_all(conn, oids, roles),
            catalog.owned_schemas(conn, oids, roles),
            catalog.privileges_of(conn, oids, roles),
            catalog.partitions_of(conn, tables),
        )


def protection_status(
    conn: Connection, app_users: Sequence[Account], tables: Sequence[str] = ()
) -> ProtectStatus:
    """Per table: guard triggers, owner and what each application role can do; drift."""
    me = catalog.session(conn)
    state = catalog.read_install_state(conn)
    result = ProtectStatus(DIALECT, me.database, state is not None)
    result.limitations.append(
        "DROP DATABASE: no event trigger sees it; only the database owner and superusers can run it"
    )
    recorded: dict[str, Any] = state["accounts"] if state else {}
    roles = sorted(set(recorded) | {catalog.role_name(account) for account in app_users})
    result.accounts = roles
    if state is None:
        result.drift.append(NOT_INSTALLED)
    recorded_tables: dict[str, Any] = state["tables"] if state else {}
    recorded_oids = {int(e["oid"]) for e in recorded_tables.values()}
    by_oid = catalog.tables_by_oid(conn, sorted(recorded_oids))
    live = {table.name: table for table in catalog.list_tables(conn)}
    existing = catalog.roles(conn, roles)
    present = []
    for name in roles:
        if name not in existing:
            result.drift.append(f"role {name} recorded at install no longer exists")
        else:
            present.append(name)
            if name not in recorded:
                result.drift.append(
                    f"role {name} is not recorded: run protect install --app-user {name}"
                )
    facts = _Facts.read(conn, list(by_oid.values()), present)
    for name in sorted(set(recorded_tables) | set(tables)):
        entry = recorded_tables.get(name)
        if entry is None:
            result.tables.append(
                TableStatus(
                    name,
                    "missing",
                    sql.DELETE_TRIGGER,
                    drift=["protected by the configuration but not installed: run install"],
                )
            )
            continue
        table = by_oid.get(int(entry["oid"]))
        if table is None:
            gone = "the table no longer exists"
            if name in live:
                gone = "the table was dropped and created again (new oid)"
            result.tables.append(
                TableStatus(name, "table-missing", drift=[f"{gone}; run protect install"])
            )
            continue
        status = _trigger_status(facts.triggers.get(table.oid, {}), name, entry)
        if table.name != name:
            status.drift.append(f"renamed to {table.name} since install")
        _owner_status(facts, status, table, entry, str(state["guard_role"]) if state else "")
        _role_status(facts, status, table, entry, present)
        for partition in facts.partitions.get(table.oid, []):
            if partition.oid not in recorded_oids:
                status.drift.append(
                    f"partition {partition.name} is not protected (attached after install): "
                    "run protect install"
                )
        result.tables.append(status)
    if state is not None:
        _event_trigger_status(conn, result, state)
        result.drift.extend(_bypass_defaults(conn, roles))
    return result


_ON = ("on", "true", "1", "yes")


def _bypass_defaults(conn: Connection, roles: Sequence[str]) -> list[str]:
    """The bypass switched on by default for the application roles or everyone (ALTER
    ROLE/DATABASE ... SET, server config): every session it covers deletes, truncates
    and alters unguarded."""
    found = []
    rows = conn.execute(
        sa.text(sql.BYPASS_DEFAULTS_SQL), {"prefix": f"{sql.BYPASS_SETTING}=%"}
    ).fetchall()
    for role, in_database, setting in rows:
        if str(setting).partition("=")[2].strip().lower() not in _ON:
            continue
        if role is not None and role not in roles:
            continue  # another application's role
        who = f"role {role}" if role is not None else "every role"
        where = "in this database" if in_database else "in every database"
        found.append(
            f"{sql.BYPASS_SETTING} is on by default for {who} {where} (ALTER ROLE/DATABASE "
            f"... SET): the guard is off in all those sessions; RESET it"
        )
    config = conn.execute(sa.text(sql.BYPASS_CONFIG_SQL), {"name": sql.BYPASS_SETTING}).first()
    if config is not None and str(config[0]).lower() in _ON:
        found.append(
            f"{sql.BYPASS_SETTING} is on in the server configuration ({config[1]}): the guard "
            "is off in every session"
        )
    return found


def _trigger_status(
    found: Mapping[str, catalog.Trigger], name: str, entry: Mapping[str, Any]
) -> TableStatus:
    wanted = [sql.TRUNCATE_TRIGGER]
    blocks = entry.get("deletes") != "allow"
    if blocks:
        wanted.insert(0, sql.DELETE_TRIGGER)
    status = TableStatus(name, "intact" if blocks else "not-required", sql.DELETE_TRIGGER)
    for trigger in wanted:
        current = found.get(trigger)
        state = "intact"
        if current is None:
            state = "missing"
        elif not current.ours or current.tgtype != sql.TRIGGER_TYPES[trigger]:
            state = "altered"
        elif not current.fires:
            state = "disabled"
        if state != "intact":
            status.drift.append(f"guard trigger {trigger} is {state}")
            if trigger == sql.DELETE_TRIGGER:
                status.trigger = state
    return status


def _owner_status(
    facts: _Facts, status: TableStatus, table: Table, entry: Mapping[str, Any], guard: str
) -> None:
    owner = facts.owners.get(table.oid, ("",))[0]  # "" when dropped since it was listed
    if entry.get("owner_moved") and owner and owner != guard:
        status.drift.append(f"owner changed from the guard role {guard} to {owner}")


def _role_status(
    facts: _Facts,
    status: TableStatus,
    table: Table,
    entry: Mapping[str, Any],
    roles: Sequence[str],
) -> None:
    """Whether each application role can DROP/ALTER the table, and its grants."""
    recorded: dict[str, list[str]] = entry.get("app_privileges", {})
    for role in roles:
        owns, superuser = facts.can_own.get((table.oid, role), (False, False))
        problems = []
        if superuser:
            problems.append("is a superuser")
        elif owns:
            problems.append("owns the table (or is a member of its owner)")
        schema = facts.schemas.get((table.oid, role))
        if schema and not superuser:
            problems.append(f"owns schema {schema} (DROP SCHEMA ... CASCADE)")
        if problems:
            status.privileges[role] = "can DROP/ALTER: " + "; ".join(problems)
            status.drift.append(f"{role} can DROP/ALTER this table: {'; '.join(problems)}")
        else:
            status.privileges[role] = "guarded (not the owner)"
        now = facts.privileges.get((table.oid, role), [])
        if role in recorded and sorted(now) != sorted(recorded[role]):
            status.drift.append(
                f"grants of {role} changed since install: now {', '.join(now) or 'none'}, "
                f"recorded {', '.join(recorded[role]) or 'none'}"
            )


def _event_trigger_status(
    conn: Connection, result: ProtectStatus, state: Mapping[str, Any]
) -> None:
    if catalog.function_source(conn, sql.ROW_FUNCTION) != sql.row_function_body():
        result.drift.append(
            f"guard function {sql.guard_object(sql.ROW_FUNCTION)} is missing or altered"
        )
    if not state.get("event_trigger"):
        result.limitations.append(PARTIAL)
        return
    found = catalog.event_triggers(conn)
    for name, (event, _tags) in sql.EVENT_TRIGGERS.items():
        current = found.get(name)
        if current is None:
            result.drift.append(f"event trigger {name} ({event}) is missing")
        elif not current[2] or current[0] != event:
            result.drift.append(f"event trigger {name} was altered")
        elif current[1] == "D":
            result.drift.append(f"event trigger {name} is disabled")
    oids = [int(entry["oid"]) for entry in state["tables"].values()]
    expected = sql.ddl_function_body(str(state["guard_role"]), oids)
    source = catalog.function_source(conn, sql.DDL_FUNCTION)
    if source is None:
        result.drift.append(f"guard function {sql.guard_object(sql.DDL_FUNCTION)} is missing")
    elif source != expected:
        result.drift.append(f"guard function {sql.guard_object(sql.DDL_FUNCTION)} was altered")

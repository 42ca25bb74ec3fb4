"""The plan of ``install`` on PostgreSQL (``remove`` is :mod:`.removal`).

Planning reads the database and changes nothing; every step carries its undo
so that :meth:`~migration_guard.protect.base.Protector.apply` rolls a failed
plan back. The install record (tables by oid, their former owners, the grants
given to those owners, every table's ACL before install) is written by the
plan itself, so ``remove`` restores exactly what ``install`` changed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from migration_guard.errors import UsageError
from migration_guard.protect.base import STATE_KEY
from migration_guard.protect.model import (
    META_TABLE,
    Account,
    ProtectPlan,
    TableOptions,
    dump_json,
    options_for,
)
from migration_guard.protect.planning import reconcile_recorded_tables
from migration_guard.protect.postgresql import catalog, sql
from migration_guard.protect.postgresql.catalog import Session, Table

DIALECT = "postgresql"
STATE_VERSION = 1
NO_EVENT_TRIGGER = (
    "event triggers need a superuser, and the admin URL's role {user} is not one: the "
    "event trigger that refuses DROP/ALTER of protected tables by their owner (or any "
    "role acting as it) is not installed. Run install again as a superuser for full "
    "protection"
)


def wrap_bypass(plan: ProtectPlan, steps: ProtectPlan) -> None:
    """``steps`` between SET and RESET of the bypass, so that the guard's own DDL
    passes its event trigger; nothing when there is nothing to do."""
    if steps.is_empty:
        return
    plan.notes.append(
        f"the statements run in one transaction (lock_timeout {sql.LOCK_TIMEOUT}): all of "
        "them take effect or none"
    )
    plan.add(
        "let this session's own DDL pass the guard's event trigger",
        f"SET {sql.BYPASS_SETTING} = on",
        f"RESET {sql.BYPASS_SETTING}",
    )
    plan.steps.extend(steps.steps)
    plan.add("end the bypass", f"RESET {sql.BYPASS_SETTING}", f"SET {sql.BYPASS_SETTING} = on")


def _check_admin(conn: Connection, me: Session, tables: Sequence[Table]) -> None:
    """Name what a non-superuser admin lacks for triggers, before any change."""
    if me.superuser:
        return
    if not catalog.schema_exists(conn) and not me.can_create_schema:
        raise UsageError(
            f"the admin URL's role {me.user} cannot create the guard's schema "
            f"{sql.GUARD_SCHEMA}: it needs CREATE on database {me.database} "
            f"(GRANT CREATE ON DATABASE ... TO ...) or a superuser"
        )
    owns = catalog.can_own_all(conn, [t.oid for t in tables], [me.user])
    lacking = [t.name for t in tables if not owns.get((t.oid, me.user), (False, False))[0]]
    if lacking:
        raise UsageError(
            f"the admin URL's role {me.user} does not own {', '.join(lacking)}: creating "
            "the guard triggers needs the owner (or a member of the owning role) or a "
            "superuser; use the migration/admin role"
        )


def plan_install(
    conn: Connection,
    tables: Sequence[str],
    app_users: Sequence[Account],
    options: Mapping[str, TableOptions],
) -> ProtectPlan:
    """Triggers, owner transfer and event triggers for ``tables``; see the protector."""
    me = catalog.session(conn)
    plan = ProtectPlan("install", DIALECT, me.database)
    live = {table.name: table for table in catalog.list_tables(conn)}
    selected = _with_partitions(conn, plan, [live[name] for name in tables])
    live.update({table.name: table for table in selected})
    roles = [catalog.role_name(account) for account in app_users]
    for name in roles:
        catalog.require_role(conn, name)
    _check_admin(conn, me, selected)

    old_state = catalog.read_install_state(conn)
    state: dict[str, Any] = (
        copy.deepcopy(old_state)
        if old_state
        else {
            "version": STATE_VERSION,
            "guard_role": catalog.default_guard_role(me.database),
            "created_role": False,
            "event_trigger": False,
            "tables": {},
            "accounts": {},
        }
    )
    # Recorded tables are found again by oid (a rename keeps it).
    by_oid = catalog.tables_by_oid(conn, [int(e["oid"]) for e in state["tables"].values()])
    renamed = {
        old: by_oid[int(entry["oid"])].name
        for old, entry in state["tables"].items()
        if int(entry["oid"]) in by_oid
    }
    state["tables"] = {renamed.get(k, k): v for k, v in state["tables"].items()}
    reconcile_recorded_tables(
        plan,
        state["tables"],
        set(live) | {table.name for table in by_oid.values()},
        [table.name for table in selected],
    )
    for name in roles:
        state["accounts"].setdefault(name, {"role": name})
    guard = str(state["guard_role"])

    steps = ProtectPlan("install", DIALECT, me.database)
    guard_exists = catalog.role(conn, guard)[0]
    if not catalog.schema_exists(conn):
        steps.add(
            f"create the guard's schema {sql.GUARD_SCHEMA} (no privilege for anyone else)",
            f"CREATE SCHEMA IF NOT EXISTS {sql.ident(sql.GUARD_SCHEMA)}",
            f"DROP SCHEMA IF EXISTS {sql.ident(sql.GUARD_SCHEMA)}",
        )
    if old_state is None and not catalog.meta_exists(conn):
        steps.add(
            f"create the guard's metadata table {sql.guard_object(META_TABLE)}",
            sql.create_meta_table(),
            f"DROP TABLE IF EXISTS {sql.meta_table()}",
        )
    _plan_function(steps, conn, sql.ROW_FUNCTION, "trigger", sql.row_function_body())
    if not guard_exists and me.superuser:
        steps.add(
            f"create the guard role {guard} (NOLOGIN) that will own the protected tables",
            sql.create_role(guard),
            f"DROP ROLE IF EXISTS {sql.ident(guard)}",
        )
        state["created_role"] = True
        guard_exists = True
    if me.superuser:
        _plan_schema_usage(steps, conn, selected, guard, state)
    for table in selected:
        transfer = guard_exists and _can_transfer(conn, me, table, guard)
        entry = _plan_table(
            steps, conn, table, options_for(options, _root(table, live)), roles, guard, transfer
        )
        previous = state["tables"].get(table.name, {})
        if previous:
            entry["owner"] = previous["owner"]
            entry["acl_before"] = previous["acl_before"]
            entry["granted"] = previous["granted"] + [
                item for item in entry["granted"] if item not in previous["granted"]
            ]
        state["tables"][table.name] = entry
        if not entry["owner_moved"] and guard_exists:
            plan.notes.append(
                f"the owner of {table.name} ({entry['owner']}) is kept: moving it to {guard} "
                f"needs a superuser, or membership in both roles and CREATE on schema "
                f"{table.schema} for {guard}"
            )
    if not guard_exists:
        plan.notes.append(
            f"the guard role {guard} does not exist and {me.user} is not a superuser: the "
            "protected tables keep their owners, who can still DROP and ALTER them"
        )
    if me.superuser:
        _plan_event_triggers(steps, conn, state)
        state["event_trigger"] = True
    elif not catalog.event_triggers(conn):
        state["event_trigger"] = False
        plan.notes.append(NO_EVENT_TRIGGER.format(user=me.user))

    if old_state is None or dump_json(old_state) != dump_json(state):
        meta = sql.meta_table()
        undo = (
            f"DELETE FROM {meta} WHERE name = {sql.string(STATE_KEY)}"
            if old_state is None
            else sql.upsert_state(STATE_KEY, dump_json(old_state))
        )
        steps.add(
            "record the protected tables, their owners and grants (used by remove)",
            sql.upsert_state(STATE_KEY, dump_json(state)),
            undo,
        )
    wrap_bypass(plan, steps)
    return plan


def _with_partitions(conn: Connection, plan: ProtectPlan, tables: list[Table]) -> list[Table]:
    """``tables`` and every partition below them: a partition can be truncated or
    dropped on its own, so it is protected with its partitioned table."""
    result = list(tables)
    below = catalog.partitions_of(conn, tables)
    for table in tables:
        for partition in below.get(table.oid, []):
            if partition.name not in {t.name for t in result}:
                result.append(partition)
                plan.notes.append(
                    f"{partition.name} is a partition of {partition.parent}: protected with it"
                )
    return result


def _root(table: Table, live: Mapping[str, Table]) -> str:
    """The top partitioned table above ``table`` (its options apply)."""
    while table.parent is not None and table.parent in live:
        table = live[table.parent]
    return table.name


def _plan_function(
    steps: ProtectPlan, conn: Connection, name: str, returns: str, body: str
) -> None:
    current = catalog.function_source(conn, name)
    if current == body:
        return
    undo = (
        f"DROP FUNCTION IF EXISTS {sql.function(name)}"
        if current is None
        else sql.create_function(name, returns, current)
    )
    steps.add(
        f"{'create' if current is None else 'replace the altered'} guard function "
        + sql.guard_object(name),
        sql.create_function(name, returns, body),
        undo,
    )


def _plan_table(
    steps: ProtectPlan,
    conn: Connection,
    table: Table,
    options: TableOptions,
    roles: Sequence[str],
    guard: str,
    transfer: bool,
) -> dict[str, Any]:
    """Triggers and owner transfer of one table; its new record."""
    found = catalog.triggers(conn, table.oid)
    wanted = [sql.TRUNCATE_TRIGGER]
    if options.blocks_deletes and table.parent is None:
        # A partition gets a clone of its partitioned table's row trigger.
        wanted.insert(0, sql.DELETE_TRIGGER)
    elif sql.DELETE_TRIGGER in found and not found[sql.DELETE_TRIGGER].inherited:
        steps.add(
            f'drop the delete guard of {table.name} (deletes = "allow" in the configuration)',
            sql.drop_trigger(sql.DELETE_TRIGGER, table.schema, table.table),
            sql.create_trigger(sql.DELETE_TRIGGER, table.schema, table.table),
        )
    for name in wanted:
        _plan_trigger(steps, table, name, found.get(name))

    owner, owner_is_super = catalog.owner(conn, table.oid)
    entry: dict[str, Any] = {
        "schema": table.schema,
        "table": table.table,
        "oid": table.oid,
        "deletes": options.deletes,
        "parent": table.parent,
        "owner": owner,
        "owner_moved": owner == guard,
        "acl_before": catalog.acl(conn, table.oid),
        "granted": [],
        "app_privileges": {},
    }
    kept: dict[str, list[str]] = {}
    if owner != guard and transfer:
        entry["owner_moved"] = True
        steps.add(
            f"move the ownership of {table.name} from {owner} to the guard role {guard} "
            "(the owner can always DROP and ALTER)",
            sql.owner_to("TABLE", table.schema, table.table, guard),
            sql.owner_to("TABLE", table.schema, table.table, owner),
        )
        if not owner_is_super:
            kept = _plan_kept_privileges(steps, conn, table, owner, entry)
    for name in roles:
        held = kept.get(name) if name == owner and entry["owner_moved"] else None
        entry["app_privileges"][name] = (
            held if held is not None else catalog.privileges(conn, table.oid, name)
        )
    return entry


def _plan_schema_usage(
    steps: ProtectPlan, conn: Connection, tables: Sequence[Table], guard: str, state: dict[str, Any]
) -> None:
    """USAGE on the protected tables' schemas for the guard role: foreign-key checks
    query a table as its owner, and fail without it."""
    granted: list[str] = state.setdefault("schema_usage", [])
    exists = catalog.role(conn, guard)[0]
    for schema in sorted({table.schema for table in tables}):
        if (
            schema in granted
            or catalog.has_schema_usage(conn, "public", schema)  # PUBLIC's covers the guard
            or (exists and catalog.has_schema_usage(conn, guard, schema))
        ):
            continue
        granted.append(schema)
        steps.add(
            f"let the guard role {guard} use schema {schema} (foreign-key checks run as the owner)",
            f"GRANT USAGE ON SCHEMA {sql.ident(schema)} TO {sql.ident(guard)}",
            f"REVOKE USAGE ON SCHEMA {sql.ident(schema)} FROM {sql.ident(guard)}",
        )


def _can_transfer(conn: Connection, me: Session, table: Table, guard: str) -> bool:
    if me.superuser:
        return True
    return (
        catalog.can_own(conn, table.oid, me.user)[0]
        and catalog.role(conn, guard)[0]
        and bool(
            conn.exec_driver_sql(
                "SELECT pg_has_role(current_user, "
                f"{sql.string(guard)}, 'MEMBER') AND has_schema_privilege("
                f"{sql.string(guard)}, {sql.string(table.schema)}, 'CREATE') "
                f"AND has_schema_privilege({sql.string(guard)}, {sql.string(table.schema)}, "
                "'USAGE')"
            ).scalar()
        )
    )


def _plan_trigger(
    steps: ProtectPlan, table: Table, name: str, found: catalog.Trigger | None
) -> None:
    create = sql.create_trigger(name, table.schema, table.table)
    drop = sql.drop_trigger(name, table.schema, table.table)
    what = "row deletes" if name == sql.DELETE_TRIGGER else "TRUNCATE"
    if found is None:
        steps.add(f"refuse {what} on {table.name} unless {sql.BYPASS_SETTING} = on", create, drop)
    elif not found.ours or found.tgtype != sql.TRIGGER_TYPES[name]:
        steps.add(f"drop the altered guard trigger {name} of {table.name}", drop, create)
        steps.add(f"re-create the guard trigger {name} of {table.name}", create, drop)
    elif not found.fires:
        steps.add(
            f"enable the disabled guard trigger {name} of {table.name}",
            sql.enable_trigger(name, table.schema, table.table),
            sql.enable_trigger(name, table.schema, table.table, enable=False),
        )


def _plan_kept_privileges(
    steps: ProtectPlan, conn: Connection, table: Table, owner: str, entry: dict[str, Any]
) -> dict[str, list[str]]:
    """Give the former owner back what it needs on the table and its sequences."""
    objects: list[tuple[str, Table, tuple[str, ...]]] = [
        ("TABLE", table, sql.KEPT_TABLE_PRIVILEGES)
    ]
    for sequence in catalog.owned_sequences(conn, table):
        objects.append(("SEQUENCE", sequence, sql.KEPT_SEQUENCE_PRIVILEGES))
    kept: list[str] = []
    for kind, target, allowed in objects:
        privileges = sorted(set(catalog.privileges(conn, target.oid, owner)) & set(allowed))
        if not privileges:
            continue
        if kind == "TABLE":
            kept = privileges
        schema, name = target.schema, target.table
        steps.add(
            f"let the former owner {owner} keep {sql.privileges(privileges)} on "
            f"{kind.lower()} {target.name}",
            sql.grant(privileges, kind, schema, name, owner),
            sql.revoke(privileges, kind, schema, name, owner),
        )
        entry["granted"].append([kind, schema, name, owner, privileges])
    return {owner: kept}


def _plan_event_triggers(steps: ProtectPlan, conn: Connection, state: dict[str, Any]) -> None:
    """The DROP/ALTER guard over every recorded table (superuser only)."""
    oids = [int(entry["oid"]) for entry in state["tables"].values()]
    body = sql.ddl_function_body(str(state["guard_role"]), oids)
    _plan_function(steps, conn, sql.DDL_FUNCTION, "event_trigger", body)
    found = catalog.event_triggers(conn)
    for name, (event, _tags) in sql.EVENT_TRIGGERS.items():
        drop = f"DROP EVENT TRIGGER IF EXISTS {sql.ident(name)}"
        current = found.get(name)
        if current is None or not current[2] or current[0] != event:
            if current is not None:
                steps.add(f"drop the altered event trigger {name}", drop)
            steps.add(
                f"refuse {'DROP' if event == 'sql_drop' else 'ALTER TABLE'} of protected "
                f"tables ({event} event trigger {name})",
                sql.create_event_trigger(name),
                drop,
            )
        elif current[1] == "D":
            steps.add(
                f"enable the disabled event trigger {name}",
                f"ALTER EVENT TRIGGER {sql.ident(name)} ENABLE",
                f"ALTER EVENT TRIGGER {sql.ident(name)} DISABLE",
            )

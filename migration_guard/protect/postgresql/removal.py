"""The plan of ``remove`` on PostgreSQL: undo exactly what ``install`` recorded.

Event triggers go first (so that the rest is not refused), then per table the
privileges given to its former owner and the ownership itself, then the guard
triggers, functions, metadata table, schema and, if install created it, the
guard role. The protector compares every table's grants with the record after
the plan has run.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from migration_guard.protect.base import STATE_KEY
from migration_guard.protect.model import META_TABLE, Account, ProtectPlan, dump_json
from migration_guard.protect.planning import accounts_to_remove
from migration_guard.protect.postgresql import catalog, sql
from migration_guard.protect.postgresql.planner import DIALECT, wrap_bypass


def plan_remove(conn: Connection, app_users: Sequence[Account]) -> ProtectPlan:
    """Without ``app_users``: restore owners and grants, drop every guard object.
    With them: stop reporting those roles (their grants were never changed)."""
    me = catalog.session(conn)
    plan = ProtectPlan("remove", DIALECT, me.database)
    state = catalog.read_install_state(conn)
    if state is None:
        plan.notes.append("no protection is recorded in this database")
        return plan
    recorded = state["accounts"]
    selected = accounts_to_remove(
        [catalog.role_name(account) for account in app_users],
        recorded,
        key=lambda name: name,
        from_record=lambda item: str(item["role"]),
    )
    steps = ProtectPlan("remove", DIALECT, me.database)
    if app_users:
        remaining = copy.deepcopy(state)
        for name in selected:
            remaining["accounts"].pop(name, None)
        steps.add(
            "drop the removed roles from the guard's record",
            sql.upsert_state(STATE_KEY, dump_json(remaining)),
            sql.upsert_state(STATE_KEY, dump_json(state)),
        )
        wrap_bypass(plan, steps)
        return plan
    _plan_remove_all(steps, conn, state, plan)
    wrap_bypass(plan, steps)
    return plan


def _plan_remove_all(
    steps: ProtectPlan, conn: Connection, state: dict[str, Any], plan: ProtectPlan
) -> None:
    guard = str(state["guard_role"])
    for name in catalog.event_triggers(conn):
        steps.add(
            f"drop the event trigger {name}",
            f"DROP EVENT TRIGGER {sql.ident(name)}",
            sql.create_event_trigger(name),
        )
    live = catalog.tables_by_oid(conn, [int(e["oid"]) for e in state["tables"].values()])
    current = catalog.current_schema(conn)
    expected: dict[str, list[list[Any]]] = {}
    for recorded_name, entry in sorted(state["tables"].items()):
        table = live.get(int(entry["oid"]))
        if table is None:
            plan.notes.append(f"{recorded_name} no longer exists; nothing to restore")
            continue
        owner, _ = catalog.owner(conn, table.oid)
        if entry.get("owner_moved") and owner == guard:
            for kind, schema, name, role, privileges in entry.get("granted", []):
                if catalog.role(conn, role)[0]:
                    steps.add(
                        f"take back {sql.privileges(privileges)} on {kind.lower()} "
                        f"{sql.shown(schema, name, current)} given to {role} at install",
                        sql.revoke(privileges, kind, schema, name, role),
                        sql.grant(privileges, kind, schema, name, role),
                    )
            steps.add(
                f"give {table.name} back to its former owner {entry['owner']}",
                sql.owner_to("TABLE", table.schema, table.table, str(entry["owner"])),
                sql.owner_to("TABLE", table.schema, table.table, guard),
            )
        elif entry.get("owner_moved"):
            plan.notes.append(
                f"{table.name} is owned by {owner}, not by the guard role {guard}: its owner "
                f"is left alone (recorded former owner: {entry['owner']})"
            )
        for trigger, found in catalog.triggers(conn, table.oid).items():
            if found.inherited:
                continue  # dropped with the partitioned table's trigger
            steps.add(
                f"drop the guard trigger {trigger} of {table.name}",
                sql.drop_trigger(trigger, table.schema, table.table),
                sql.create_trigger(trigger, table.schema, table.table),
            )
        expected[table.name] = list(entry.get("acl_before", []))
        plan.context.setdefault("oids", {})[table.name] = table.oid
    for schema in state.get("schema_usage", []):
        if catalog.schema_oid(conn, schema) is not None and catalog.role(conn, guard)[0]:
            steps.add(
                f"take back USAGE on schema {schema} from the guard role {guard}",
                f"REVOKE USAGE ON SCHEMA {sql.ident(schema)} FROM {sql.ident(guard)}",
                f"GRANT USAGE ON SCHEMA {sql.ident(schema)} TO {sql.ident(guard)}",
            )
    for name, returns in ((sql.DDL_FUNCTION, "event_trigger"), (sql.ROW_FUNCTION, "trigger")):
        source = catalog.function_source(conn, name)
        if source is not None:
            steps.add(
                f"drop the guard function {sql.guard_object(name)}",
                f"DROP FUNCTION {sql.function(name)}",
                sql.create_function(name, returns, source),
            )
    steps.add(
        f"drop the guard's metadata table {sql.guard_object(META_TABLE)}",
        f"DROP TABLE {sql.meta_table()}",
        sql.create_meta_table(),
        sql.upsert_state(STATE_KEY, dump_json(state)),
    )
    steps.add(
        f"drop the guard's schema {sql.GUARD_SCHEMA}",
        f"DROP SCHEMA {sql.ident(sql.GUARD_SCHEMA)}",
        f"CREATE SCHEMA {sql.ident(sql.GUARD_SCHEMA)}",
    )
    if state.get("created_role"):
        steps.add(
            f"drop the guard role {guard} unless it still owns something elsewhere",
            sql.drop_role_if_unused(guard),
            sql.create_role(guard),
        )
    plan.context["expected_acl"] = expected

"""The plans of ``install`` and ``remove``: which triggers and grants change, in order.

Planning reads the database and changes nothing; every step carries its undo
so that :meth:`~migration_guard.protect.base.Protector.apply` can roll a failed
plan back. The install record (tables, original ``SHOW GRANTS`` output and
every privilege moved) is written by the plan itself, so ``remove`` restores
exactly what ``install`` changed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from migration_guard.protect.mysql import server, sql
from migration_guard.protect.mysql.grants import (
    GUARDED_PRIVILEGES,
    check_admin,
    effective_grants,
    read_grants,
    schema_pattern_is_literal,
    show_grants,
)
from migration_guard.protect.mysql.server import TriggerInfo
from migration_guard.protect.mysql.sql import Quoting, privilege_list
from migration_guard.protect.planning import accounts_to_remove, reconcile_recorded_tables

STATE_VERSION = 1


@dataclass
class _GrantSteps:
    """Grants that go in before the database-level ones come out, and the revokes.

    Kept apart so that the application never loses access to an unprotected
    table half-way through a plan.
    """

    grants: list[tuple[str, str, str]] = field(default_factory=list)
    revokes: list[tuple[str, str, str]] = field(default_factory=list)

    def grant(self, description: str, privileges: str, on: str, target: str) -> None:
        self.grants.append(
            (description, sql.grant(privileges, on, target), sql.revoke(privileges, on, target))
        )

    def revoke(self, description: str, privileges: str, on: str, target: str) -> None:
        self.revokes.append(
            (description, sql.revoke(privileges, on, target), sql.grant(privileges, on, target))
        )


def _add_all(plan: ProtectPlan, steps: list[tuple[str, str, str]]) -> None:
    for description, statement, undo in steps:
        plan.add(description, statement, undo)


def plan_install(
    conn: Connection,
    tables: Sequence[str],
    app_users: Sequence[Account],
    options: Mapping[str, TableOptions],
) -> ProtectPlan:
    """Triggers for ``tables`` and the privilege guard for ``app_users``; see the protector."""
    database = server.database_name(conn)
    dialect = server.check_version(conn)
    quoting = server.session_quoting(conn)
    plan = ProtectPlan("install", dialect, database)
    needs_triggers = any(options_for(options, table).blocks_deletes for table in tables)
    check_admin(conn, database, triggers=needs_triggers, accounts=bool(app_users))
    snapshots = {account: show_grants(conn, account, quoting) for account in app_users}

    old_state = server.read_install_state(conn, quoting)
    state: dict[str, Any] = (
        copy.deepcopy(old_state)
        if old_state
        else {"version": STATE_VERSION, "tables": {}, "accounts": {}}
    )
    live_tables = server.list_tables(conn)
    reconcile_recorded_tables(plan, state["tables"], live_tables, tables)

    trigger_steps = ProtectPlan("install", dialect, database)
    triggers = server.read_triggers(conn)
    for table in tables:
        _plan_trigger(trigger_steps, table, options_for(options, table), triggers, quoting, state)
    plan.notes.extend(trigger_steps.notes)

    protected = set(tables) | set(state["tables"])
    grant_steps = _GrantSteps()
    for account in app_users:
        _plan_account(
            conn,
            account,
            snapshots[account],
            database,
            live_tables,
            protected,
            quoting,
            state,
            grant_steps,
        )

    meta = quoting.ident(META_TABLE)
    if old_state is None and not server.meta_exists(conn):
        plan.add(
            f"create the guard's metadata table {META_TABLE}",
            sql.create_meta_table(quoting),
            f"DROP TABLE IF EXISTS {meta}",
        )
    if old_state is None or dump_json(old_state) != dump_json(state):
        key = quoting.string(STATE_KEY)
        undo = (
            f"DELETE FROM {meta} WHERE name = {key}"
            if old_state is None
            else f"UPDATE {meta} SET value = {quoting.string(dump_json(old_state))} "
            f"WHERE name = {key}"
        )
        plan.add(
            "record the protected tables and the original grants (used by remove)",
            f"INSERT INTO {meta} (name, value) VALUES ({key}, "
            f"{quoting.string(dump_json(state))}) "
            "ON DUPLICATE KEY UPDATE value = VALUES(value)",
            undo,
        )
    _add_all(plan, grant_steps.grants)
    plan.steps.extend(trigger_steps.steps)
    _add_all(plan, grant_steps.revokes)
    return plan


def _plan_trigger(
    plan: ProtectPlan,
    table: str,
    options: TableOptions,
    triggers: list[TriggerInfo],
    quoting: Quoting,
    state: dict[str, Any],
) -> None:
    name = sql.trigger_name(table)
    body = sql.trigger_body(table, quoting)
    ours = next((t for t in triggers if t.name == name), None)
    if not options.blocks_deletes:
        state["tables"][table] = {"deletes": "allow", "trigger": None, "body": None}
        if ours is not None:
            plan.add(
                f'drop the delete guard of {table} (deletes = "allow" in the configuration)',
                f"DROP TRIGGER {quoting.ident(name)}",
                ours.recreate(quoting),
            )
        return
    state["tables"][table] = {"deletes": "block", "trigger": name, "body": body}
    if (
        ours is not None
        and ours.table == table
        and (ours.timing, ours.event) == ("BEFORE", "DELETE")
        and sql.normalise_sql(ours.statement) == sql.normalise_sql(body)
    ):
        return
    if ours is not None:
        plan.add(
            f"replace the altered delete guard {name}",
            f"DROP TRIGGER {quoting.ident(name)}",
            ours.recreate(quoting),
        )
    user_triggers = [
        t
        for t in triggers
        if t.table == table and t.timing == "BEFORE" and t.event == "DELETE" and t.name != name
    ]
    precedes = None
    if user_triggers:
        precedes = min(user_triggers, key=lambda t: t.order).name
        plan.notes.append(
            f"{table} already has BEFORE DELETE trigger(s) "
            f"{', '.join(t.name for t in user_triggers)}; they are kept and the guard runs "
            "before them, so a refused delete runs none of them"
        )
    plan.add(
        f"refuse row deletes on {table} unless {sql.BYPASS_VARIABLE} = 1",
        sql.create_guard_trigger(table, quoting, precedes=precedes),
        f"DROP TRIGGER IF EXISTS {quoting.ident(name)}",
    )


def _plan_account(
    conn: Connection,
    account: Account,
    snapshot: list[str],
    database: str,
    live_tables: list[str],
    protected: set[str],
    quoting: Quoting,
    state: dict[str, Any],
    steps: _GrantSteps,
) -> None:
    """Move the account's database-level DROP/ALTER down to its unprotected tables.

    MySQL cannot revoke a table-level privilege from a database-level grant
    (error 1141), so the database-level grant goes and every unprotected table
    gets it back at table level.
    """
    effective = effective_grants(conn, account, database)
    own, roles = effective[0], effective[1:]
    held = own.global_privileges & set(GUARDED_PRIVILEGES)
    if held:
        raise UsageError(
            f"{account} holds {privilege_list(held)} on *.* (global level). A global "
            "privilege covers every table of every database and cannot be narrowed by "
            "table-level grants, so protect will not rewrite it. Grant the account its "
            f"privileges per database instead (REVOKE {privilege_list(held)} ON *.* FROM "
            f"{quoting.account(account)}; GRANT ... ON `{database}`.* TO ...) and run "
            "install again"
        )
    for role in roles:
        problems = [d for table in sorted(protected) for d in role.guarded_on(table)]
        if problems:
            raise UsageError(
                f"{account} gets {problems[0]} through the role {role.account}; protect "
                "rewrites only an account's own grants. Revoke DROP and ALTER from the "
                "role (or the role from the account) and run install again"
            )
    record: dict[str, Any] = state["accounts"].setdefault(
        account.key,
        {
            "user": account.user,
            "host": account.host,
            "show_grants": snapshot,
            "moved": {},
            "table_privileges": {},
        },
    )
    target = quoting.account(account)
    moved: dict[str, list[str]] = record["moved"]
    for pattern, privileges in sorted(own.schema_privileges.items()):
        guarded = privileges & set(GUARDED_PRIVILEGES)
        if not guarded:
            continue
        if not schema_pattern_is_literal(pattern, database):
            raise UsageError(
                f"{account} holds {privilege_list(guarded)} through the wildcard grant on "
                f"`{pattern}`.*, which covers other databases too; grant it on "
                f"`{database}`.* instead and run install again"
            )
        moved[pattern] = sorted(set(moved.get(pattern, [])) | guarded)
        listed = privilege_list(guarded)
        steps.revoke(
            f"revoke database-level {listed} from {account} (moved to table level)",
            listed,
            sql.on_schema(quoting, pattern),
            target,
        )
    moved_all = {privilege for privileges in moved.values() for privilege in privileges}
    originals: dict[str, list[str]] = record["table_privileges"]
    for table in live_tables:
        current = own.table_privileges.get(table, set()) & set(GUARDED_PRIVILEGES)
        originals.setdefault(table, sorted(current))
        on = sql.on_table(quoting, database, table)
        if table in protected:
            if current:
                listed = privilege_list(current)
                steps.revoke(
                    f"revoke {listed} on protected table {table} from {account}",
                    listed,
                    on,
                    target,
                )
        else:
            missing = moved_all - current
            if missing:
                listed = privilege_list(missing)
                steps.grant(
                    f"grant {listed} on unprotected table {table} to {account}",
                    listed,
                    on,
                    target,
                )


def plan_remove(conn: Connection, app_users: Sequence[Account]) -> ProtectPlan:
    """Restore the recorded grants of ``app_users`` (all when empty) and, for all, drop
    the triggers and the metadata table."""
    database = server.database_name(conn)
    dialect = server.check_version(conn)
    quoting = server.session_quoting(conn)
    plan = ProtectPlan("remove", dialect, database)
    state = server.read_install_state(conn, quoting)
    if state is None:
        plan.notes.append("no protection is recorded in this database")
        return plan
    recorded = state["accounts"]
    selected = accounts_to_remove(
        app_users,
        recorded,
        key=lambda account: account.key,
        from_record=lambda item: Account(item["user"], item["host"]),
    )
    everything = not app_users
    live_tables = set(server.list_tables(conn))
    steps = _GrantSteps()
    expected: dict[str, list[str]] = {}
    for account in selected:
        try:
            show_grants(conn, account, quoting)
        except UsageError:
            plan.notes.append(f"{account} no longer exists; its record is dropped")
            continue
        record = recorded[account.key]
        expected[account.key] = list(record["show_grants"])
        _plan_restore(conn, account, record, database, live_tables, quoting, steps)
    _add_all(plan, steps.grants)
    _add_all(plan, steps.revokes)
    meta = quoting.ident(META_TABLE)
    if everything:
        triggers = {t.name: t for t in server.read_triggers(conn)}
        for table, entry in sorted(state["tables"].items()):
            name = entry.get("trigger")
            if name and name in triggers:
                plan.add(
                    f"drop the delete guard of {table}",
                    f"DROP TRIGGER {quoting.ident(name)}",
                    triggers[name].recreate(quoting),
                )
        plan.add(
            f"drop the guard's metadata table {META_TABLE}",
            f"DROP TABLE {meta}",
            sql.create_meta_table(quoting),
            f"INSERT INTO {meta} (name, value) VALUES ({quoting.string(STATE_KEY)}, "
            f"{quoting.string(dump_json(state))})",
        )
    else:
        remaining = copy.deepcopy(state)
        for account in selected:
            remaining["accounts"].pop(account.key, None)
        plan.add(
            "drop the removed accounts from the guard's record",
            f"UPDATE {meta} SET value = {quoting.string(dump_json(remaining))} "
            f"WHERE name = {quoting.string(STATE_KEY)}",
            f"UPDATE {meta} SET value = {quoting.string(dump_json(state))} "
            f"WHERE name = {quoting.string(STATE_KEY)}",
        )
    plan.context["expected_grants"] = expected
    return plan


def _plan_restore(
    conn: Connection,
    account: Account,
    record: Mapping[str, Any],
    database: str,
    live_tables: set[str],
    quoting: Quoting,
    steps: _GrantSteps,
) -> None:
    """Give back the database-level privileges moved at install; table level as recorded."""
    own = read_grants(conn, account, database)
    target = quoting.account(account)
    for pattern, privileges in sorted(record["moved"].items()):
        missing = set(privileges) - own.schema_privileges.get(pattern, set())
        if missing:
            listed = privilege_list(missing)
            steps.grant(
                f"restore database-level {listed} of {account}",
                listed,
                sql.on_schema(quoting, pattern),
                target,
            )
    originals: dict[str, list[str]] = record["table_privileges"]
    for table in sorted(set(originals) | set(own.table_privileges)):
        current = own.table_privileges.get(table, set()) & set(GUARDED_PRIVILEGES)
        wanted = set(originals.get(table, []))
        on = sql.on_table(quoting, database, table)
        extra, missing = current - wanted, wanted - current
        if extra:
            listed = privilege_list(extra)
            steps.revoke(
                f"revoke table-level {listed} on {table} from {account}", listed, on, target
            )
        if missing and table in live_tables:
            listed = privilege_list(missing)
            steps.grant(f"restore table-level {listed} on {table} of {account}", listed, on, target)

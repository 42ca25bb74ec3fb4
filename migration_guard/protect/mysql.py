"""MySQL and MariaDB protection: BEFORE DELETE triggers plus a DDL privilege guard.

Triggers cannot stop ``TRUNCATE``, ``DROP`` or ``RENAME`` (none fires a
trigger), so application accounts lose ``DROP`` and ``ALTER`` on protected
tables. MySQL cannot revoke a table-level privilege from a database-level
grant (error 1141), so a database-level ``DROP``/``ALTER`` is moved down to
table level on every unprotected table. Every other privilege stays where it
was, which keeps new tables readable and writable without a re-install. The
original ``SHOW GRANTS`` output and every privilege moved are recorded in
:data:`~migration_guard.protect.META_TABLE` so that ``remove`` restores them.

All SQL for these servers lives in this module.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from migration_guard.dialects.base import connect_engine
from migration_guard.errors import ProtectError, UsageError
from migration_guard.protect import (
    BYPASS_VARIABLE,
    META_TABLE,
    TRIGGER_PREFIX,
    TRIGGER_SUFFIX,
    Account,
    ProbeResult,
    ProtectPlan,
    ProtectStatus,
    TableOptions,
    TableStatus,
    dump_json,
    options_for,
)
from migration_guard.protect.base import (
    STATE_KEY,
    Protector,
    describe_error,
    execute_literal,
    read_state,
)

#: Privileges an application account must not hold on a protected table:
#: TRUNCATE and DROP TABLE need DROP; ALTER TABLE needs ALTER; RENAME needs both.
GUARDED_PRIVILEGES = ("ALTER", "DROP")
MAX_IDENTIFIER = 64
MAX_MESSAGE_TEXT = 128
MESSAGE_TEMPLATE = (
    "migration-guard: deleting from {table} is blocked; "
    "SET @migration_guard_allow_delete = 1 for a deliberate delete"
)
#: Multiple triggers per event and FOLLOWS/PRECEDES arrived in these versions.
MIN_MYSQL = (5, 7, 2)
MIN_MARIADB = (10, 2, 3)
TRANSACTIONAL_ENGINES = frozenset({"innodb", "rocksdb", "tokudb", "ndbcluster"})
STATE_VERSION = 1

ER_DBACCESS_DENIED = 1044
ER_TABLEACCESS_DENIED = 1142
ER_NONEXISTING_GRANT = 1141
ER_SPECIFIC_ACCESS_DENIED = 1227
ER_LOCK_WAIT_TIMEOUT = 1205
ER_CANT_DROP_FIELD = 1091
ER_SIGNAL_EXCEPTION = 1644
ER_BINLOG_CREATE_ROUTINE_NEED_SUPER = 1419
ER_NO_SUCH_TABLE = 1146

BINLOG_FIX = (
    "binary logging is on and log_bin_trust_function_creators is 0, so creating a trigger "
    "needs the SUPER privilege. Fix: run install with an account that has SUPER, or set "
    "log_bin_trust_function_creators = 1 (SET GLOBAL log_bin_trust_function_creators = 1, "
    "and in the server configuration so that it survives a restart)"
)


# ---------------------------------------------------------------------------- quoting


@dataclass(frozen=True)
class Quoting:
    """Identifier and string quoting for one session's ``sql_mode``."""

    no_backslash_escapes: bool = False

    def ident(self, name: str) -> str:
        """Backtick-quote ``name``; embedded backticks are doubled."""
        return "`" + name.replace("`", "``") + "`"

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
    return " ".join(text.split())


def binlog_problem(*, log_bin: bool, trust_function_creators: bool, has_super: bool) -> str | None:
    """Why creating a trigger will fail with binary logging on, or None."""
    if log_bin and not trust_function_creators and not has_super:
        return BINLOG_FIX
    return None


def parse_version(text: str) -> tuple[tuple[int, ...], bool]:
    """``(version tuple, is_mariadb)`` from ``SELECT VERSION()``."""
    is_mariadb = "mariadb" in text.lower()
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    numbers = tuple(int(part) for part in match.groups()) if match else (0, 0, 0)
    return numbers, is_mariadb


def _like_regex(pattern: str) -> re.Pattern[str]:
    out = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def schema_pattern_matches(pattern: str, database: str) -> bool:
    """Whether a database-level grant on ``pattern`` covers ``database`` (LIKE rules)."""
    return pattern == database or bool(_like_regex(pattern).match(database))


def schema_pattern_is_literal(pattern: str, database: str) -> bool:
    """Whether ``pattern`` names exactly ``database`` (wildcards read literally)."""
    return re.sub(r"\\(.)", r"\1", pattern) == database


def _privilege_list(privileges: Iterable[str]) -> str:
    return ", ".join(sorted(privileges))


# ---------------------------------------------------------------------------- grants


@dataclass
class Grants:
    """The privileges of one account (or role) that matter for one database."""

    account: Account
    global_privileges: set[str] = field(default_factory=set)
    schema_privileges: dict[str, set[str]] = field(default_factory=dict)
    table_privileges: dict[str, set[str]] = field(default_factory=dict)
    grantable: bool = False
    roles: list[Account] = field(default_factory=list)

    def has(self, privilege: str) -> bool:
        return privilege in self.global_privileges or any(
            privilege in privileges for privileges in self.schema_privileges.values()
        )

    def guarded_on(self, table: str) -> list[str]:
        """Descriptions of every DROP/ALTER this account itself holds on ``table``."""
        found = []
        held = self.global_privileges & set(GUARDED_PRIVILEGES)
        if held:
            found.append(f"{_privilege_list(held)} on *.* (global)")
        for pattern, privileges in sorted(self.schema_privileges.items()):
            held = privileges & set(GUARDED_PRIVILEGES)
            if held:
                found.append(f"{_privilege_list(held)} on `{pattern}`.* (database level)")
        held = self.table_privileges.get(table, set()) & set(GUARDED_PRIVILEGES)
        if held:
            found.append(f"{_privilege_list(held)} on the table")
        return found


@dataclass(frozen=True)
class TriggerInfo:
    name: str
    table: str
    timing: str
    event: str
    statement: str
    order: int


class MySQLProtector(Protector):
    """Triggers and privilege guards for MySQL 5.7.2+ and MariaDB 10.2.3+."""

    dialect: ClassVar[str] = "mysql"

    # ------------------------------------------------------------------ reading

    def database_name(self, conn: Connection) -> str:
        name = conn.exec_driver_sql("SELECT DATABASE()").scalar()
        if not name:
            raise UsageError(
                "the URL names no database; add it, e.g. mysql+pymysql://admin@host/appdb"
            )
        return str(name)

    def _quoting(self, conn: Connection) -> Quoting:
        mode = str(conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar() or "")
        return Quoting(no_backslash_escapes="NO_BACKSLASH_ESCAPES" in mode.upper())

    def _version(self, conn: Connection) -> tuple[tuple[int, ...], bool, str]:
        text = str(conn.exec_driver_sql("SELECT VERSION()").scalar())
        numbers, is_mariadb = parse_version(text)
        return numbers, is_mariadb, text

    def _check_version(self, conn: Connection) -> bool:
        numbers, is_mariadb, text = self._version(conn)
        minimum = MIN_MARIADB if is_mariadb else MIN_MYSQL
        if numbers < minimum:
            product = "MariaDB" if is_mariadb else "MySQL"
            raise UsageError(
                f"unsupported server version {text}: protect needs {product} "
                f"{'.'.join(map(str, minimum))} or later (several triggers per event, "
                "FOLLOWS/PRECEDES)"
            )
        return is_mariadb

    def list_tables(self, conn: Connection) -> list[str]:
        rows = conn.execute(
            sa.text(
                "SELECT TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' "
                "ORDER BY TABLE_NAME"
            )
        )
        return [str(row[0]) for row in rows if str(row[0]) != META_TABLE]

    def _triggers(self, conn: Connection) -> list[TriggerInfo]:
        rows = conn.execute(
            sa.text(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, "
                "ACTION_STATEMENT, ACTION_ORDER FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER"
            )
        )
        return [
            TriggerInfo(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5] or 0))
            for r in rows
        ]

    def _meta_exists(self, conn: Connection) -> bool:
        count = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name"
            ),
            {"name": META_TABLE},
        ).scalar()
        return bool(count)

    def _read_state(self, conn: Connection, quoting: Quoting) -> dict[str, Any] | None:
        if not self._meta_exists(conn):
            return None
        return read_state(conn, quoting.ident(META_TABLE))

    def _show_grants(self, conn: Connection, account: Account, quoting: Quoting) -> list[str]:
        """``SHOW GRANTS FOR`` the account; a missing account is a usage error."""
        try:
            rows = conn.exec_driver_sql(
                f"SHOW GRANTS FOR {quoting.account(account)}".replace("%", "%%")
            ).fetchall()
        except sa.exc.DBAPIError as exc:
            code = _error_code(exc)
            if code == ER_NONEXISTING_GRANT:
                raise UsageError(
                    f"account {account} does not exist; check --app-user (USER@HOST, host "
                    "defaults to %) against SELECT user, host FROM mysql.user"
                ) from None
            if code in (ER_DBACCESS_DENIED, ER_TABLEACCESS_DENIED, ER_SPECIFIC_ACCESS_DENIED):
                raise UsageError(
                    f"the admin URL's account cannot read the grants of {account}: it needs "
                    "SELECT on the mysql database"
                ) from None
            raise
        return [str(row[0]) for row in rows]

    def _read_grants(self, conn: Connection, account: Account, database: str) -> Grants:
        grantee = f"'{account.user}'@'{account.host}'"
        grants = Grants(account)
        for privilege, grantable in conn.execute(
            sa.text(
                "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES "
                "WHERE GRANTEE = :grantee"
            ),
            {"grantee": grantee},
        ):
            grants.global_privileges.add(str(privilege))
            grants.grantable |= str(grantable) == "YES"
        for schema, privilege, grantable in conn.execute(
            sa.text(
                "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE "
                "FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = :grantee"
            ),
            {"grantee": grantee},
        ):
            if schema_pattern_matches(str(schema), database):
                grants.schema_privileges.setdefault(str(schema), set()).add(str(privilege))
                grants.grantable |= str(grantable) == "YES"
        for table, privilege in conn.execute(
            sa.text(
                "SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES "
                "WHERE GRANTEE = :grantee AND TABLE_SCHEMA = :database"
            ),
            {"grantee": grantee, "database": database},
        ):
            grants.table_privileges.setdefault(str(table), set()).add(str(privilege))
        grants.roles = self._roles_of(conn, account)
        return grants

    def _roles_of(self, conn: Connection, account: Account) -> list[Account]:
        _, is_mariadb, _ = self._version(conn)
        if is_mariadb:
            sql = "SELECT Role, '' FROM mysql.roles_mapping WHERE User = :user AND Host = :host"
        else:
            sql = (
                "SELECT FROM_USER, FROM_HOST FROM mysql.role_edges "
                "WHERE TO_USER = :user AND TO_HOST = :host"
            )
        try:
            rows = conn.execute(sa.text(sql), {"user": account.user, "host": account.host})
            return [Account(str(user), str(host)) for user, host in rows]
        except sa.exc.DBAPIError:
            return []  # no access to the role tables: roles are reported as unknown

    def _effective(self, conn: Connection, account: Account, database: str) -> list[Grants]:
        """The account's own grants followed by those of every role it holds."""
        seen: set[Account] = set()
        result: list[Grants] = []
        pending = [account]
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.add(current)
            grants = self._read_grants(conn, current, database)
            result.append(grants)
            pending.extend(grants.roles)
        return result

    def _current_account(self, conn: Connection) -> Account:
        text = str(conn.exec_driver_sql("SELECT CURRENT_USER()").scalar())
        user, _, host = text.rpartition("@")
        return Account(user, host)

    # ------------------------------------------------------------------ checks

    def _check_admin(
        self, conn: Connection, database: str, *, triggers: bool, accounts: bool
    ) -> None:
        """Name the privileges the admin URL's account lacks, before any change."""
        admin = self._current_account(conn)
        own = self._read_grants(conn, admin, database)
        enabled_roles = conn.exec_driver_sql(
            "SELECT COUNT(ROLE_NAME) FROM information_schema.ENABLED_ROLES"
        ).scalar()
        if enabled_roles:
            return  # privileges may come from roles; the apply step reports real failures
        needed = ["SELECT", "CREATE", "INSERT", "UPDATE", "DELETE"]
        if triggers:
            needed.append("TRIGGER")
        if accounts:
            needed.extend(GUARDED_PRIVILEGES)
        missing = [privilege for privilege in needed if not own.has(privilege)]
        if accounts and not own.grantable:
            missing.append("GRANT OPTION")
        if missing:
            raise UsageError(
                f"the admin URL's account {admin} lacks {', '.join(missing)} on `{database}`; "
                "protect install needs TRIGGER (for the delete triggers), CREATE/INSERT/UPDATE/"
                "DELETE/SELECT (for the guard's metadata table) and, with --app-user, DROP and "
                "ALTER WITH GRANT OPTION plus SELECT on the mysql database (to rewrite grants). "
                "Use the migration/admin account"
            )
        if triggers:
            variables: dict[str, Any] = dict(
                conn.exec_driver_sql(
                    "SELECT 'log_bin', @@GLOBAL.log_bin UNION ALL "
                    "SELECT 'trust', @@GLOBAL.log_bin_trust_function_creators"
                ).fetchall()
            )
            problem = binlog_problem(
                log_bin=str(variables.get("log_bin")) in ("1", "ON"),
                trust_function_creators=str(variables.get("trust")) in ("1", "ON"),
                has_super="SUPER" in own.global_privileges,
            )
            if problem:
                raise UsageError(problem)

    def explain_error(self, exc: BaseException) -> str:
        code = _error_code(exc)
        text = describe_error(exc)
        if code == ER_BINLOG_CREATE_ROUTINE_NEED_SUPER:
            return f"{text}: {BINLOG_FIX}"
        if code in (ER_DBACCESS_DENIED, ER_TABLEACCESS_DENIED, ER_SPECIFIC_ACCESS_DENIED):
            return f"{text} (the admin URL's account lacks this privilege)"
        return text

    # ------------------------------------------------------------------ install

    def plan_install(
        self,
        conn: Connection,
        tables: Sequence[str],
        app_users: Sequence[Account],
        options: Mapping[str, TableOptions],
    ) -> ProtectPlan:
        database = self.database_name(conn)
        is_mariadb = self._check_version(conn)
        quoting = self._quoting(conn)
        plan = ProtectPlan("install", "mariadb" if is_mariadb else "mysql", database)
        needs_triggers = any(options_for(options, table).blocks_deletes for table in tables)
        self._check_admin(conn, database, triggers=needs_triggers, accounts=bool(app_users))
        snapshots = {account: self._show_grants(conn, account, quoting) for account in app_users}

        old_state = self._read_state(conn, quoting)
        state: dict[str, Any] = (
            copy.deepcopy(old_state)
            if old_state
            else {
                "version": STATE_VERSION,
                "tables": {},
                "accounts": {},
            }
        )
        live_tables = self.list_tables(conn)
        for gone in sorted(set(state["tables"]) - set(live_tables)):
            plan.notes.append(f"{gone} no longer exists; it is dropped from the guard's record")
            del state["tables"][gone]
        for leftover in sorted(set(state["tables"]) - set(tables)):
            plan.notes.append(f"{leftover} was protected by an earlier install and stays protected")

        trigger_steps = ProtectPlan("install", plan.dialect, database)
        triggers = self._triggers(conn)
        for table in tables:
            self._plan_trigger(
                trigger_steps, table, options_for(options, table), triggers, quoting, state
            )
        plan.notes.extend(trigger_steps.notes)

        protected = set(tables) | set(state["tables"])
        grant_steps = ProtectPlan("install", plan.dialect, database)
        revoke_steps = ProtectPlan("install", plan.dialect, database)
        for account in app_users:
            self._plan_account(
                conn,
                account,
                snapshots[account],
                database,
                live_tables,
                protected,
                quoting,
                state,
                grant_steps,
                revoke_steps,
            )

        meta = quoting.ident(META_TABLE)
        if old_state is None and not self._meta_exists(conn):
            plan.add(
                f"create the guard's metadata table {META_TABLE}",
                f"CREATE TABLE IF NOT EXISTS {meta} (name VARCHAR(64) NOT NULL PRIMARY KEY, "
                "value LONGTEXT NOT NULL, updated_at TIMESTAMP NOT NULL "
                "DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB",
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
        # Table-level grants go in before the database-level ones come out, so the
        # application never loses access to an unprotected table half-way.
        plan.steps.extend(grant_steps.steps)
        plan.steps.extend(trigger_steps.steps)
        plan.steps.extend(revoke_steps.steps)
        return plan

    def _plan_trigger(
        self,
        plan: ProtectPlan,
        table: str,
        options: TableOptions,
        triggers: list[TriggerInfo],
        quoting: Quoting,
        state: dict[str, Any],
    ) -> None:
        name = trigger_name(table)
        body = trigger_body(table, quoting)
        ours = next((t for t in triggers if t.name == name), None)
        if not options.blocks_deletes:
            state["tables"][table] = {"deletes": "allow", "trigger": None, "body": None}
            if ours is not None:
                plan.add(
                    f'drop the delete guard of {table} (deletes = "allow" in the configuration)',
                    f"DROP TRIGGER {quoting.ident(name)}",
                    *self._recreate_statements(ours, quoting),
                )
            return
        state["tables"][table] = {"deletes": "block", "trigger": name, "body": body}
        if (
            ours is not None
            and ours.table == table
            and (ours.timing, ours.event) == ("BEFORE", "DELETE")
            and normalise_sql(ours.statement) == normalise_sql(body)
        ):
            return
        if ours is not None:
            plan.add(
                f"replace the altered delete guard {name}",
                f"DROP TRIGGER {quoting.ident(name)}",
                *self._recreate_statements(ours, quoting),
            )
        user_triggers = [
            t
            for t in triggers
            if t.table == table and t.timing == "BEFORE" and t.event == "DELETE" and t.name != name
        ]
        order = ""
        if user_triggers:
            first = min(user_triggers, key=lambda t: t.order)
            order = f" PRECEDES {quoting.ident(first.name)}"
            plan.notes.append(
                f"{table} already has BEFORE DELETE trigger(s) "
                f"{', '.join(t.name for t in user_triggers)}; they are kept and the guard runs "
                "before them, so a refused delete runs none of them"
            )
        plan.add(
            f"refuse row deletes on {table} unless {BYPASS_VARIABLE} = 1",
            f"CREATE TRIGGER {quoting.ident(name)} BEFORE DELETE ON {quoting.ident(table)} "
            f"FOR EACH ROW{order} {body}",
            f"DROP TRIGGER IF EXISTS {quoting.ident(name)}",
        )

    def _recreate_statements(self, trigger: TriggerInfo, quoting: Quoting) -> tuple[str, ...]:
        """Undo for dropping ``trigger``: a plain re-creation of it."""
        return (
            f"CREATE TRIGGER {quoting.ident(trigger.name)} {trigger.timing} {trigger.event} "
            f"ON {quoting.ident(trigger.table)} FOR EACH ROW {trigger.statement}",
        )

    def _plan_account(
        self,
        conn: Connection,
        account: Account,
        snapshot: list[str],
        database: str,
        live_tables: list[str],
        protected: set[str],
        quoting: Quoting,
        state: dict[str, Any],
        grant_steps: ProtectPlan,
        revoke_steps: ProtectPlan,
    ) -> None:
        effective = self._effective(conn, account, database)
        own, roles = effective[0], effective[1:]
        held = own.global_privileges & set(GUARDED_PRIVILEGES)
        if held:
            raise UsageError(
                f"{account} holds {_privilege_list(held)} on *.* (global level). A global "
                "privilege covers every table of every database and cannot be narrowed by "
                "table-level grants, so protect will not rewrite it. Grant the account its "
                f"privileges per database instead (REVOKE {_privilege_list(held)} ON *.* FROM "
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
                    f"{account} holds {_privilege_list(guarded)} through the wildcard grant on "
                    f"`{pattern}`.*, which covers other databases too; grant it on "
                    f"`{database}`.* instead and run install again"
                )
            moved[pattern] = sorted(set(moved.get(pattern, [])) | guarded)
            on = f"{quoting.ident(pattern)}.*"
            listed = _privilege_list(guarded)
            revoke_steps.add(
                f"revoke database-level {listed} from {account} (moved to table level)",
                f"REVOKE {listed} ON {on} FROM {target}",
                f"GRANT {listed} ON {on} TO {target}",
            )
        moved_all = {privilege for privileges in moved.values() for privilege in privileges}
        originals: dict[str, list[str]] = record["table_privileges"]
        for table in live_tables:
            current = own.table_privileges.get(table, set()) & set(GUARDED_PRIVILEGES)
            originals.setdefault(table, sorted(current))
            on = f"{quoting.ident(database)}.{quoting.ident(table)}"
            if table in protected:
                if current:
                    listed = _privilege_list(current)
                    revoke_steps.add(
                        f"revoke {listed} on protected table {table} from {account}",
                        f"REVOKE {listed} ON {on} FROM {target}",
                        f"GRANT {listed} ON {on} TO {target}",
                    )
            else:
                missing = moved_all - current
                if missing:
                    listed = _privilege_list(missing)
                    grant_steps.add(
                        f"grant {listed} on unprotected table {table} to {account}",
                        f"GRANT {listed} ON {on} TO {target}",
                        f"REVOKE {listed} ON {on} FROM {target}",
                    )

    # ------------------------------------------------------------------ remove

    def plan_remove(self, conn: Connection, app_users: Sequence[Account]) -> ProtectPlan:
        database = self.database_name(conn)
        is_mariadb = self._check_version(conn)
        quoting = self._quoting(conn)
        plan = ProtectPlan("remove", "mariadb" if is_mariadb else "mysql", database)
        state = self._read_state(conn, quoting)
        if state is None:
            plan.notes.append("no protection is recorded in this database")
            return plan
        recorded = state["accounts"]
        selected = list(app_users) or [
            Account(item["user"], item["host"]) for item in recorded.values()
        ]
        for account in selected:
            if account.key not in recorded:
                raise UsageError(
                    f"{account} is not guarded by protect install here; guarded accounts: "
                    f"{', '.join(sorted(recorded)) or '(none)'}"
                )
        everything = not app_users
        live_tables = set(self.list_tables(conn))
        grant_steps = ProtectPlan("remove", plan.dialect, database)
        revoke_steps = ProtectPlan("remove", plan.dialect, database)
        expected: dict[str, list[str]] = {}
        for account in selected:
            record = recorded[account.key]
            try:
                self._show_grants(conn, account, quoting)
            except UsageError:
                plan.notes.append(f"{account} no longer exists; its record is dropped")
                continue
            expected[account.key] = list(record["show_grants"])
            own = self._read_grants(conn, account, database)
            target = quoting.account(account)
            for pattern, privileges in sorted(record["moved"].items()):
                missing = set(privileges) - own.schema_privileges.get(pattern, set())
                if missing:
                    listed = _privilege_list(missing)
                    on = f"{quoting.ident(pattern)}.*"
                    grant_steps.add(
                        f"restore database-level {listed} of {account}",
                        f"GRANT {listed} ON {on} TO {target}",
                        f"REVOKE {listed} ON {on} FROM {target}",
                    )
            originals: dict[str, list[str]] = record["table_privileges"]
            for table in sorted(set(originals) | set(own.table_privileges)):
                current = own.table_privileges.get(table, set()) & set(GUARDED_PRIVILEGES)
                wanted = set(originals.get(table, []))
                on = f"{quoting.ident(database)}.{quoting.ident(table)}"
                extra, missing = current - wanted, wanted - current
                if extra:
                    listed = _privilege_list(extra)
                    revoke_steps.add(
                        f"revoke table-level {listed} on {table} from {account}",
                        f"REVOKE {listed} ON {on} FROM {target}",
                        f"GRANT {listed} ON {on} TO {target}",
                    )
                if missing and table in live_tables:
                    listed = _privilege_list(missing)
                    grant_steps.add(
                        f"restore table-level {listed} on {table} of {account}",
                        f"GRANT {listed} ON {on} TO {target}",
                        f"REVOKE {listed} ON {on} FROM {target}",
                    )
        plan.steps.extend(grant_steps.steps)
        plan.steps.extend(revoke_steps.steps)
        meta = quoting.ident(META_TABLE)
        if everything:
            triggers = {t.name: t for t in self._triggers(conn)}
            for table, entry in sorted(state["tables"].items()):
                name = entry.get("trigger")
                if name and name in triggers:
                    plan.add(
                        f"drop the delete guard of {table}",
                        f"DROP TRIGGER {quoting.ident(name)}",
                        *self._recreate_statements(triggers[name], quoting),
                    )
            plan.add(
                f"drop the guard's metadata table {META_TABLE}",
                f"DROP TABLE {meta}",
                f"CREATE TABLE IF NOT EXISTS {meta} (name VARCHAR(64) NOT NULL PRIMARY KEY, "
                "value LONGTEXT NOT NULL, updated_at TIMESTAMP NOT NULL "
                "DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB",
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

    def apply(self, conn: Connection, plan: ProtectPlan) -> list[str]:
        notes = super().apply(conn, plan)
        expected: dict[str, list[str]] = plan.context.get("expected_grants", {})
        quoting = self._quoting(conn)
        for key, before in sorted(expected.items()):
            user, _, host = key.rpartition("@")
            account = Account(user, host)
            after = self._show_grants(conn, account, quoting)
            if sorted(after) == sorted(before):
                notes.append(f"grants of {account} restored exactly as recorded at install")
            else:
                notes.append(
                    f"grants of {account} differ from those recorded at install "
                    f"(changed by hand since?): recorded {before}, now {after}"
                )
        return notes

    # ------------------------------------------------------------------ status

    def status(
        self, conn: Connection, app_users: Sequence[Account], tables: Sequence[str] = ()
    ) -> ProtectStatus:
        database = self.database_name(conn)
        _, is_mariadb, _ = self._version(conn)
        quoting = self._quoting(conn)
        state = self._read_state(conn, quoting)
        result = ProtectStatus("mariadb" if is_mariadb else "mysql", database, state is not None)
        recorded: dict[str, Any] = state["accounts"] if state else {}
        accounts = sorted(
            {Account(item["user"], item["host"]) for item in recorded.values()} | set(app_users)
        )
        result.accounts = [str(account) for account in accounts]
        if state is None:
            result.drift.append("protection is not installed in this database")
        recorded_tables: dict[str, Any] = state["tables"] if state else {}
        live = set(self.list_tables(conn))
        triggers = {t.name: t for t in self._triggers(conn)}
        holdings: dict[Account, list[Grants] | None] = {}
        for account in accounts:
            try:
                self._show_grants(conn, account, quoting)
            except UsageError:
                holdings[account] = None
                result.drift.append(f"account {account} recorded at install no longer exists")
                continue
            holdings[account] = self._effective(conn, account, database)
            if account.key not in recorded:
                result.drift.append(
                    f"account {account} is not guarded: run protect install --app-user "
                    f"{account.key}"
                )
        for table in sorted(set(recorded_tables) | set(tables)):
            entry = recorded_tables.get(table)
            if table not in live:
                result.tables.append(
                    TableStatus(
                        table,
                        "table-missing",
                        drift=["the table no longer exists; run protect install to update"],
                    )
                )
                continue
            if entry is None:
                status = TableStatus(
                    table,
                    "missing",
                    trigger_name(table),
                    drift=["protected by the configuration but not installed: run install"],
                )
            elif entry.get("deletes") == "allow":
                status = TableStatus(table, "not-required")
            else:
                name = str(entry["trigger"])
                status = TableStatus(table, "intact", name)
                found = triggers.get(name)
                if found is None:
                    status.trigger = "missing"
                    status.drift.append(f"delete trigger {name} is missing")
                elif (
                    found.table != table
                    or (found.timing, found.event) != ("BEFORE", "DELETE")
                    or normalise_sql(found.statement) != normalise_sql(str(entry["body"]))
                ):
                    status.trigger = "altered"
                    status.drift.append(f"delete trigger {name} was altered")
            for account in accounts:
                grants = holdings.get(account)
                if grants is None:
                    continue
                found_ddl = [d for g in grants[:1] for d in g.guarded_on(table)] + [
                    f"{d} via role {g.account}" for g in grants[1:] for d in g.guarded_on(table)
                ]
                if found_ddl:
                    status.privileges[str(account)] = "can " + "; ".join(found_ddl)
                    status.drift.append(
                        f"{account} can DROP/ALTER/TRUNCATE this table ({'; '.join(found_ddl)})"
                    )
                else:
                    status.privileges[str(account)] = "guarded (no DROP, no ALTER)"
            result.tables.append(status)
        return result

    # ------------------------------------------------------------------ verify

    def verify(self, admin_url: URL, app_url: URL | None) -> list[ProbeResult]:
        if app_url is None:
            raise UsageError(
                "protect verify connects as the application account: give --app-user USER[@HOST] "
                "with its password in MIGRATION_GUARD_APP_PASSWORD, or its whole URL in "
                "MIGRATION_GUARD_APP_URL"
            )
        admin_engine = connect_engine(admin_url)
        app_engine = connect_engine(app_url)
        try:
            with admin_engine.connect() as admin, app_engine.connect() as app:
                quoting = self._quoting(admin)
                state = self._read_state(admin, quoting)
                if state is None:
                    raise UsageError(
                        "protection is not installed in this database; run protect install first"
                    )
                database = self.database_name(admin)
                account = self._current_account(app)
                try:
                    predicted = self._effective(admin, account, database)
                except sa.exc.DBAPIError:
                    predicted = []
                engines = {
                    str(name): str(engine or "")
                    for name, engine in admin.execute(
                        sa.text(
                            "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES "
                            "WHERE TABLE_SCHEMA = DATABASE()"
                        )
                    )
                }
                admin.rollback()
                admin_raw = admin.connection.dbapi_connection
                app_raw = app.connection.dbapi_connection
                assert admin_raw is not None and app_raw is not None
                results: list[ProbeResult] = []
                for table, entry in sorted(state["tables"].items()):
                    if table not in engines:
                        continue
                    probe = _Probe(admin_raw, app_raw, table, quoting, str(account))
                    if entry.get("deletes") == "allow":
                        results.append(probe.result("DELETE", "skipped", 'deletes = "allow"'))
                    else:
                        results.append(probe.delete(engines[table]))
                    held = [d for g in predicted for d in g.guarded_on(table)]
                    results.extend(probe.ddl(held))
                return results
        finally:
            admin_engine.dispose()
            app_engine.dispose()


class _Probe:
    """Harmless attempts, as the application account, on one protected table."""

    def __init__(self, admin: Any, app: Any, table: str, quoting: Quoting, who: str) -> None:
        self.admin = admin
        self.app = app
        self.table = table
        self.name = quoting.ident(table)
        self.quoting = quoting
        self.who = who

    def result(self, operation: str, outcome: str, detail: str) -> ProbeResult:
        return ProbeResult(self.table, operation, outcome, detail, self.who)

    def _admin_has_rows(self) -> bool:
        cursor = self.admin.cursor()
        try:
            cursor.execute(f"SELECT 1 FROM {self.name} LIMIT 1")
            return cursor.fetchone() is not None
        finally:
            cursor.close()

    def delete(self, engine: str) -> ProbeResult:
        """DELETE one row inside a transaction that is always rolled back."""
        if engine.lower() not in TRANSACTIONAL_ENGINES:
            return self.result("DELETE", "skipped", f"engine {engine} cannot roll a probe back")
        has_rows = self._admin_has_rows()
        self.admin.rollback()
        if not has_rows:
            return self.result("DELETE", "skipped", "the table is empty, so no trigger can fire")
        cursor = self.app.cursor()
        try:
            cursor.execute(f"SET {BYPASS_VARIABLE} = NULL")
            self.app.begin()
            try:
                cursor.execute(f"DELETE FROM {self.name} LIMIT 1")
                return self.result("DELETE", "allowed", "rolled back")
            except Exception as exc:  # classified below
                return _classify(self.table, "DELETE", exc, self.who)
            finally:
                self.app.rollback()
        finally:
            cursor.close()

    def ddl(self, held: list[str]) -> list[ProbeResult]:
        """TRUNCATE, DROP, ALTER and RENAME while the admin holds a metadata lock.

        The admin connection reads the table in an open transaction, which holds a
        shared metadata lock: a statement that passes the privilege check waits for
        the lock and times out after one second instead of running.
        """
        probe_column = self.quoting.ident("mg_probe_no_such_column")
        suffix = hashlib.sha256(self.table.encode("utf-8")).hexdigest()[:12]
        probe_table = self.quoting.ident(f"mg_probe_{suffix}")
        operations = [
            ("TRUNCATE", f"TRUNCATE TABLE {self.name}"),
            ("DROP TABLE", f"DROP TABLE {self.name}"),
            ("ALTER TABLE DROP COLUMN", f"ALTER TABLE {self.name} DROP COLUMN {probe_column}"),
            ("RENAME TABLE", f"RENAME TABLE {self.name} TO {probe_table}"),
        ]
        results = []
        self._admin_has_rows()  # takes the shared metadata lock
        try:
            for operation, sql in operations:
                if held and operation != "ALTER TABLE DROP COLUMN":
                    # Never attempt what the grants already say will run.
                    results.append(self.result(operation, "allowed", f"holds {held[0]}"))
                    continue
                cursor = self.app.cursor()
                try:
                    cursor.execute("SET SESSION lock_wait_timeout = 1")
                    try:
                        cursor.execute(sql)
                    except Exception as exc:  # classified below
                        results.append(_classify(self.table, operation, exc, self.who))
                        continue
                    results.append(self.result(operation, "allowed", "the statement ran"))
                finally:
                    cursor.close()
        finally:
            self.admin.rollback()
        return results


def _error_code(exc: BaseException) -> int | None:
    original = getattr(exc, "orig", None) or exc
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int):
        return int(args[0])
    return None


def _classify(table: str, operation: str, exc: BaseException, who: str) -> ProbeResult:
    code = _error_code(exc)
    text = describe_error(exc)
    if code == ER_SIGNAL_EXCEPTION:
        return ProbeResult(table, operation, "refused", "the delete trigger refused it", who)
    if code in (ER_TABLEACCESS_DENIED, ER_DBACCESS_DENIED):
        if operation == "RENAME TABLE" and f"`{table}`" not in text:
            return ProbeResult(table, operation, "allowed", f"passed on {table}: {text}", who)
        return ProbeResult(table, operation, "refused", "privilege denied", who)
    if code in (ER_LOCK_WAIT_TIMEOUT, ER_CANT_DROP_FIELD):
        return ProbeResult(
            table, operation, "allowed", "privilege check passed; held back by the probe", who
        )
    return ProbeResult(table, operation, "skipped", f"inconclusive: {text}", who)


__all__ = [
    "GUARDED_PRIVILEGES",
    "MySQLProtector",
    "ProtectError",
    "Quoting",
    "binlog_problem",
    "delete_message",
    "execute_literal",
    "schema_pattern_is_literal",
    "schema_pattern_matches",
    "trigger_body",
    "trigger_name",
]

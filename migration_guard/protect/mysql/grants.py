"""Reading an account's privileges: its own grants, its roles', and the admin's.

Only the privileges that matter for one database are read, level by level
(global, database, table), from information_schema; ``SHOW GRANTS`` output is
kept verbatim as the install record that ``remove`` restores and compares.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration_guard.dialects.base import run_sql
from migration_guard.errors import MigrationGuardError, ProtectError, UsageError, translate
from migration_guard.protect.model import Account
from migration_guard.protect.mysql import server, sql
from migration_guard.protect.mysql.sql import Quoting, privilege_list

#: Privileges an application account must not hold on a protected table:
#: TRUNCATE and DROP TABLE need DROP; ALTER TABLE needs ALTER; RENAME needs both.
GUARDED_PRIVILEGES = ("ALTER", "DROP")


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
            found.append(f"{privilege_list(held)} on *.* (global)")
        for pattern, privileges in sorted(self.schema_privileges.items()):
            held = privileges & set(GUARDED_PRIVILEGES)
            if held:
                found.append(f"{privilege_list(held)} on `{pattern}`.* (database level)")
        held = self.table_privileges.get(table, set()) & set(GUARDED_PRIVILEGES)
        if held:
            found.append(f"{privilege_list(held)} on the table")
        return found


#: error code of ``SHOW GRANTS FOR`` -> the usage error it means, given the account.
_SHOW_GRANTS_ERRORS: dict[int, Callable[[Account], str]] = {
    server.ER_NONEXISTING_GRANT: lambda account: (
        f"account {account} does not exist; check --app-user (USER@HOST, host "
        "defaults to %) against SELECT user, host FROM mysql.user"
    ),
    **dict.fromkeys(
        server.ACCESS_DENIED,
        lambda account: (
            f"the admin URL's account cannot read the grants of {account}: it needs "
            "SELECT on the mysql database"
        ),
    ),
}


def _show_grants_error(account: Account) -> Callable[[BaseException, str], MigrationGuardError]:
    def build(exc: BaseException, message: str) -> MigrationGuardError:
        explain = _SHOW_GRANTS_ERRORS.get(server.error_code(exc) or 0)
        return UsageError(explain(account)) if explain else ProtectError(message)

    return build


def show_grants(conn: Connection, account: Account, quoting: Quoting) -> list[str]:
    """``SHOW GRANTS FOR`` the account; a missing account is a usage error."""
    with translate(
        {sa.exc.DBAPIError: _show_grants_error(account)}, doing=f"SHOW GRANTS FOR {account}"
    ):
        rows = run_sql(conn, f"SHOW GRANTS FOR {quoting.account(account)}").fetchall()
    return [str(row[0]) for row in rows]


def read_grants(conn: Connection, account: Account, database: str) -> Grants:
    """The account's own privileges on ``database`` (roles listed, not followed)."""
    grantee = f"'{account.user}'@'{account.host}'"
    grants = Grants(account)
    for privilege, grantable in conn.execute(
        sa.text(sql.GLOBAL_PRIVILEGES_SQL), {"grantee": grantee}
    ):
        grants.global_privileges.add(str(privilege))
        grants.grantable |= str(grantable) == "YES"
    for schema, privilege, grantable in conn.execute(
        sa.text(sql.SCHEMA_PRIVILEGES_SQL), {"grantee": grantee}
    ):
        if schema_pattern_matches(str(schema), database):
            grants.schema_privileges.setdefault(str(schema), set()).add(str(privilege))
            grants.grantable |= str(grantable) == "YES"
    for table, privilege in conn.execute(
        sa.text(sql.TABLE_PRIVILEGES_SQL), {"grantee": grantee, "database": database}
    ):
        grants.table_privileges.setdefault(str(table), set()).add(str(privilege))
    grants.roles = roles_of(conn, account)
    return grants


def roles_of(conn: Connection, account: Account) -> list[Account]:
    """The roles granted to ``account``; empty when the role tables cannot be read."""
    query = sql.MARIADB_ROLES_SQL if server.is_mariadb(conn) else sql.MYSQL_ROLES_SQL
    try:
        rows = conn.execute(sa.text(query), {"user": account.user, "host": account.host})
        return [Account(str(user), str(host)) for user, host in rows]
    except sa.exc.DBAPIError:
        return []  # no access to the role tables: roles are reported as unknown


def effective_grants(conn: Connection, account: Account, database: str) -> list[Grants]:
    """The account's own grants followed by those of every role it holds."""
    seen: set[Account] = set()
    result: list[Grants] = []
    pending = [account]
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        grants = read_grants(conn, current, database)
        result.append(grants)
        pending.extend(grants.roles)
    return result


def check_admin(conn: Connection, database: str, *, triggers: bool, accounts: bool) -> None:
    """Name the privileges the admin URL's account lacks, before any change."""
    admin = server.current_account(conn)
    own = read_grants(conn, admin, database)
    if conn.exec_driver_sql(sql.ENABLED_ROLES_SQL).scalar():
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
        log_bin, trust_function_creators = server.binlog_settings(conn)
        problem = server.binlog_problem(
            log_bin=log_bin,
            trust_function_creators=trust_function_creators,
            has_super="SUPER" in own.global_privileges,
        )
        if problem:
            raise UsageError(problem)

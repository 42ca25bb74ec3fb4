"""MySQL and MariaDB protection: BEFORE DELETE triggers plus a DDL privilege guard.

Triggers cannot stop ``TRUNCATE``, ``DROP`` or ``RENAME`` (none fires a
trigger), so application accounts lose ``DROP`` and ``ALTER`` on protected
tables. MySQL cannot revoke a table-level privilege from a database-level
grant (error 1141), so a database-level ``DROP``/``ALTER`` is moved down to
table level on every unprotected table. Every other privilege stays where it
was, which keeps new tables readable and writable without a re-install. The
original ``SHOW GRANTS`` output and every privilege moved are recorded in
:data:`~migration_guard.protect.META_TABLE` so that ``remove`` restores them.

The work is split by concern: :mod:`.sql` (the statement text), :mod:`.server`
(what is read from the session), :mod:`.grants` (privileges), :mod:`.planner`
(install and remove), :mod:`.status` and :mod:`.probes` (verify). Quoting, the
table list and the server version come from :mod:`migration_guard.dialects.mysql`.
Each is imported by the method that needs it: a guarded upgrade only asks whether
protection is installed (:meth:`Protector.installed`), which needs none of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from migration_guard.protect.base import Protector
from migration_guard.protect.model import Account, ProtectPlan, TableOptions
from migration_guard.protect.report import ProbeResult, ProtectStatus

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

__all__ = ["MySQLProtector"]


class MySQLProtector(Protector):
    """Triggers and privilege guards for MySQL 5.7.2+ and MariaDB 10.2.3+."""

    dialect: ClassVar[str] = "mysql"

    def database_name(self, conn: Connection) -> str:
        from migration_guard.protect.mysql import server

        return server.database_name(conn)

    def list_tables(self, conn: Connection) -> list[str]:
        from migration_guard.protect.mysql import server

        return server.list_tables(conn)

    def plan_install(
        self,
        conn: Connection,
        tables: Sequence[str],
        app_users: Sequence[Account],
        options: Mapping[str, TableOptions],
    ) -> ProtectPlan:
        from migration_guard.protect.mysql import planner

        return planner.plan_install(conn, tables, app_users, options)

    def plan_remove(self, conn: Connection, app_users: Sequence[Account]) -> ProtectPlan:
        from migration_guard.protect.mysql import planner

        return planner.plan_remove(conn, app_users)

    def apply(self, conn: Connection, plan: ProtectPlan) -> list[str]:
        """Run ``plan``; after ``remove``, compare each account's grants with the record."""
        from migration_guard.protect.mysql import server
        from migration_guard.protect.mysql.grants import show_grants

        notes = super().apply(conn, plan)
        expected: dict[str, list[str]] = plan.context.get("expected_grants", {})
        quoting = server.session_quoting(conn)
        for key, before in sorted(expected.items()):
            user, _, host = key.rpartition("@")
            account = Account(user, host)
            after = show_grants(conn, account, quoting)
            if sorted(after) == sorted(before):
                notes.append(f"grants of {account} restored exactly as recorded at install")
            else:
                notes.append(
                    f"grants of {account} differ from those recorded at install "
                    f"(changed by hand since?): recorded {before}, now {after}"
                )
        return notes

    def explain_error(self, exc: BaseException) -> str:
        from migration_guard.protect.mysql import server

        return server.explain_error(exc)

    def status(
        self, conn: Connection, app_users: Sequence[Account], tables: Sequence[str] = ()
    ) -> ProtectStatus:
        from migration_guard.protect.mysql.status import protection_status

        return protection_status(conn, app_users, tables)

    def verify(self, admin_url: URL, app_url: URL | None) -> list[ProbeResult]:
        from migration_guard.protect.mysql import probes

        return probes.verify(admin_url, app_url)

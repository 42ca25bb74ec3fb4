"""PostgreSQL protection: guard triggers, an owner that is not the application, and
event triggers.

* Rows: a ``BEFORE DELETE ... FOR EACH ROW`` trigger raises unless the session
  sets ``migration_guard.allow_delete = on`` (the bypass).
* ``TRUNCATE`` fires no row trigger: a ``BEFORE TRUNCATE ... FOR EACH STATEMENT``
  trigger refuses it the same way.
* DDL: a table's owner can always DROP and ALTER it, whatever the grants say, so
  ``install`` records each protected table's owner and gives the table to a
  ``NOLOGIN`` guard role; the former owner keeps SELECT, INSERT, UPDATE, DELETE,
  REFERENCES and TRIGGER (and its sequences' privileges). Event triggers
  (``ddl_command_end`` for ALTER TABLE, ``sql_drop`` for every drop) refuse DDL
  on the protected tables by anyone else, superusers included, unless run as the
  guard role or with the bypass. Event triggers need a superuser; without one the
  rest is installed and ``status`` reports partial protection.

The guard's functions and its metadata table live in the schema
``migration_guard``, on which no application role has a privilege. The work is
split by concern: :mod:`.sql` (statement text), :mod:`.catalog` (what is read),
:mod:`.planner` (install), :mod:`.removal`, :mod:`.status` and :mod:`.probes`
(verify). Quoting and table listing come from
:mod:`migration_guard.dialects.postgresql`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import ClassVar

from sqlalchemy.engine import URL, Connection

from migration_guard.dialects.base import connected, run_sql
from migration_guard.errors import ProtectError
from migration_guard.protect.base import Protector
from migration_guard.protect.model import Account, ProtectPlan, TableOptions
from migration_guard.protect.postgresql import catalog, planner, probes, removal, sql
from migration_guard.protect.postgresql.status import protection_status
from migration_guard.protect.report import ProbeResult, ProtectStatus

__all__ = ["PostgreSQLProtector"]


class PostgreSQLProtector(Protector):
    """Triggers, owner transfer and event triggers for PostgreSQL 12+."""

    dialect: ClassVar[str] = "postgresql"

    @classmethod
    def installed(cls, conn: Connection, tables: Sequence[str]) -> bool:
        """The metadata table lives in the guard's schema ``migration_guard``."""
        del tables
        return catalog.meta_exists(conn)

    def database_name(self, conn: Connection) -> str:
        return str(conn.exec_driver_sql("SELECT current_database()").scalar())

    def list_tables(self, conn: Connection) -> list[str]:
        return [table.name for table in catalog.list_tables(conn)]

    def plan_install(
        self,
        conn: Connection,
        tables: Sequence[str],
        app_users: Sequence[Account],
        options: Mapping[str, TableOptions],
    ) -> ProtectPlan:
        return planner.plan_install(conn, tables, app_users, options)

    def plan_remove(self, conn: Connection, app_users: Sequence[Account]) -> ProtectPlan:
        return removal.plan_remove(conn, app_users)

    @contextmanager
    def connect(self, url: URL) -> Iterator[Connection]:
        """A transactional connection: PostgreSQL's DDL is transactional, so a whole
        plan commits at once or not at all, even if this process is killed half-way."""
        with connected(url) as conn:
            yield conn

    def apply(self, conn: Connection, plan: ProtectPlan) -> list[str]:
        """Run ``plan`` in one transaction; after ``remove``, compare each table's grants
        with the record.

        A ``lock_timeout`` keeps a step that waits behind the application's locks
        from queueing every other query on that table behind it; the whole plan is
        then rolled back and nothing has changed.
        """
        done = 0
        try:
            run_sql(conn, f"SET LOCAL lock_timeout = {sql.string(sql.LOCK_TIMEOUT)}")
            for step in plan.steps:
                run_sql(conn, step.sql)
                done += 1
            conn.commit()
        except Exception as exc:  # every driver error is reported alike
            conn.rollback()
            where = (
                f" at step {done + 1} of {len(plan.steps)} ({plan.steps[done].description})"
                if done < len(plan.steps)
                else ""
            )
            raise ProtectError(
                f"protect {plan.action} failed{where}: {self.explain_error(exc)}. The "
                "transaction was rolled back; nothing was changed",
                rolled_back=True,
            ) from None
        notes: list[str] = []
        expected: dict[str, list[list[object]]] = plan.context.get("expected_acl", {})
        oids: dict[str, int] = plan.context.get("oids", {})
        for name, before in sorted(expected.items()):
            after = catalog.acl(conn, oids[name])
            if sorted(map(tuple, after)) == sorted(map(tuple, before)):
                notes.append(f"owner and grants of {name} restored exactly as before install")
            else:
                notes.append(
                    f"grants of {name} differ from those recorded at install (changed by "
                    f"hand since?): recorded {before}, now {after}"
                )
        return notes

    def status(
        self, conn: Connection, app_users: Sequence[Account], tables: Sequence[str] = ()
    ) -> ProtectStatus:
        return protection_status(conn, app_users, tables)

    def verify(self, admin_url: URL, app_url: URL | None) -> list[ProbeResult]:
        return probes.verify(admin_url, app_url)

"""The interface every per-database protector implements."""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from migration_guard.dialects.base import connected, run_sql
from migration_guard.errors import ProtectError, UsageError, describe
from migration_guard.protect.model import (
    META_TABLE,
    Account,
    PlanStep,
    ProtectPlan,
    TableOptions,
)
from migration_guard.protect.report import ProbeResult, ProtectStatus

#: The row of the guard's metadata table that holds the install record.
STATE_KEY = "state"
#: What ``status`` reports, and ``verify`` refuses, without an install record.
NOT_INSTALLED = "protection is not installed in this database"


def read_state(conn: Connection, quoted_meta_table: str) -> dict[str, Any] | None:
    """The install record kept in the guard's metadata table; ``None`` when there is none.

    ``quoted_meta_table`` is the metadata table's name quoted for the dialect; the
    caller has checked that the table exists.
    """
    value = conn.execute(
        sa.text(f"SELECT value FROM {quoted_meta_table} WHERE name = :name"),
        {"name": STATE_KEY},
    ).scalar()
    if value is None:
        return None
    state: dict[str, Any] = json.loads(str(value))
    return state


def require_installed(state: dict[str, Any] | None) -> dict[str, Any]:
    """The install record ``verify`` probes by; without one, a usage error naming the fix."""
    if state is None:
        raise UsageError(f"{NOT_INSTALLED}; run protect install first")
    return state


class Protector(abc.ABC):
    """Installs, checks, proves and removes protection for one kind of database."""

    dialect: ClassVar[str]
    #: Whether the database has accounts whose privileges the guard manages.
    uses_accounts: ClassVar[bool] = True

    @contextmanager
    def connect(self, url: URL) -> Iterator[Connection]:
        """An autocommit connection: every plan step takes effect (or is undone) alone."""
        with connected(url) as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @classmethod
    def installed(cls, conn: Connection, tables: Sequence[str]) -> bool:
        """Whether protection was installed in this database: its metadata table is one
        of ``tables`` (the database's own, listed by the caller) or, for databases that
        keep it elsewhere, found there."""
        del conn
        return META_TABLE in {table.lower() for table in tables}

    @abc.abstractmethod
    def database_name(self, conn: Connection) -> str:
        """The name shown in plans and status (database name or file)."""

    @abc.abstractmethod
    def list_tables(self, conn: Connection) -> list[str]:
        """Base tables that can be protected (the guard's own tables excluded)."""

    @abc.abstractmethod
    def plan_install(
        self,
        conn: Connection,
        tables: Sequence[str],
        app_users: Sequence[Account],
        options: Mapping[str, TableOptions],
    ) -> ProtectPlan:
        """The statements that bring ``tables`` under protection; empty when already done.

        Checks everything that can be checked up front (accounts, admin privileges,
        server version) and raises :class:`~migration_guard.errors.UsageError` before
        any change.
        """

    @abc.abstractmethod
    def plan_remove(self, conn: Connection, app_users: Sequence[Account]) -> ProtectPlan:
        """The statements that drop the triggers and restore the recorded grants."""

    @abc.abstractmethod
    def status(
        self, conn: Connection, app_users: Sequence[Account], tables: Sequence[str] = ()
    ) -> ProtectStatus:
        """Per table: trigger intact, privilege guard per account, drift.

        ``tables`` adds tables that should be protected (from the configuration) to
        those recorded by the last install.
        """

    @abc.abstractmethod
    def verify(self, admin_url: URL, app_url: URL | None) -> list[ProbeResult]:
        """Attempt the refused operations as the application account, harmlessly."""

    def apply(self, conn: Connection, plan: ProtectPlan) -> list[str]:
        """Run ``plan``; on failure undo the completed steps in reverse order.

        Each statement runs as written, with no parameter substitution, so a
        ``%`` in a host pattern such as ``'app'@'%'`` stays a ``%``. Returns notes
        worth showing. Raises :class:`ProtectError` naming the failed step and
        whether the rollback succeeded.
        """
        done: list[PlanStep] = []
        for number, step in enumerate(plan.steps, 1):
            try:
                run_sql(conn, step.sql)
            except Exception as exc:  # every driver error is reported alike
                failure = (
                    f"protect {plan.action} failed at step {number} of {len(plan.steps)} "
                    f"({step.description}): {self.explain_error(exc)}"
                )
                leftovers = self._undo(conn, done)
                if leftovers:
                    raise ProtectError(
                        f"{failure}. Rolling back the {len(done)} completed step(s) also failed; "
                        "run these statements by hand to finish the rollback:\n"
                        + "\n".join(f"  {sql};" for sql in leftovers),
                        rolled_back=False,
                    ) from None
                raise ProtectError(
                    f"{failure}. The {len(done)} completed step(s) were rolled back; "
                    "nothing was changed.",
                    rolled_back=True,
                ) from None
            done.append(step)
        return []

    def _undo(self, conn: Connection, done: list[PlanStep]) -> list[str]:
        """Undo ``done`` in reverse; the statements that could not be run."""
        failed: list[str] = []
        for step in reversed(done):
            for sql in step.undo:
                try:
                    run_sql(conn, sql)
                except Exception:  # keep undoing; report what is left
                    failed.append(sql)
        return failed

    def explain_error(self, exc: BaseException) -> str:
        """A driver error made readable; dialects add the fix for errors they know."""
        return describe(exc)

"""Sees every statement of a guarded migration before it reaches the server.

A SQLAlchemy ``before_cursor_execute`` listener (``retval=True``) on the ``Engine``
class sees every statement of every SQLAlchemy engine and connection in the process for
the duration of the run (env.py's connection and any engine a revision creates), except
the guard's own (marked with :data:`~migration_guard.dialects.base.GUARD_CONNECTION_OPTION`).
It splits each string into the statements it runs (:mod:`.runtime_sql`) and parses them
with the static check's own splitter, parser and rules, then:

* blocks a destructive operation on a protected table that the plan did not approve
  (:class:`~migration_guard.errors.BlockedStatement`), whether the SQL was written in
  the revision, computed by Python code at run time, or emitted by Alembic;
* backs up, just before the statement runs, a pre-existing table that the safety
  backup does not cover, so that a restore stays complete;
* records what ran and which tables were touched or created, for the restore and
  the audit.

Like ``check``, it judges what really runs (:mod:`migration_guard.analysis.runtime`):
``PREPARE`` of a text known from the variables set earlier in the run, the body of a
procedure created in the run at its ``CALL``, a ``BEGIN NOT ATOMIC`` block; so the
plan's approvals are the ones it applies.

Once a statement was blocked, every later commit in the process is refused and
:meth:`StatementInterceptor.raise_if_blocked` fails the revision, so a revision that
catches :class:`~migration_guard.errors.BlockedStatement` and carries on never commits.
Statements sent through a raw DBAPI cursor bypass SQLAlchemy and are not seen here;
where the driver can refuse them itself (SQLite), :mod:`.raw_guard` does.

The interceptor holds the policy; the guard session decides what "approved" and "covered"
mean and how a table is backed up.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.raw_guard import RawWriteGuard
from migration_guard.alembic.runtime_sql import is_read_only, runtime_statements
from migration_guard.alembic.scope import TextParses
from migration_guard.analysis.model import Finding, Operation, OpKind, Severity, TableRef
from migration_guard.config import ProtectedTables
from migration_guard.dialects.base import GUARD_CONNECTION_OPTION
from migration_guard.errors import BlockedStatement, MigrationGuardError

if TYPE_CHECKING:
    from migration_guard.alembic.approvals import Approvals
    from migration_guard.analysis.runtime import Runtime
    from migration_guard.dialects.base import DialectOps

__all__ = [
    "ExecutedStatement",
    "StatementInterceptor",
    "approval_matches",
    "batch_temp_table",
]

RUNTIME_FILE = "<runtime>"
PREVIEW = 300
#: Read-only-looking statements that still matter: variables later run as dynamic SQL
#: (``SET @v``, ``SELECT ... INTO @v``); ``is_read_only`` already refuses ``BEGIN NOT
#: ATOMIC`` blocks.
_FOLLOWED = re.compile(r"\s*(?:SET\b[^;]*@|SELECT\b.*\bINTO\s+@)", re.I | re.S)
_PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|\?|(?<![:\w]):[A-Za-z_]\w*")
#: Operations that leave a table's data and definition as they were.
_READ_KINDS = frozenset({OpKind.SELECT, OpKind.NO_OP, OpKind.UNANALYZABLE})
#: Alembic's batch mode on SQLite copies ``t`` into ``_alembic_tmp_t``, drops ``t`` and
#: renames the copy: the drop is part of a table rebuild the static check judged already.
BATCH_TEMP_PREFIX = "_alembic_tmp_"


def batch_temp_table(table: str) -> str:
    """The name Alembic's batch mode gives the rebuilt copy of ``table``."""
    return f"{BATCH_TEMP_PREFIX}{table}"


def approval_matches(
    approved: Approvals | Collection[tuple[str, str]],
    rule: str,
    table: TableRef | str | None,
    revision: str | None = None,
) -> bool:
    """Whether ``rule`` on ``table``, run from the revision file ``revision``, is approved.

    :class:`~migration_guard.alembic.approvals.Approvals` scope each approval to its
    revision, rule and qualified table; a plain set of ``(rule, table)`` pairs approves
    in every revision, and ``*`` there stands for an unknown table only, never any.
    """
    from migration_guard.alembic.approvals import Approvals

    if isinstance(approved, Approvals):
        return approved.allows(rule, table, revision)
    name = table.name if isinstance(table, TableRef) else table
    return (rule, (name or "*").rsplit(".", 1)[-1].lower()) in approved


@dataclass
class ExecutedStatement:
    """One statement that was sent to the server (or blocked before it)."""

    sql: str
    revision_file: str | None
    line: int | None
    seconds: float
    blocked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "file": self.revision_file,
            "line": self.line,
            "blocked": self.blocked,
        }


@dataclass
class StatementInterceptor:
    """The policy applied to each statement of one guarded run.

    ``existing_tables`` maps lower-cased names to the names of the tables that
    existed before the run; ``covered`` holds the lower-cased names already in a
    backup. ``backup_table(name)`` takes a just-in-time backup (None disables them).
    """

    dialect: str
    protected: ProtectedTables
    approved: Approvals | Collection[tuple[str, str]]
    existing_tables: Mapping[str, str]
    covered: set[str] = field(default_factory=set)
    backup_table: Callable[[str], None] | None = None
    revision_files: Collection[str] = ()
    #: Told each operation that changes a table, before it runs; returns the further
    #: tables it changes (foreign-key actions), which get backed up like its own.
    record_change: Callable[[Operation], Iterable[str]] | None = None
    #: The database's facts: which statements refuse a transaction block.
    ops: DialectOps | None = None
    executed: list[ExecutedStatement] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    blocked: BlockedStatement | None = None
    _targets: list[Any] = field(default_factory=list)
    #: Session variables, prepared statements and procedures seen so far in the run.
    _runtime: Runtime | None = None
    _raw: RawWriteGuard | None = None
    #: Set on a thread while it judges a statement: what runs meanwhile is the guard's.
    _judging: threading.local = field(default_factory=threading.local)
    #: The plan's parse of its statements by their text (:func:`.scope.parses_by_text`).
    known: Mapping[str, list[Operation]] = field(default_factory=dict)
    _parses: TextParses = field(default_factory=TextParses)  # and of those run so far

    # -- attaching -------------------------------------------------------------------
    def attach(self, connection: Any = None) -> None:
        """Listen on every SQLAlchemy engine and connection of the process until
        :meth:`detach` (``connection``, env.py's, is one of them)."""
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        if self._raw is None:
            self._raw = RawWriteGuard(self.protected, self._raw_refused)
        if connection is not None:  # env.py's: guard its driver connection at once
            self._raw.watch(connection)
        if self._targets:
            return
        for name, listener in self._listeners():
            event.listen(Engine, name, listener, retval=name == "before_cursor_execute")
        self._targets.append(Engine)

    def _listeners(self) -> list[tuple[str, Callable[..., Any]]]:
        return [
            ("before_cursor_execute", self.before_cursor_execute),
            ("after_cursor_execute", self.after_cursor_execute),
            ("handle_error", self.after_cursor_execute),
            ("commit", self.before_commit),
        ]

    def detach(self) -> None:
        """Stop listening (idempotent)."""
        from sqlalchemy import event

        while self._targets:
            target = self._targets.pop()
            for name, listener in self._listeners():
                if event.contains(target, name, listener):
                    event.remove(target, name, listener)
        if self._raw is not None:
            self._raw.close()

    # -- the listeners ---------------------------------------------------------------
    def before_cursor_execute(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> tuple[str, Any]:
        """SQLAlchemy hook: inspect ``statement``; raise to keep it from the server."""
        del cursor, context, executemany
        if _is_own(conn) or getattr(self._judging, "active", False):
            return statement, parameters
        raw = self._raw
        if raw is not None:
            raw.judged(False)
            raw.watch(conn)
        self._judging.active = True
        try:
            self._refuse_outside_autocommit(conn, statement)
            self.inspect(statement, parameters)
        finally:
            self._judging.active = False
        if raw is not None:
            raw.judged(True)  # the driver may run this one: it passed
        return statement, parameters

    def _refuse_outside_autocommit(self, conn: Any, sql: str) -> None:
        """A statement the server refuses in a transaction block, sent inside one, fails
        here with the fix, before the server's own "cannot run inside a transaction
        block"."""
        ops = self.ops
        if ops is None:
            return
        kind = ops.outside_transaction_only(sql, conn.dialect.server_version_info)
        if kind is None or ops.in_autocommit(conn):
            return
        raise MigrationGuardError(
            f"{kind} cannot run inside a transaction block, and the migration runs in one: "
            "wrap it in `with op.get_context().autocommit_block():` (what runs there is "
            "committed at once; if the run fails later, the tables it changed are restored "
            f"from the run's backups): {_preview(sql, 200)}"
        )

    def after_cursor_execute(self, *_args: Any) -> None:
        """SQLAlchemy hook (also on errors): the judged statement has run."""
        if self._raw is not None:
            self._raw.judged(False)

    def _raw_refused(self, kind: str, table: str) -> None:
        """The driver refused a raw write no hook saw: the run fails, as for a block."""
        sql = f"{kind.upper()} on {table} through a raw DBAPI cursor"
        finding = Finding(
            rule="unanalyzable",
            severity=Severity.ERROR,
            table=table,
            file=RUNTIME_FILE,
            line=1,
            column=1,
            message=f"a {kind} of protected table {table!r} sent below SQLAlchemy (a raw "
            "DBAPI cursor or script), which the guard cannot judge",
            statement=sql,
        )
        self.notes.append(f"refused a {kind} of protected table {table!r} from a raw cursor")
        self.blocked = BlockedStatement(
            f"blocked before it reached the server: {finding.message}", finding, sql
        )

    def before_commit(self, conn: Any) -> None:
        """SQLAlchemy hook: no commit after a statement was blocked (the run fails).

        The refused transaction is rolled back at once, so that it holds no locks
        while the run restores the state from before it.
        """
        if _is_own(conn) or self.blocked is None:
            return
        with contextlib.suppress(Exception):
            conn.connection.rollback()
        self.raise_if_blocked()

    def raise_if_blocked(self) -> None:
        """Fail when a statement was blocked earlier, even if the revision caught the
        :class:`BlockedStatement` and carried on: the run must not commit."""
        blocked = self.blocked
        if blocked is None:
            return
        raise BlockedStatement(
            f"{blocked} (the revision caught the error and carried on; the run fails "
            "before it commits)",
            blocked.finding,
            blocked.sql,
        )

    def inspect(self, sql: str, parameters: Any = None) -> None:
        """Apply the policy to ``sql``: record it, back up what it touches, or block it."""
        started = time.monotonic()
        file, line = self._call_site()
        record = ExecutedStatement(_preview(sql), file, line, 0.0)
        self.executed.append(record)
        try:
            if is_read_only(sql) and not _FOLLOWED.match(sql):
                return
            for operation in self._operations(sql, parameters):
                self._judge(operation, sql, file, line, record)
        finally:
            record.seconds = time.monotonic() - started

    # -- policy ----------------------------------------------------------------------
    def _operations(self, sql: str, parameters: Any) -> Iterable[Operation]:
        from migration_guard.analysis.analyzer import operations_of
        from migration_guard.analysis.leading import is_plain

        text = _PLACEHOLDER.sub("NULL", sql) if parameters else sql
        unit = RUNTIME_FILE
        for statement in runtime_statements(text, dialect=self.dialect, file=unit, unit=unit):
            # What runs: literal dynamic SQL resolved, called procedures' bodies unfolded,
            # exactly as ``check`` read them (so its approvals apply); a plain statement
            # runs as written (Runtime.expand's answer), without making the runtime.
            try:
                expand = None if is_plain(statement) else self._runtime_state().expand
                runs = [statement] if expand is None else [r.statement for r in expand(statement)]
            except Exception:  # fail closed: judge the statement as written
                runs = [statement]
            for run in runs:
                known = None if run.known_operations else self._parses.get(run.sql, self.known)
                if known is None:
                    operations = operations_of(run, self.dialect)
                    self._parses.remember(run, operations)
                    yield from operations
                else:  # the same text's parse, told where it runs now
                    yield from (replace(operation, statement=run) for operation in known)

    def _runtime_state(self) -> Runtime:
        from migration_guard.analysis.families import sqlglot_family
        from migration_guard.analysis.runtime import Runtime

        if self._runtime is None:
            self._runtime = Runtime(sqlglot_family(self.dialect) or "")
        return self._runtime

    def _judge(
        self,
        operation: Operation,
        sql: str,
        file: str | None,
        line: int | None,
        record: ExecutedStatement,
    ) -> None:
        if operation.kind is OpKind.UNANALYZABLE:
            # Fail closed, as the static check does: a statement whose target cannot be
            # known (dynamic SQL) or that touches a protected table runs only if approved.
            finding = self._violation(operation, file, line)
            if finding is None:
                self.notes.append(
                    f"could not analyse a statement at run time ({operation.reason or 'unknown'}):"
                    f" {_preview(sql, 120)}"
                )
                self._record_change(operation)
                return
            self._block(finding, sql, file, line, record)
        if operation.table is None or operation.kind in _READ_KINDS:
            return
        lowered = self._key(operation.table)
        finding = self._violation(operation, file, line)
        if finding is not None:
            self._block(finding, sql, file, line, record)
        self._record_change(operation)
        if operation.kind is OpKind.CREATE_TABLE:
            if lowered not in self.existing_tables:
                self.created.add(lowered)
            return
        if operation.kind is OpKind.RENAME_TABLE and operation.new_name:
            self._renamed(operation.table, operation.new_name, lowered)
        self.touched.add(lowered)
        self._cover(lowered)

    def _renamed(self, table: TableRef, new_name: str, lowered: str) -> None:
        """``table`` (key ``lowered``) is about to be renamed to ``new_name``: its rows,
        and so its protection and its being made by this run or not, go with it."""
        from migration_guard.alembic.renames import protected_after_rename
        from migration_guard.analysis.rules import renamed_table

        target = renamed_table(table, new_name)
        if lowered not in self.created or lowered in self.existing_tables:
            widened = protected_after_rename(self.protected, table, target)
            if widened is not None:
                self.protected = widened
                if self._raw is not None:
                    self._raw.protected = widened
                self.notes.append(
                    f"{table.qualified} renamed to {target.qualified}: "
                    "protected under its new name for the rest of the run"
                )
        elif self._key(target) not in self.existing_tables and table.name.lower() != (
            batch_temp_table(target.name).lower()
        ):
            # Made by this run (and not a batch rebuild's copy of ``target``, which holds
            # the rows ``target`` had): the new name holds nothing from before the run.
            self.created.add(self._key(target))

    def _block(
        self,
        finding: Finding,
        sql: str,
        file: str | None,
        line: int | None,
        record: ExecutedStatement,
    ) -> None:
        record.blocked = True
        target = f"protected table {finding.table!r}" if finding.table else "an unknown target"
        message = (
            f"blocked before it reached the server: {finding.rule} on {target}, "
            "which the plan did not approve"
            + (f" ({file}:{line})" if file else "")
            + f": {_preview(sql, 200)}"
        )
        self.blocked = BlockedStatement(message, finding, _preview(sql, 2000))
        raise self.blocked

    def _violation(
        self, operation: Operation, file: str | None, line: int | None
    ) -> Finding | None:
        """The first unapproved error-level finding of ``operation``, if any."""
        from migration_guard.analysis.rules import RuleContext, rules_for_kind

        if operation.table is not None:
            lowered = self._key(operation.table)
            if lowered in self.created and lowered not in self.existing_tables:
                return None  # made by this run: nothing that existed before can be lost
            temp = TableRef(batch_temp_table(operation.table.name), operation.table.schema)
            if operation.kind is OpKind.DROP_TABLE and self._key(temp) in self.created:
                return None
        context = RuleContext(dialect=self.dialect, protected=self.protected)
        for rule in rules_for_kind(operation.kind):
            try:
                violations = list(rule.check(operation, context))
            except Exception:  # a rule bug is not a reason to stop a migration half-way
                continue
            for violation in violations:
                severity = violation.severity
                table_ref = violation.table or operation.table
                if severity is None:
                    severity = (
                        Severity.ERROR if context.is_protected(table_ref) else Severity.WARNING
                    )
                if severity is not Severity.ERROR:
                    continue
                if approval_matches(self.approved, rule.id, table_ref, file):
                    continue
                return Finding(
                    rule=rule.id,
                    severity=severity,
                    table=table_ref.qualified if table_ref else None,
                    file=file or RUNTIME_FILE,
                    line=line or 1,
                    column=1,
                    message=violation.message,
                    statement=_preview(operation.statement.sql, 500),
                    hint=rule.hint,
                )
        return None

    def _record_change(self, operation: Operation) -> None:
        if self.record_change is not None:
            for table in self.record_change(operation):
                self._cover(table.lower())

    def _key(self, table: TableRef) -> str:
        """The key of ``table`` in ``created``/``touched``/``existing_tables``: its lower-
        cased name in the default schema (where the listed tables are), else
        ``schema.name``, so a table of another schema is never taken for it."""
        default = self.protected.default_schema
        schema = table.schema.lower() if table.schema else None
        if schema is None or (default is not None and schema == default.lower()):
            return table.name.lower()
        return f"{schema}.{table.name.lower()}"

    def _cover(self, lowered: str) -> None:
        name = self.existing_tables.get(lowered)
        if name is None or lowered in self.covered or self.backup_table is None:
            return
        self.backup_table(name)
        self.covered.add(lowered)

    def _call_site(self) -> tuple[str | None, int | None]:
        """The innermost revision file frame on the stack: where the statement came from."""
        if not self.revision_files:
            return None, None
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename in self.revision_files:
                return frame.f_code.co_filename, frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return None, None


def _is_own(conn: Any) -> bool:
    """Whether ``conn`` belongs to the guard itself (its lock, backups and proofs)."""
    return bool(conn.get_execution_options().get(GUARD_CONNECTION_OPTION))


def _preview(sql: str, limit: int = PREVIEW) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

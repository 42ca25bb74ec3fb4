"""Sees every statement of a guarded migration before it reaches the server.

A SQLAlchemy ``before_cursor_execute`` listener (``retval=True``) splits and parses
each statement with the static check's own splitter, parser and rules, then:

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

The interceptor holds the policy; the guard session decides what "approved" and "covered"
mean and how a table is backed up.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migration_guard.analysis.model import (
    Finding,
    Operation,
    OpKind,
    Severity,
    Statement,
    TableRef,
)
from migration_guard.config import ProtectedTables
from migration_guard.errors import BlockedStatement

if TYPE_CHECKING:
    from migration_guard.alembic.approvals import Approvals
    from migration_guard.analysis.runtime import Runtime

__all__ = [
    "ExecutedStatement",
    "StatementInterceptor",
    "approval_matches",
    "batch_temp_table",
]

RUNTIME_FILE = "<runtime>"
PREVIEW = 300
#: Statements that never change data or schema: recorded, not parsed (keeps the guard cheap).
_READ_ONLY = re.compile(
    r"^\s*(?:SELECT|SHOW|PRAGMA|SET|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|EXPLAIN|"
    r"DESCRIBE|DESC|USE|START\s+TRANSACTION|CHECKSUM|ANALYZE)\b",
    re.IGNORECASE,
)
_SELECT_INTO = re.compile(r"\bINTO\s+(?!@)\S", re.IGNORECASE)
#: Read-only-looking statements that still matter: variables later run as dynamic SQL
#: (``SET @v``, ``SELECT ... INTO @v``) and MariaDB's ``BEGIN NOT ATOMIC`` blocks.
_FOLLOWED = re.compile(r"\s*(?:SET\b[^;]*@|SELECT\b.*\bINTO\s+@|BEGIN\s+NOT\b)", re.I | re.S)
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
    executed: list[ExecutedStatement] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    blocked: BlockedStatement | None = None
    _targets: list[Any] = field(default_factory=list)
    #: Session variables, prepared statements and procedures seen so far in the run.
    _runtime: Runtime | None = None

    # -- attaching -------------------------------------------------------------------
    def attach(self, target: Any) -> None:
        """Listen on a SQLAlchemy ``Connection`` or ``Engine`` until :meth:`detach`."""
        from sqlalchemy import event

        event.listen(target, "before_cursor_execute", self.before_cursor_execute, retval=True)
        self._targets.append(target)

    def detach(self) -> None:
        """Stop listening everywhere :meth:`attach` listened (idempotent)."""
        from sqlalchemy import event

        while self._targets:
            target = self._targets.pop()
            if event.contains(target, "before_cursor_execute", self.before_cursor_execute):
                event.remove(target, "before_cursor_execute", self.before_cursor_execute)

    # -- the listener ----------------------------------------------------------------
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
        del conn, cursor, context, executemany
        self.inspect(statement, parameters)
        return statement, parameters

    def inspect(self, sql: str, parameters: Any = None) -> None:
        """Apply the policy to ``sql``: record it, back up what it touches, or block it."""
        started = time.monotonic()
        file, line = self._call_site()
        record = ExecutedStatement(_preview(sql), file, line, 0.0)
        self.executed.append(record)
        try:
            if (
                _READ_ONLY.match(sql)
                and not _SELECT_INTO.search(sql.split("FROM", 1)[0])
                and not _FOLLOWED.match(sql)
            ):
                return
            for operation in self._operations(sql, parameters):
                self._judge(operation, sql, file, line, record)
        finally:
            record.seconds = time.monotonic() - started

    # -- policy ----------------------------------------------------------------------
    def _operations(self, sql: str, parameters: Any) -> Iterable[Operation]:
        from migration_guard.analysis.analyzer import operations_of
        from migration_guard.analysis.splitter import split_sql

        text = _PLACEHOLDER.sub("NULL", sql) if parameters else sql
        try:
            statements = list(
                split_sql(text, file=RUNTIME_FILE, dialect=self.dialect, unit=RUNTIME_FILE)
            )
        except Exception:  # never let the guard's parser break a migration by itself
            statements = [Statement(sql=text, file=RUNTIME_FILE, line=1, unit=RUNTIME_FILE)]
        runtime = self._runtime_state()
        for statement in statements:
            # What runs: literal dynamic SQL resolved, called procedures' bodies unfolded,
            # exactly as ``check`` read them for the plan (so its approvals apply).
            try:
                runs = [run.statement for run in runtime.expand(statement)]
            except Exception:  # fail closed: judge the statement as written
                runs = [statement]
            for run in runs:
                yield from operations_of(run, self.dialect)

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
                return
            self._block(finding, sql, file, line, record)
        if operation.table is None or operation.kind in _READ_KINDS:
            return
        lowered = self._key(operation.table)
        finding = self._violation(operation, file, line)
        if finding is not None:
            self._block(finding, sql, file, line, record)
        if operation.kind is OpKind.CREATE_TABLE:
            if lowered not in self.existing_tables:
                self.created.add(lowered)
            return
        if operation.kind is OpKind.RENAME_TABLE and operation.new_name:
            from migration_guard.analysis.rules import renamed_table

            new = self._key(renamed_table(operation.table, operation.new_name))
            # A renamed table that existed holds its old rows: not "made by this run".
            if new not in self.existing_tables and lowered in self.created:
                self.created.add(new)
        self.touched.add(lowered)
        self._cover(lowered)

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


def _preview(sql: str, limit: int = PREVIEW) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

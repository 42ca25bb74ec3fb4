"""Runs the rules over the operations of a sequence of statements.

The analyzer parses each statement (unless its operations are already known),
lets every rule interested in an operation's kind judge it, and keeps a running
picture of the schema (tables created per file or revision, column types) so
that rules can exempt tables created in the same unit and recognise widenings.
Violations become :class:`~migration_guard.analysis.model.Finding` objects
pointing at what the user wrote; suppression comments are applied last.

It never raises over any input text: whatever cannot be understood becomes an
``unanalyzable`` finding (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from operator import attrgetter
from typing import TYPE_CHECKING

from migration_guard.analysis.families import sqlglot_family
from migration_guard.analysis.leading import is_plain
from migration_guard.analysis.model import (
    SUPPRESSION_MARKER,
    Finding,
    Operation,
    OpKind,
    Report,
    Severity,
    Statement,
)
from migration_guard.analysis.quick import quick_operations
from migration_guard.analysis.rules import Rule, RuleContext, Violation, get_rule, rules_for_kind
from migration_guard.config import ProtectedTables

if TYPE_CHECKING:
    from migration_guard.analysis.runtime import Run, Runtime

__all__ = ["analyze", "analyze_sql", "operations_of"]

STATEMENT_PREVIEW = 500
UNANALYZABLE_RULE = "unanalyzable"
#: The order of a report's findings: (file, line, column).
_POSITION = attrgetter("file", "line", "column")


def preview(sql: str, limit: int = STATEMENT_PREVIEW) -> str:
    """The statement text as shown in findings: stripped, at most ``limit`` characters."""
    text = sql.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finding(
    rule: Rule, statement: Statement, run: Run | None, violation: Violation, context: RuleContext
) -> Finding:
    """Locate at ``statement``, the one analysed: operations known in advance
    (Alembic op objects) may carry a statement with another spelling of the path.
    Inside dynamic SQL or a stored program (``run``), the message says where it runs from."""
    severity = violation.severity
    if severity is None:
        severity = Severity.ERROR if context.is_protected(violation.table) else Severity.WARNING
    origin = run.origin if run is not None else ""
    message = f"{violation.message} ({origin})" if origin else violation.message
    # Positional arguments in field order (one call per finding; keywords cost more):
    # rule, severity, table, file, line, column, message, statement, hint, suppressed,
    # reason, anchors.
    return Finding(
        rule.id,
        severity,
        violation.table.qualified if violation.table else None,
        statement.file,
        statement.line,
        statement.column,
        message,
        preview(statement.sql),
        rule.hint,
        False,
        None,
        run.anchors if run is not None else (),
    )


def _internal_failure(statement: Statement, what: str, error: BaseException) -> Finding:
    """A finding for a failure of migration-guard itself: fail closed, never crash."""
    return Finding(
        rule=UNANALYZABLE_RULE,
        severity=Severity.ERROR,
        table=None,
        file=statement.file,
        line=statement.line,
        column=statement.column,
        message=f"{what} failed ({type(error).__name__}: {error}); treated as unanalyzable",
        statement=preview(statement.sql),
        hint=get_rule(UNANALYZABLE_RULE).hint,
    )


def operations_of(statement: Statement, dialect: str) -> list[Operation]:
    """What ``statement`` does: known operations, else the quick path, else the full
    parser. Never raises: a parser failure is an ``UNANALYZABLE`` operation."""
    if statement.known_operations:
        return list(statement.known_operations)
    quick = quick_operations(statement, dialect)
    if quick is not None:
        return quick
    # Imported here: sqlglot is only loaded when a statement needs the full parser.
    from migration_guard.analysis.parse import parse_statement

    try:
        return list(parse_statement(statement, dialect))
    except Exception as error:  # parse_statement must not raise; fail closed
        return [
            Operation(
                OpKind.UNANALYZABLE,
                statement,
                reason=f"parser failed ({type(error).__name__}: {error})",
            )
        ]


def _safe_iter(statements: Iterable[Statement], failures: list[Finding]) -> Iterator[Statement]:
    """Iterate ``statements``; a failing producer (splitter) ends with an unanalyzable finding."""
    iterator = iter(statements)
    last: Statement | None = None
    while True:
        try:
            statement = next(iterator)
        except StopIteration:
            return
        except Exception as error:  # fail closed on any producer failure
            where = last or Statement(sql="", file="<input>", line=1)
            failures.append(_internal_failure(where, "reading the statements", error))
            return
        last = statement
        yield statement


def _check(
    statement: Statement,
    run: Run | None,
    dialect: str,
    context: RuleContext,
    findings: list[Finding],
) -> None:
    """Run every interested rule over the operations of ``statement``, then track the schema.

    ``run`` says why it runs when the runtime unfolded it (None: as written)."""
    conditional = run is not None and run.conditional
    for operation in operations_of(statement, dialect):
        for rule in rules_for_kind(operation.kind):
            try:
                violations = list(rule.check(operation, context))
            except Exception as error:  # a rule bug must not hide a statement
                findings.append(_internal_failure(statement, f"rule {rule.id}", error))
                continue
            for violation in violations:
                findings.append(_finding(rule, statement, run, violation, context))
        try:
            if conditional:
                context.forget(operation)
            else:
                context.observe(operation)
        except Exception as error:  # keep analysing the other statements
            findings.append(_internal_failure(statement, "tracking the schema", error))


def _runtime(dialect: str) -> Runtime:
    from migration_guard.analysis.runtime import Runtime

    return Runtime(sqlglot_family(dialect) or "")


def _suppressed(findings: list[Finding], sources: Mapping[str, str]) -> list[Finding]:
    """:func:`~migration_guard.analysis.suppress.apply_suppressions`, loaded only when a
    source holds a suppression comment: without one it changes nothing."""
    if not any(SUPPRESSION_MARKER in text.lower() for text in sources.values()):
        return findings
    from migration_guard.analysis.suppress import apply_suppressions

    return apply_suppressions(findings, sources)


def analyze(
    statements: Iterable[Statement],
    *,
    dialect: str,
    protected: ProtectedTables,
    sources: Mapping[str, str] | None = None,
    extra_findings: Iterable[Finding] = (),
) -> Report:
    """Check ``statements`` in order and return every finding, sorted by position.

    ``sources`` maps file names to their text so that suppression comments can
    be read (SQL files and Alembic revision files alike). ``extra_findings``
    (e.g. from the Alembic planner) are sorted, suppressed and reported with
    the rest.
    """
    context = RuleContext(dialect=dialect, protected=protected)
    findings: list[Finding] = list(extra_findings)
    files: dict[str, None] = {}
    count = 0
    # Loaded with the first statement that needs it: most migrations hold none.
    runtime: Runtime | None = None
    # A list cannot fail while it is read; any other producer (a generator) may.
    sequence = statements if isinstance(statements, list) else _safe_iter(statements, findings)
    for statement in sequence:
        count += 1
        files.setdefault(statement.file, None)
        if runtime is None and is_plain(statement):
            _check(statement, None, dialect, context, findings)
            continue
        try:
            if runtime is None:
                runtime = _runtime(dialect)
            runs = runtime.expand(statement)
        except Exception as error:  # fail closed: analyse the statement as written
            findings.append(_internal_failure(statement, "following dynamic SQL", error))
            _check(statement, None, dialect, context, findings)
            continue
        for run in runs:
            _check(run.statement, run, dialect, context, findings)
    try:
        later = runtime.finish() if runtime is not None else []
    except Exception as error:  # fail closed on the stored programs' bodies
        where = Statement(sql="", file=next(iter(files), "<input>"), line=1)
        findings.append(_internal_failure(where, "reading stored programs", error))
        later = []
    for batch in later:
        # A body that runs later sees the schema of then, not the migration's changes to it.
        scoped = context.fork()
        for run in batch:
            _check(run.statement, run, dialect, scoped, findings)
    if sources:
        for file in sources:
            files.setdefault(file, None)
        findings = _suppressed(findings, sources)
    findings.sort(key=_POSITION)
    return Report(findings=findings, files=list(files), statements=count)


def analyze_sql(
    text: str,
    *,
    file: str = "<stdin>",
    dialect: str = "mysql",
    protected: ProtectedTables | None = None,
) -> Report:
    """Split ``text`` into statements and analyse them; suppressions in ``text`` apply."""
    protected = protected if protected is not None else ProtectedTables()
    failures: list[Finding] = []
    statements: list[Statement] = []
    try:
        from migration_guard.analysis.splitter import split_sql

        statements = list(split_sql(text, file=file, dialect=dialect, unit=file))
    except Exception as error:  # fail closed on any splitter failure
        failures.append(
            _internal_failure(Statement(sql=text, file=file, line=1), "splitting the SQL", error)
        )
    return analyze(
        statements,
        dialect=dialect,
        protected=protected,
        sources={file: text},
        extra_findings=failures,
    )

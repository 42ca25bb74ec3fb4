"""A statement that cannot be analysed might destroy data nobody can see coming: fail closed.

Reported when a statement cannot be parsed (even by the token-level fallback),
or when its target cannot be known statically: dynamic SQL such as MySQL
``PREPARE stmt FROM @sql`` where ``@sql`` is set outside the file or built
from a run-time value, ``EXECUTE`` of a statement not prepared in the file,
PostgreSQL ``DO $$ ... $$`` and PL/pgSQL ``EXECUTE``, or ``CALL`` of a stored
procedure not created in the same check run. Dynamic SQL whose text the file
tells, and stored-program bodies, are checked statement by statement instead.

Also reported, always as an error, for malformed input: a string, quoted
identifier or comment still open at the end of the file, a ``DELIMITER``
command without a delimiter or a statement the active ``DELIMITER`` never
closes, and (MySQL, MariaDB, SQLite) text that a ``--``/``#`` comment hides
after a bare carriage return. The finding points at where the construct opened.

A revision that cannot be rendered offline (it raised while ``check`` ran it
without a database) is reported the same way, and is always an error: nobody
can know what it would do, to which table.

Severity: an error when the statement touches a protected table, when its
target is unknown and every table is protected (no protected tables
configured), and always for dynamic SQL and ``CALL``; a warning when it
touches a known, unprotected table, or an unknown one while only some tables
are protected.

Instead, write the statement as plain, static SQL that names its tables, or
move it out of the migration. If the statement is known to be harmless,
suppress the finding with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind, Severity
from migration_guard.analysis.rules import Rule, RuleContext, Violation
from migration_guard.analysis.tokens import MALFORMED_INPUT

_DYNAMIC_REASON = re.compile(r"(?i:dynamic)|\b(?:PREPARE|EXECUTE|DO)\b")
_DYNAMIC_STATEMENT = re.compile(
    r"^\s*(?:PREPARE|EXECUTE|DO|EXEC|CALL)\b|\bEXECUTE\s+(?:IMMEDIATE|format\s*\()",
    re.IGNORECASE,
)


#: How the offline renderer (``alembic/offline/capture.py``) begins the reason of a
#: revision it could not render.
UNRENDERABLE = "revision could not be rendered"


def is_dynamic(operation: Operation) -> bool:
    """Whether the statement builds SQL at run time, so its target cannot be known."""
    if operation.reason and _DYNAMIC_REASON.search(operation.reason):
        return True
    return bool(_DYNAMIC_STATEMENT.search(_without_leading_comments(operation.statement.sql)))


def _without_leading_comments(sql: str) -> str:
    return re.sub(r"^(?:\s+|--[^\r\n]*|#[^\r\n]*|/\*.*?\*/)+", "", sql, flags=re.DOTALL)


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    reason = operation.reason or "the statement could not be parsed"
    if reason.startswith(MALFORMED_INPUT):
        # The text itself is broken: what runs cannot be known, whatever is protected.
        yield Violation(reason, operation.table, Severity.ERROR)
        return
    if reason.startswith(UNRENDERABLE):
        # Unknown statements on unknown tables: protected or not cannot be told.
        yield Violation(f"{reason}; what it does is unknown", operation.table, Severity.ERROR)
        return
    if is_dynamic(operation):
        yield Violation(
            f"dynamic SQL: its target cannot be known statically ({reason})",
            operation.table,
            Severity.ERROR,
        )
        return
    target = f" on {operation.table}" if operation.table else ""
    severity = Severity.ERROR if context.is_protected(operation.table) else Severity.WARNING
    yield Violation(f"statement{target} cannot be analysed: {reason}", operation.table, severity)


RULE = Rule(
    id="unanalyzable",
    summary="A statement that cannot be analysed, or whose target is only known at run time.",
    description=__doc__ or "",
    hint=(
        "Write it as static SQL that names its tables, or suppress it with a reason if it "
        "is known to be harmless."
    ),
    kinds=frozenset({OpKind.UNANALYZABLE}),
    check=check,
)

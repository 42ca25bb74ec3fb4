"""Turn one SQL statement into normalised :class:`Operation` values.

The main path is a single sqlglot parse followed by a walk over the few AST
shapes that matter. sqlglot gives up (``exp.Command`` or ``ParseError``) on
several statements people really write in MySQL migrations (``RENAME TABLE``,
``CONVERT TO CHARACTER SET``, ``DROP/TRUNCATE PARTITION``, ``ALTER IGNORE``...)
and on many PostgreSQL ``ALTER TABLE`` forms; those go through a token-level
fallback that only understands the statements that can destroy data.

The work is split by responsibility: :mod:`.words` (what the leading text
says), :mod:`.parser` (the entry), :mod:`.from_ast` (sqlglot AST to
operations), :mod:`.fallback` and :mod:`.fallback_alter` (the token
fallback), :mod:`.dynamic` (dynamic SQL) and :mod:`.where` (tautologies).

Everything fails closed: whatever neither path understands becomes an
``UNANALYZABLE`` operation, never an exception and never a silent "fine".
"""

from __future__ import annotations

from migration_guard.analysis.families import sqlglot_family
from migration_guard.analysis.model import Operation, OpKind, Statement
from migration_guard.analysis.parse.parser import Parser
from migration_guard.analysis.parse.words import unwrap_version_comments

__all__ = ["parse_statement", "unwrap_version_comments"]


def parse_statement(statement: Statement, dialect: str) -> list[Operation]:
    """Return what ``statement`` does, as normalised operations.

    ``dialect`` is one of ``mysql``, ``mariadb``, ``postgresql`` or ``sqlite``.
    Never raises: a statement that cannot be understood, or whose target cannot
    be known (dynamic SQL, ``CALL``, ``DO`` blocks), yields one ``UNANALYZABLE``
    operation carrying the reason and, when it can be guessed, the table.
    Operations already attached to the statement (``known_operations``) are
    returned unchanged.
    """
    if statement.known_operations:
        return list(statement.known_operations)
    try:
        family = sqlglot_family(dialect) or ""
        return Parser(statement, family).parse(statement.sql, 0)
    except Exception as exc:  # the contract is "never raises"
        return [
            Operation(
                kind=OpKind.UNANALYZABLE,
                statement=statement,
                reason=f"the statement could not be analysed ({type(exc).__name__}: {exc})",
            )
        ]

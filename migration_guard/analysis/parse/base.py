"""What every part of the parser shares: the statement, its family, and operations.

The parser is one object assembled from mixins, one per module: the AST
mapping (:mod:`.from_ast`), the token fallback (:mod:`.fallback`,
:mod:`.fallback_alter`) and dynamic SQL (:mod:`.dynamic`). They re-enter each
other only through the methods declared here.
"""

from __future__ import annotations

from typing import Any

from migration_guard.analysis.families import family_traits
from migration_guard.analysis.model import ColumnDef, Operation, OpKind, Statement, TableRef

#: Nesting limit for ``PREPARE ... FROM 'literal'`` style re-parsing.
MAX_DEPTH = 3


class ParserBase:
    def __init__(self, statement: Statement, family: str) -> None:
        self.statement = statement
        self.family = family
        self.traits = family_traits(family)

    def op(self, kind: OpKind, table: TableRef | None = None, **fields: Any) -> Operation:
        return Operation(kind=kind, statement=self.statement, table=table, **fields)

    def unanalyzable(self, reason: str, table: TableRef | None = None) -> list[Operation]:
        return [self.op(OpKind.UNANALYZABLE, table, reason=reason)]

    def parse(self, sql: str, depth: int) -> list[Operation]:
        """The operations of ``sql``; nested SQL (``EXECUTE 'literal'``) comes back here."""
        raise NotImplementedError

    def dynamic(self, sql: str, first: str, depth: int) -> list[Operation]:
        """``CALL``, ``EXECUTE``, ``PREPARE`` and ``DO``."""
        raise NotImplementedError

    def changed_column(
        self, table: TableRef | None, old_name: str, column: ColumnDef
    ) -> list[Operation]:
        """MySQL CHANGE/MODIFY: the whole definition is restated."""
        operations: list[Operation] = []
        renamed = old_name.lower() != column.name.lower()
        if renamed:
            operations.append(
                self.op(OpKind.RENAME_COLUMN, table, column=old_name, new_name=column.name)
            )
        operations.append(
            self.op(
                OpKind.ALTER_COLUMN_TYPE,
                table,
                column=old_name,
                new_name=column.name if renamed else None,
                new_type=column.type,
                columns=(column,),
            )
        )
        return operations

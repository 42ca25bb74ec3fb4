"""Alembic operation objects as :class:`~migration_guard.analysis.model.Operation`
values, for operations whose rendered SQL does not tell the truth.

``alter_column`` keeps ``existing_type=`` so that a provable widening can be
recognised, which the rendered SQL no longer says; batch operations and any operation
whose rendering raises are judged here too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from migration_guard.analysis.model import (
    ColumnDef,
    ColumnType,
    Operation,
    OpKind,
    Statement,
    TableRef,
)

if TYPE_CHECKING:
    from alembic.operations import ops as alembic_ops
    from sqlalchemy.engine import Dialect


def _table(operation: Any) -> TableRef | None:
    name = getattr(operation, "table_name", None)
    if name is None:
        table = getattr(operation, "table", None)
        name = getattr(table, "name", None)
        schema = getattr(table, "schema", None) or getattr(operation, "schema", None)
    else:
        schema = getattr(operation, "schema", None)
    if not name:
        return None
    return TableRef(str(name), str(schema) if schema else None)


def column_type(type_: Any, dialect: Dialect) -> ColumnType | None:
    """A :class:`ColumnType` for a SQLAlchemy type (class or instance) as ``dialect`` spells it."""
    if type_ is None:
        return None
    from sqlalchemy.types import NullType

    try:
        from sqlalchemy.sql.type_api import to_instance

        instance = to_instance(type_)
    except Exception:
        return None
    if isinstance(instance, NullType):
        return None
    try:
        text = str(instance.compile(dialect=dialect))
    except Exception:
        text = type(instance).__name__.upper()
        length = getattr(instance, "length", None)
        if isinstance(length, int):
            text += f"({length})"
    return column_type_from_text(text)


_TYPE_RE = re.compile(
    r"^\s*([A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*)\s*(?:\(([^)]*)\))?\s*(.*)$", re.DOTALL
)


def column_type_from_text(text: str) -> ColumnType:
    """Parse ``VARCHAR(255)``, ``NUMERIC(10, 2)``, ``INTEGER UNSIGNED`` into a ColumnType."""
    match = _TYPE_RE.match(text)
    if not match:
        return ColumnType(name=text.strip().upper(), text=text.strip())
    name, raw_args, rest = match.groups()
    words = f"{name} {rest}".upper().split()
    unsigned = "UNSIGNED" in words
    base = " ".join(word for word in name.upper().split() if word not in {"UNSIGNED", "ZEROFILL"})
    args: tuple[int, ...] = ()
    if raw_args:
        parts = [part.strip() for part in raw_args.split(",")]
        if all(part.isdigit() for part in parts):
            args = tuple(int(part) for part in parts)
    return ColumnType(name=base, args=args, unsigned=unsigned, text=text.strip())


def _column_def(column: Any, dialect: Dialect) -> ColumnDef:
    return ColumnDef(
        name=str(column.name),
        type=column_type(getattr(column, "type", None), dialect),
        nullable=getattr(column, "nullable", None),
    )


def operations_from_alembic(
    operation: alembic_ops.MigrateOperation, statement: Statement, dialect: Dialect
) -> tuple[Operation, ...]:
    """Normalised :class:`Operation` values for one Alembic operation object."""
    from alembic.operations import ops

    table = _table(operation)
    if isinstance(operation, ops.DropTableOp):
        return (Operation(kind=OpKind.DROP_TABLE, statement=statement, table=table),)
    if isinstance(operation, ops.CreateTableOp):
        columns = tuple(
            _column_def(column, dialect)
            for column in operation.columns
            if getattr(column, "name", None) is not None and hasattr(column, "type")
        )
        return (
            Operation(kind=OpKind.CREATE_TABLE, statement=statement, table=table, columns=columns),
        )
    if isinstance(operation, ops.AddColumnOp):
        definition = _column_def(operation.column, dialect)
        return (
            Operation(
                kind=OpKind.ADD_COLUMN,
                statement=statement,
                table=table,
                column=definition.name,
                new_type=definition.type,
                columns=(definition,),
            ),
        )
    if isinstance(operation, ops.DropColumnOp):
        return (
            Operation(
                kind=OpKind.DROP_COLUMN,
                statement=statement,
                table=table,
                column=operation.column_name,
            ),
        )
    if isinstance(operation, ops.AlterColumnOp):
        return _alter_column_operations(operation, statement, table, dialect)
    if isinstance(operation, ops.RenameTableOp):
        return (
            Operation(
                kind=OpKind.RENAME_TABLE,
                statement=statement,
                table=table,
                new_name=operation.new_table_name,
            ),
        )
    if isinstance(operation, ops.BulkInsertOp):
        return (Operation(kind=OpKind.INSERT, statement=statement, table=table),)
    if isinstance(
        operation,
        (
            ops.CreateIndexOp,
            ops.DropIndexOp,
            ops.AddConstraintOp,
            ops.DropConstraintOp,
            ops.CreateTableCommentOp,
            ops.DropTableCommentOp,
        ),
    ):
        return (Operation(kind=OpKind.OTHER_DDL, statement=statement, table=table),)
    name = type(operation).__name__
    return (
        Operation(
            kind=OpKind.UNANALYZABLE,
            statement=statement,
            table=table,
            reason=f"Alembic operation {name} could not be rendered offline",
        ),
    )


def _alter_column_operations(
    operation: alembic_ops.AlterColumnOp,
    statement: Statement,
    table: TableRef | None,
    dialect: Dialect,
) -> tuple[Operation, ...]:
    result: list[Operation] = []
    column = operation.column_name
    new_name = operation.modify_name
    if new_name is not None and new_name != column:
        result.append(
            Operation(
                kind=OpKind.RENAME_COLUMN,
                statement=statement,
                table=table,
                column=column,
                new_name=new_name,
            )
        )
    if operation.modify_type is not None:
        result.append(
            Operation(
                kind=OpKind.ALTER_COLUMN_TYPE,
                statement=statement,
                table=table,
                column=column,
                new_type=column_type(operation.modify_type, dialect),
                old_type=column_type(operation.existing_type, dialect),
            )
        )
    if not result:
        result.append(
            Operation(kind=OpKind.OTHER_DDL, statement=statement, table=table, column=column)
        )
    return tuple(result)


def _name(table: TableRef | None) -> str:
    return table.qualified if table else "?"


def describe_operation(operation: Any, dialect: Dialect) -> str:
    """Readable pseudo SQL for an Alembic operation that was not rendered."""
    from alembic.operations import ops

    table = _name(_table(operation))
    if isinstance(operation, ops.DropTableOp):
        return f"DROP TABLE {table}"
    if isinstance(operation, ops.CreateTableOp):
        columns = ", ".join(
            f"{c.name} {c.type or ''}".strip()
            for c in operations_from_alembic(operation, _EMPTY, dialect)[0].columns
        )
        return f"CREATE TABLE {table} ({columns})"
    if isinstance(operation, ops.AddColumnOp):
        kind = column_type(getattr(operation.column, "type", None), dialect)
        return f"ALTER TABLE {table} ADD COLUMN {operation.column.name} {kind or ''}".rstrip()
    if isinstance(operation, ops.DropColumnOp):
        return f"ALTER TABLE {table} DROP COLUMN {operation.column_name}"
    if isinstance(operation, ops.AlterColumnOp):
        parts = []
        if operation.modify_type is not None:
            parts.append(f"TYPE {column_type(operation.modify_type, dialect)}")
        if operation.modify_name is not None:
            parts.append(f"RENAME TO {operation.modify_name}")
        if operation.modify_nullable is not None:
            parts.append("DROP NOT NULL" if operation.modify_nullable else "SET NOT NULL")
        clause = " ".join(parts) or "(no change)"
        return f"ALTER TABLE {table} ALTER COLUMN {operation.column_name} {clause}"
    if isinstance(operation, ops.RenameTableOp):
        return f"ALTER TABLE {table} RENAME TO {operation.new_table_name}"
    if isinstance(operation, ops.CreateIndexOp):
        return f"CREATE INDEX {operation.index_name} ON {table}"
    if isinstance(operation, ops.DropIndexOp):
        return f"DROP INDEX {operation.index_name}"
    if isinstance(operation, ops.AddConstraintOp):
        return f"ALTER TABLE {table} ADD CONSTRAINT"
    if isinstance(operation, ops.DropConstraintOp):
        return f"ALTER TABLE {table} DROP CONSTRAINT {operation.constraint_name}"
    if isinstance(operation, ops.BulkInsertOp):
        return f"INSERT INTO {table} VALUES ... -- {len(operation.rows)} row(s)"
    if isinstance(operation, ops.ExecuteSQLOp):
        return str(operation.sqltext)
    return f"-- Alembic operation {type(operation).__name__} on {table}"


_EMPTY = Statement(sql="", file="", line=1)

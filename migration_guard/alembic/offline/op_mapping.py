"""Alembic operation objects as :class:`~migration_guard.analysis.model.Operation`
values, for operations whose rendered SQL does not tell the truth.

``alter_column`` keeps ``existing_type=`` so that a provable widening can be
recognised, which the rendered SQL no longer says; batch operations and any operation
whose rendering raises are judged here too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

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

_Handler = TypeVar("_Handler")


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


#: ``handler(operation, statement, table, dialect)`` -> the operation's :class:`Operation` values.
_ToOperations = Callable[[Any, Statement, "TableRef | None", "Dialect"], tuple[Operation, ...]]
#: ``handler(operation, table_text, dialect)`` -> readable pseudo SQL.
_ToText = Callable[[Any, str, "Dialect"], str]


def _handler(table: Mapping[type, _Handler], operation: object) -> _Handler | None:
    """The entry for the most specific class of ``operation`` (subclasses included, as
    Alembic's ``CreateForeignKeyOp`` is an ``AddConstraintOp``)."""
    for cls in type(operation).__mro__:
        handler = table.get(cls)
        if handler is not None:
            return handler
    return None


def operations_from_alembic(
    operation: alembic_ops.MigrateOperation, statement: Statement, dialect: Dialect
) -> tuple[Operation, ...]:
    """Normalised :class:`Operation` values for one Alembic operation object."""
    table = _table(operation)
    handler = _handler(_operation_handlers(), operation)
    if handler is not None:
        return handler(operation, statement, table, dialect)  # type: ignore[no-any-return]
    name = type(operation).__name__
    return (
        Operation(
            kind=OpKind.UNANALYZABLE,
            statement=statement,
            table=table,
            reason=f"Alembic operation {name} could not be rendered offline",
        ),
    )


def _single(kind: OpKind) -> _ToOperations:
    def build(
        _operation: Any, statement: Statement, table: TableRef | None, _dialect: Dialect
    ) -> tuple[Operation, ...]:
        return (Operation(kind=kind, statement=statement, table=table),)

    return build


def _create_table(
    operation: alembic_ops.CreateTableOp,
    statement: Statement,
    table: TableRef | None,
    dialect: Dialect,
) -> tuple[Operation, ...]:
    columns = tuple(
        _column_def(column, dialect)
        for column in operation.columns
        if getattr(column, "name", None) is not None and hasattr(column, "type")
    )
    return (Operation(kind=OpKind.CREATE_TABLE, statement=statement, table=table, columns=columns),)


def _add_column(
    operation: alembic_ops.AddColumnOp,
    statement: Statement,
    table: TableRef | None,
    dialect: Dialect,
) -> tuple[Operation, ...]:
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


def _drop_column(
    operation: alembic_ops.DropColumnOp,
    statement: Statement,
    table: TableRef | None,
    _dialect: Dialect,
) -> tuple[Operation, ...]:
    return (
        Operation(
            kind=OpKind.DROP_COLUMN, statement=statement, table=table, column=operation.column_name
        ),
    )


def _rename_table(
    operation: alembic_ops.RenameTableOp,
    statement: Statement,
    table: TableRef | None,
    _dialect: Dialect,
) -> tuple[Operation, ...]:
    return (
        Operation(
            kind=OpKind.RENAME_TABLE,
            statement=statement,
            table=table,
            new_name=operation.new_table_name,
        ),
    )


@functools.cache
def _operation_handlers() -> Mapping[type, _ToOperations]:
    # Built on first use: importing Alembic's ops is not free.
    from alembic.operations import ops

    other_ddl = _single(OpKind.OTHER_DDL)
    return {
        ops.DropTableOp: _single(OpKind.DROP_TABLE),
        ops.CreateTableOp: _create_table,
        ops.AddColumnOp: _add_column,
        ops.DropColumnOp: _drop_column,
        ops.AlterColumnOp: _alter_column_operations,
        ops.RenameTableOp: _rename_table,
        ops.BulkInsertOp: _single(OpKind.INSERT),
        ops.CreateIndexOp: other_ddl,
        ops.DropIndexOp: other_ddl,
        ops.AddConstraintOp: other_ddl,
        ops.DropConstraintOp: other_ddl,
        ops.CreateTableCommentOp: other_ddl,
        ops.DropTableCommentOp: other_ddl,
    }


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
    table = _name(_table(operation))
    handler = _handler(_text_handlers(), operation)
    if handler is not None:
        return handler(operation, table, dialect)  # type: ignore[no-any-return]
    return f"-- Alembic operation {type(operation).__name__} on {table}"


def _create_table_text(operation: Any, table: str, dialect: Dialect) -> str:
    columns = ", ".join(
        f"{c.name} {c.type or ''}".strip()
        for c in operations_from_alembic(operation, _EMPTY, dialect)[0].columns
    )
    return f"CREATE TABLE {table} ({columns})"


def _add_column_text(operation: Any, table: str, dialect: Dialect) -> str:
    kind = column_type(getattr(operation.column, "type", None), dialect)
    return f"ALTER TABLE {table} ADD COLUMN {operation.column.name} {kind or ''}".rstrip()


def _alter_column_text(operation: Any, table: str, dialect: Dialect) -> str:
    parts = []
    if operation.modify_type is not None:
        parts.append(f"TYPE {column_type(operation.modify_type, dialect)}")
    if operation.modify_name is not None:
        parts.append(f"RENAME TO {operation.modify_name}")
    if operation.modify_nullable is not None:
        parts.append("DROP NOT NULL" if operation.modify_nullable else "SET NOT NULL")
    clause = " ".join(parts) or "(no change)"
    return f"ALTER TABLE {table} ALTER COLUMN {operation.column_name} {clause}"


@functools.cache
def _text_handlers() -> Mapping[type, _ToText]:
    from alembic.operations import ops

    return {
        ops.DropTableOp: lambda _op, table, _d: f"DROP TABLE {table}",
        ops.CreateTableOp: _create_table_text,
        ops.AddColumnOp: _add_column_text,
        ops.DropColumnOp: lambda op, table, _d: f"ALTER TABLE {table} DROP COLUMN {op.column_name}",
        ops.AlterColumnOp: _alter_column_text,
        ops.RenameTableOp: lambda op, table, _d: (
            f"ALTER TABLE {table} RENAME TO {op.new_table_name}"
        ),
        ops.CreateIndexOp: lambda op, table, _d: f"CREATE INDEX {op.index_name} ON {table}",
        ops.DropIndexOp: lambda op, _table, _d: f"DROP INDEX {op.index_name}",
        ops.AddConstraintOp: lambda _op, table, _d: f"ALTER TABLE {table} ADD CONSTRAINT",
        ops.DropConstraintOp: lambda op, table, _d: (
            f"ALTER TABLE {table} DROP CONSTRAINT {op.constraint_name}"
        ),
        ops.BulkInsertOp: lambda op, table, _d: (
            f"INSERT INTO {table} VALUES ... -- {len(op.rows)} row(s)"
        ),
        ops.ExecuteSQLOp: lambda op, _table, _d: str(op.sqltext),
    }


_EMPTY = Statement(sql="", file="", line=1)

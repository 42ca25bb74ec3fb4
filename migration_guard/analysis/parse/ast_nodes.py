"""Reading the sqlglot AST: table names, column types, and the cached parser.

Every sqlglot import of the analysis lives in this package, which the quick
path never loads.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import sqlglot
from sqlglot import exp

from migration_guard.analysis import coltypes
from migration_guard.analysis.coltypes import sqlglot_type_name
from migration_guard.analysis.model import ColumnDef, ColumnType, TableRef

# sqlglot logs a warning for every statement it degrades to ``Command``; those
# are expected here (the fallback handles them) and must not reach the user.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_dialect_cache: dict[str, Any] = {}
_thread_state = threading.local()


def table_ref(node: Any) -> TableRef | None:
    if isinstance(node, exp.Schema):
        node = node.this
    if not isinstance(node, exp.Table):
        return None
    name = node.name
    if not name:
        return None
    return TableRef(name=name, schema=node.text("db") or None)


def schema_name(node: Any) -> TableRef | None:
    """``CREATE/DROP DATABASE x`` puts x in ``this``; ``... SCHEMA x`` in ``db``."""
    if isinstance(node, exp.Table):
        name = node.name or node.text("db")
        return TableRef(name=name) if name else None
    return None


def column_type(node: Any, family: str) -> ColumnType | None:
    """The :class:`ColumnType` of a sqlglot ``DataType`` node (None for anything else)."""
    if not isinstance(node, exp.DataType):
        return None
    raw_name = node.this.name if hasattr(node.this, "name") else str(node.this)
    type_name, unsigned = sqlglot_type_name(raw_name, node.args.get("kind"))
    args: list[int] = []
    for param in node.expressions:
        value = param.this if isinstance(param, exp.DataTypeParam) else param
        if isinstance(value, exp.Literal) and not value.is_string:
            try:
                args.append(int(value.this))
            except ValueError:
                continue
    params = _type_params(node)
    if params is None:
        try:
            text = str(node.sql())
        except Exception:  # rendering is cosmetic
            text = type_name
        return ColumnType(name=type_name, args=tuple(args), unsigned=unsigned, text=text)
    return coltypes.column_type(type_name, params, args, unsigned=unsigned)


def _type_params(node: Any) -> list[str] | None:
    """The type's parameters as users write them; None when one is an expression.

    Cheap for the common shapes: rendering through sqlglot's generator costs as
    much as parsing the statement.
    """
    params: list[str] = []
    for param in node.expressions:
        value = param.this if isinstance(param, exp.DataTypeParam) else param
        if isinstance(value, exp.Literal):
            params.append(f"'{value.this}'" if value.is_string else str(value.this))
        elif isinstance(value, exp.Var):
            params.append(str(value.this))
        else:
            return None
    return params


def column_def(node: Any, family: str) -> ColumnDef:
    nullable: bool | None = None
    for constraint in node.args.get("constraints") or ():
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint):
            nullable = bool(kind.args.get("allow_null"))
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            nullable = False
    return ColumnDef(
        name=node.name, type=column_type(node.args.get("kind"), family), nullable=nullable
    )


NO_OP_NODES: tuple[type, ...] = tuple(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in (
            "Set",
            "Use",
            "Transaction",
            "Commit",
            "Rollback",
            "Pragma",
            "Show",
            "Describe",
            "Kill",
            "Grant",
            "Revoke",
            "Attach",
            "Detach",
            "Analyze",
            "Cache",
            "Uncache",
            "Refresh",
            "Semicolon",
        )
    )
    if isinstance(cls, type)
)


def parse_sql(family: str, sql: str) -> list[Any]:
    """``sqlglot.parse`` with the tokenizer and parser reused across statements."""
    cached = getattr(_thread_state, family or "default", None)
    if cached is None:
        dialect = get_dialect(family)
        cached = (dialect.tokenizer(), dialect.parser())
        setattr(_thread_state, family or "default", cached)
    tokenizer, parser = cached
    return list(parser.parse(tokenizer.tokenize(sql), sql))


def get_dialect(family: str) -> Any:
    dialect = _dialect_cache.get(family)
    if dialect is None:
        dialect = sqlglot.Dialect.get_or_raise(family or None)
        _dialect_cache[family] = dialect
    return dialect


def command_text(command: Any) -> str:
    expression = command.args.get("expression")
    rest = expression.this if isinstance(expression, exp.Literal) else (expression or "")
    return f"{command.this} {rest}"

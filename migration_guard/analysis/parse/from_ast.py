"""Turn sqlglot ASTs into :class:`Operation` values.

Only the few node shapes that matter to the rules are mapped, through the
type-keyed tables at the end of this module; any other statement is
``UNANALYZABLE`` (fail closed), any other ``ALTER TABLE`` action too unless it
is known to touch no data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlglot import exp

from migration_guard.analysis.model import ColumnDef, Operation, OpKind, TableRef
from migration_guard.analysis.parse.ast_nodes import (
    NO_OP_NODES,
    column_def,
    column_type,
    schema_name,
    table_ref,
)
from migration_guard.analysis.parse.base import ParserBase
from migration_guard.analysis.parse.where import is_tautology
from migration_guard.analysis.tokens import guess_table, tokenize

_BENIGN_ALTER_ACTIONS: tuple[type, ...] = tuple(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in (
            "AddConstraint",
            "RenameIndex",
            "ForceProperty",
            "DropPrimaryKey",
            "AlterSet",
            "AlterIndex",
            "Property",
        )
    )
    if isinstance(cls, type)
)


class AstMapper(ParserBase):
    def from_ast(self, node: Any, sql: str) -> list[Operation]:
        """The operations of one parsed statement, by the most specific node type known."""
        for cls in type(node).__mro__:
            handler = _STATEMENTS.get(cls)
            if handler is not None:
                return handler(self, node, sql)
        if isinstance(node, NO_OP_NODES):
            return [self.op(OpKind.NO_OP)]
        return self.unanalyzable(
            f"not a recognised SQL statement ({type(node).__name__})",
            guess_table(tokenize(sql, self.family), self.family),
        )

    def writable_ctes(self, node: Any, sql: str) -> list[Operation]:
        """PostgreSQL ``WITH d AS (DELETE ... RETURNING *) SELECT ...`` modifies data."""
        with_clause = node.args.get("with_") or node.args.get("with")
        if with_clause is None:
            return []
        operations: list[Operation] = []
        for cte in with_clause.expressions:
            if isinstance(cte.this, (exp.Delete, exp.Update, exp.Insert, exp.Merge)):
                operations.extend(self.from_ast(cte.this, sql))
        return operations

    def query(self, node: Any, sql: str) -> list[Operation]:
        return [*self.writable_ctes(node, sql), self.op(OpKind.SELECT)]

    def truncate(self, node: Any, sql: str) -> list[Operation]:
        return [
            self.op(OpKind.TRUNCATE_TABLE, ref)
            for ref in map(table_ref, node.expressions)
            if ref is not None
        ] or self.unanalyzable("TRUNCATE without a recognisable table")

    def insert(self, node: Any, sql: str) -> list[Operation]:
        return [self.op(OpKind.INSERT, table_ref(node.this))]

    def merge(self, node: Any, sql: str) -> list[Operation]:
        return [self.op(OpKind.UPDATE, table_ref(node.this), has_where=True)]

    def copy(self, node: Any, sql: str) -> list[Operation]:
        kind = OpKind.INSERT if node.args.get("kind") else OpKind.SELECT
        return [self.op(kind, table_ref(node.this))]

    def comment(self, node: Any, sql: str) -> list[Operation]:
        return [self.op(OpKind.OTHER_DDL, table_ref(node.this))]

    def create(self, node: Any, sql: str) -> list[Operation]:
        kind = str(node.args.get("kind") or "").upper()
        target = node.this
        if kind == "TABLE":
            table = table_ref(target)
            columns: tuple[ColumnDef, ...] = ()
            if isinstance(target, exp.Schema):
                columns = tuple(
                    column_def(column, self.family)
                    for column in target.expressions
                    if isinstance(column, exp.ColumnDef)
                )
            created = self.op(OpKind.CREATE_TABLE, table, columns=columns)
            if node.args.get("replace"):
                # MariaDB ``CREATE OR REPLACE TABLE`` drops an existing table first.
                return [self.op(OpKind.DROP_TABLE, table, if_exists=True), created]
            return [created]
        if kind in ("DATABASE", "SCHEMA"):
            return [self.op(OpKind.OTHER_DDL, schema_name(target))]
        if kind == "INDEX" and isinstance(target, exp.Index):
            return [self.op(OpKind.OTHER_DDL, table_ref(target.args.get("table")))]
        if kind == "TRIGGER":
            properties = node.args.get("properties")
            table = None
            if properties is not None:
                for prop in properties.expressions:
                    table = table or table_ref(prop.args.get("table"))
            return [self.op(OpKind.OTHER_DDL, table)]
        if kind in ("VIEW", "SEQUENCE"):
            return [self.op(OpKind.OTHER_DDL, table_ref(target))]
        return [self.op(OpKind.OTHER_DDL)]

    def drop(self, node: Any, sql: str) -> list[Operation]:
        kind = str(node.args.get("kind") or "").upper()
        targets = node.args.get("tables") or []
        if_exists = bool(node.args.get("exists"))
        if kind in ("DATABASE", "SCHEMA"):
            refs = [schema_name(target) for target in targets]
            return [
                self.op(OpKind.DROP_DATABASE, ref, if_exists=if_exists)
                for ref in refs
                if ref is not None
            ] or self.unanalyzable(f"DROP {kind} without a recognisable name")
        if kind == "TABLE" and not node.args.get("temporary"):
            refs = [table_ref(target) for target in targets]
            return [
                self.op(OpKind.DROP_TABLE, ref, if_exists=if_exists)
                for ref in refs
                if ref is not None
            ] or self.unanalyzable("DROP TABLE without a recognisable table")
        on = node.args.get("cluster")
        if isinstance(on, exp.OnProperty):
            return [self.op(OpKind.OTHER_DDL, table_ref(on.this))]
        if kind in ("VIEW", "TABLE"):
            return [self.op(OpKind.OTHER_DDL, table_ref(target)) for target in targets] or [
                self.op(OpKind.OTHER_DDL)
            ]
        return [self.op(OpKind.OTHER_DDL)]

    def alter(self, node: Any, sql: str) -> list[Operation]:
        kind = str(node.args.get("kind") or "").upper()
        table = table_ref(node.this)
        if kind != "TABLE":
            return [self.op(OpKind.OTHER_DDL, table if kind in ("VIEW",) else None)]
        operations: list[Operation] = []
        options = node.args.get("options") or []
        # PostgreSQL ``RENAME c TO d`` (no COLUMN keyword) comes back as a table
        # rename to ``c`` plus a stray ``TO d`` option: it is a column rename.
        stray_to = next((o for o in options if type(o).__name__ == "ToTableProperty"), None)
        for action in node.args.get("actions") or ():
            if stray_to is not None and isinstance(action, exp.AlterRename):
                operations.append(
                    self.op(
                        OpKind.RENAME_COLUMN,
                        table,
                        column=action.this.name,
                        new_name=stray_to.this.name,
                    )
                )
                continue
            operations.extend(self.alter_action(table, action))
        for option in options:
            if isinstance(option, exp.EngineProperty):
                operations.append(
                    self.op(OpKind.CHANGE_ENGINE, table, value=option.name or option.sql())
                )
        return operations or [self.op(OpKind.OTHER_DDL, table)]

    def alter_action(self, table: TableRef | None, action: Any) -> list[Operation]:
        for cls in type(action).__mro__:
            handler = _ALTER_ACTIONS.get(cls)
            if handler is not None:
                return handler(self, table, action)
        if isinstance(action, _BENIGN_ALTER_ACTIONS):
            return [self.op(OpKind.OTHER_DDL, table)]
        return self.unanalyzable(
            f"unrecognised ALTER TABLE action ({type(action).__name__})", table
        )

    def drop_action(self, table: TableRef | None, action: Any) -> list[Operation]:
        if str(action.args.get("kind") or "").upper() == "COLUMN":
            if_exists = bool(action.args.get("exists"))
            return [
                self.op(OpKind.DROP_COLUMN, table, column=column.name, if_exists=if_exists)
                for column in action.args.get("tables") or ()
            ]
        return [self.op(OpKind.OTHER_DDL, table)]

    def add_column(self, table: TableRef | None, action: Any) -> list[Operation]:
        column = column_def(action, self.family)
        return [
            self.op(
                OpKind.ADD_COLUMN,
                table,
                column=column.name,
                new_type=column.type,
                columns=(column,),
            )
        ]

    def modify_column(self, table: TableRef | None, action: Any) -> list[Operation]:
        column = column_def(action.this, self.family)
        renamed_from = action.args.get("rename_from")
        old_name = renamed_from.name if renamed_from is not None else column.name
        return self.changed_column(table, old_name, column)

    def alter_column(self, table: TableRef | None, action: Any) -> list[Operation]:
        dtype = action.args.get("dtype")
        if dtype is not None:
            return [
                self.op(
                    OpKind.ALTER_COLUMN_TYPE,
                    table,
                    column=action.name,
                    new_type=column_type(dtype, self.family),
                )
            ]
        return [self.op(OpKind.OTHER_DDL, table, column=action.name)]

    def rename_column(self, table: TableRef | None, action: Any) -> list[Operation]:
        return [
            self.op(
                OpKind.RENAME_COLUMN,
                table,
                column=action.this.name,
                new_name=action.args["to"].name,
            )
        ]

    def rename_table(self, table: TableRef | None, action: Any) -> list[Operation]:
        new = table_ref(action.this)
        return [self.op(OpKind.RENAME_TABLE, table, new_name=new.qualified if new else None)]

    def delete(self, node: Any, sql: str) -> list[Operation]:
        target = node.this
        sources = _sources(target)
        explicit = node.args.get("tables")
        if explicit:
            aliases = _alias_map(sources + list(_as_list(node.args.get("using"))))
            tables = [_resolve(ref, aliases) for ref in map(table_ref, explicit)]
        elif node.args.get("using") and self.traits.deletes_from_using_sources:
            tables = [table_ref(source) for source in sources]
        else:
            tables = [table_ref(target)]
        where = node.args.get("where")
        has_where = where is not None
        tautology = has_where and is_tautology(where.this)
        refs = _unique(ref for ref in tables if ref is not None)
        return [
            self.op(OpKind.DELETE, ref, has_where=has_where, where_is_tautology=tautology)
            for ref in refs
        ] or [self.op(OpKind.DELETE, None, has_where=has_where, where_is_tautology=tautology)]

    def update(self, node: Any, sql: str) -> list[Operation]:
        sources = _sources(node.this)
        first = table_ref(node.this)
        refs: list[TableRef | None] = [first]
        if len(sources) > 1:
            aliases = _alias_map(sources)
            refs = []
            for assignment in node.expressions:
                column = assignment.this if isinstance(assignment, exp.EQ) else None
                qualifier = column.table if isinstance(column, exp.Column) else ""
                if qualifier and qualifier.lower() in aliases:
                    refs.append(aliases[qualifier.lower()])
                else:
                    refs.append(first)
        where = node.args.get("where")
        has_where = where is not None
        tautology = has_where and is_tautology(where.this)
        return [
            self.op(OpKind.UPDATE, ref, has_where=has_where, where_is_tautology=tautology)
            for ref in _unique(refs)
        ]

    # -- token fallback


def _as_list(value: Any) -> list[Any]:
    if value is None or value is False:
        return []
    return list(value) if isinstance(value, list) else [value]


def _sources(table: Any) -> list[Any]:
    """A FROM item and the tables joined to it."""
    if table is None:
        return []
    return [table] + [join.this for join in table.args.get("joins") or ()]


def _alias_map(sources: Iterable[Any]) -> dict[str, TableRef]:
    aliases: dict[str, TableRef] = {}
    for source in sources:
        for item in _sources(source):
            ref = table_ref(item)
            if ref is None:
                continue
            aliases.setdefault(ref.name.lower(), ref)
            alias = item.alias if isinstance(item, exp.Table) else ""
            if alias:
                aliases[alias.lower()] = ref
    return aliases


def _resolve(ref: TableRef | None, aliases: dict[str, TableRef]) -> TableRef | None:
    if ref is None or ref.schema:
        return ref
    return aliases.get(ref.name.lower(), ref)


def _unique(refs: Iterable[TableRef | None]) -> list[TableRef | None]:
    seen: list[TableRef | None] = []
    for ref in refs:
        if ref not in seen:
            seen.append(ref)
    return seen


_StatementHandler = Callable[[AstMapper, Any, str], list[Operation]]
_ActionHandler = Callable[[AstMapper, "TableRef | None", Any], list[Operation]]

#: Statement node type -> its mapping, keyed by type like sqlglot's own
#: ``Generator.TRANSFORMS``; lookups walk the node's MRO, so that ``Select`` and
#: ``Union`` find the ``Query`` entry.
_STATEMENTS: dict[type, _StatementHandler] = {
    exp.Create: AstMapper.create,
    exp.Drop: AstMapper.drop,
    exp.Alter: AstMapper.alter,
    exp.TruncateTable: AstMapper.truncate,
    exp.Delete: AstMapper.delete,
    exp.Update: AstMapper.update,
    exp.Insert: AstMapper.insert,
    exp.Merge: AstMapper.merge,
    exp.Copy: AstMapper.copy,
    exp.Query: AstMapper.query,
    exp.Values: AstMapper.query,
    exp.Comment: AstMapper.comment,
}
#: ``ALTER TABLE`` action node type -> its mapping.
_ALTER_ACTIONS: dict[type, _ActionHandler] = {
    exp.Drop: AstMapper.drop_action,
    exp.ColumnDef: AstMapper.add_column,
    exp.ModifyColumn: AstMapper.modify_column,
    exp.AlterColumn: AstMapper.alter_column,
    exp.RenameColumn: AstMapper.rename_column,
    exp.AlterRename: AstMapper.rename_table,
}

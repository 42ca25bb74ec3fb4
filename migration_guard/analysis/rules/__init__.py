"""The rules of the static check: one module per rule, discovered at run time.

Each module in this package exposes ``RULE``, a :class:`Rule`. Its docstring is
the rule's long description (why it matters, what to do instead); the file
name is the rule id with underscores (``drop_column.py`` -> ``drop-column``).

A rule looks at one :class:`~migration_guard.analysis.model.Operation` at a time
and yields :class:`Violation` objects. The analyzer turns them into findings and
decides the default severity from the protected-tables configuration; the rule
only needs to say *what* is wrong. The :class:`RuleContext` gives rules the
little they need to know about the migration so far: which tables were created
in the same file or revision (Atlas-style exemption) and which column types are
already known (to recognise provable widenings).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from migration_guard.analysis.model import ColumnType, Operation, OpKind, Severity, TableRef
from migration_guard.config import ProtectedTables
from migration_guard.errors import UnknownNameError

__all__ = [
    "Rule",
    "RuleContext",
    "Violation",
    "all_rules",
    "get_rule",
    "rule_ids",
    "rules_for_kind",
]

RULE_ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")

_IF_NOT_EXISTS = re.compile(r"\bIF\s+NOT\s+EXISTS\b", re.IGNORECASE)


def _says_if_not_exists(sql: str) -> bool:
    """Whether ``sql`` holds ``IF NOT EXISTS``: an ASCII text without the letters ``if``
    (in any case) cannot, and is told so without the case-insensitive search."""
    if sql.isascii() and not any(spelling in sql for spelling in ("IF", "if", "If", "iF")):
        return False
    return _IF_NOT_EXISTS.search(sql) is not None


#: The operations :meth:`RuleContext.observe` learns from.
_SCHEMA_CHANGES = frozenset(
    {
        OpKind.CREATE_TABLE,
        OpKind.DROP_TABLE,
        OpKind.RENAME_TABLE,
        OpKind.ADD_COLUMN,
        OpKind.DROP_COLUMN,
        OpKind.RENAME_COLUMN,
        OpKind.ALTER_COLUMN_TYPE,
    }
)


@dataclass(frozen=True, init=False)
class Violation:
    """What a rule found wrong with one operation.

    ``severity`` None lets the analyzer choose: error on a protected table,
    warning otherwise.
    """

    message: str
    table: TableRef | None
    severity: Severity | None = None

    def __init__(
        self, message: str, table: TableRef | None, severity: Severity | None = None
    ) -> None:
        # As the value classes of model.FAST_INIT: one per finding.
        self.__dict__.update(message=message, table=table, severity=severity)


CheckFunction = Callable[[Operation, "RuleContext"], Iterable[Violation]]


def _never(operation: Operation, context: RuleContext) -> Iterable[Violation]:
    """The check of rules whose findings the analyzer itself emits."""
    return ()


@dataclass(frozen=True)
class Rule:
    """A named check over operations of some kinds."""

    id: str
    summary: str
    description: str
    hint: str
    kinds: frozenset[OpKind] = frozenset()
    check: CheckFunction = _never

    def __post_init__(self) -> None:
        if not RULE_ID_PATTERN.match(self.id):
            raise ValueError(f"rule id {self.id!r} is not kebab-case")
        object.__setattr__(self, "description", inspect.cleandoc(self.description))


def unit_of(operation: Operation) -> str:
    """The exemption scope of an operation: its revision, else its file."""
    return operation.statement.unit or operation.statement.file


def table_key(table: TableRef) -> tuple[str | None, str]:
    return (table.schema.lower() if table.schema else None, table.name.lower())


def renamed_table(old: TableRef, new_name: str) -> TableRef:
    """The TableRef a rename produces; an unqualified new name keeps the old schema."""
    schema, dot, name = new_name.rpartition(".")
    if dot and schema and name:
        return TableRef(name=name, schema=schema)
    return TableRef(name=new_name, schema=old.schema)


@dataclass
class RuleContext:
    """What rules may know about the migration analysed so far.

    The analyzer calls :meth:`observe` after the rules have seen an operation,
    so that during a check the state describes the schema *before* it.
    Tables are matched case-insensitively and exactly by schema: ``app.t`` and
    ``t`` are different tables here, which errs on the side of a finding. For
    the same reason ``CREATE TABLE IF NOT EXISTS`` creates nothing here: the
    table may already have existed, with data.
    """

    dialect: str
    protected: ProtectedTables = field(default_factory=ProtectedTables)
    _created_units: dict[tuple[str | None, str], set[str]] = field(default_factory=dict)
    _column_types: dict[tuple[str | None, str], dict[str, ColumnType]] = field(default_factory=dict)
    #: New names of protected tables renamed earlier: the rows (and the protection)
    #: went with them, so approving the rename does not approve dropping them later.
    _renamed_protected: set[tuple[str | None, str]] = field(default_factory=set)

    def is_protected(self, table: TableRef | None) -> bool:
        """Whether findings on ``table`` are errors; an unknown table is protected
        only when every table is."""
        if table is None:
            return self.protected.protects_everything
        if self._renamed_protected and table_key(table) in self._renamed_protected:
            return True
        return self.protected.is_protected(table.name, table.schema)

    def created_in_unit(self, table: TableRef | None, unit: str) -> bool:
        """Whether ``table`` was created earlier in ``unit`` (and not dropped since)."""
        if table is None or not self._created_units:
            return False
        return unit in self._created_units.get(table_key(table), ())

    def known_type(self, table: TableRef | None, column: str | None) -> ColumnType | None:
        """The type ``column`` had according to earlier statements, if any."""
        if table is None or column is None:
            return None
        types = self._column_types.get(table_key(table))
        return types.get(column.lower()) if types is not None else None

    def observe(self, operation: Operation) -> None:
        """Apply ``operation`` to the running schema state."""
        table = operation.table
        kind = operation.kind
        if kind is OpKind.DROP_DATABASE and table is not None:
            self._forget_schema(table.name.lower())
            return
        if table is None or kind not in _SCHEMA_CHANGES:  # most operations change no schema
            return
        key = table_key(table)
        if kind is OpKind.CREATE_TABLE:
            if operation.if_exists or _says_if_not_exists(operation.statement.sql):
                # The table may have existed, with data and other column types.
                return
            self._created_units.setdefault(key, set()).add(unit_of(operation))
            self._column_types[key] = {
                column.name.lower(): column.type
                for column in operation.columns
                if column.type is not None
            }
        elif kind is OpKind.DROP_TABLE:
            self._created_units.pop(key, None)
            self._column_types.pop(key, None)
        elif kind is OpKind.RENAME_TABLE and operation.new_name:
            new_key = table_key(renamed_table(table, operation.new_name))
            if self.is_protected(table) and key not in self._created_units:
                self._renamed_protected.add(new_key)
            units = self._created_units.pop(key, None)
            if units is not None:
                self._created_units[new_key] = units
            self._column_types[new_key] = self._column_types.pop(key, {})
        elif kind is OpKind.ADD_COLUMN:
            types = self._column_types.setdefault(key, {})
            for column in operation.columns:
                self._set_type(types, column.name, column.type)
            if operation.column and not operation.columns:
                self._set_type(types, operation.column, operation.new_type)
        elif kind is OpKind.DROP_COLUMN and operation.column:
            self._column_types.get(key, {}).pop(operation.column.lower(), None)
        elif kind is OpKind.RENAME_COLUMN and operation.column and operation.new_name:
            types = self._column_types.get(key, {})
            previous = types.pop(operation.column.lower(), None)
            self._set_type(types, operation.new_name, previous)
        elif kind is OpKind.ALTER_COLUMN_TYPE and operation.column:
            types = self._column_types.setdefault(key, {})
            types.pop(operation.column.lower(), None)
            self._set_type(types, operation.new_name or operation.column, operation.new_type)

    def forget(self, operation: Operation) -> None:
        """Apply an operation that may or may not run (one branch of an ``IF``, one
        alternative of dynamic SQL): forget what is known about the tables it touches,
        so no later statement is exempted or judged a widening on its account."""
        if operation.kind is OpKind.DROP_DATABASE:
            self.observe(operation)
            return
        table = operation.table
        if table is None or operation.kind not in _SCHEMA_CHANGES:
            return
        keys = [table_key(table)]
        if operation.kind is OpKind.RENAME_TABLE and operation.new_name:
            keys.append(table_key(renamed_table(table, operation.new_name)))
            if self.is_protected(table):  # it may run: the new name may hold the rows
                self._renamed_protected.add(keys[-1])
        for key in keys:
            # A table created in the unit stays so when its columns change; a CREATE
            # that may not run exempts nothing; a DROP or RENAME that may run ends it.
            if operation.kind in (OpKind.DROP_TABLE, OpKind.RENAME_TABLE):
                self._created_units.pop(key, None)
            self._column_types.pop(key, None)

    def fork(self) -> RuleContext:
        """A copy whose changes do not reach this context."""
        return RuleContext(
            dialect=self.dialect,
            protected=self.protected,
            _created_units={key: set(units) for key, units in self._created_units.items()},
            _column_types={key: dict(types) for key, types in self._column_types.items()},
            _renamed_protected=set(self._renamed_protected),
        )

    @staticmethod
    def _set_type(types: dict[str, ColumnType], column: str, type_: ColumnType | None) -> None:
        if type_ is None:
            types.pop(column.lower(), None)
        else:
            types[column.lower()] = type_

    def _forget_schema(self, schema: str) -> None:
        for mapping in (self._created_units, self._column_types):
            for key in [key for key in mapping if key[0] == schema]:
                del mapping[key]


def all_rules() -> list[Rule]:
    """Every rule of this package, sorted by id (modules are imported once)."""
    return list(_discover())


#: Module -> the operation kinds its rule looks at (``RULE.kinds``), so that a check
#: imports only the rules its operations need. tests/unit/test_rule_docs.py holds it
#: to the modules; a module missing here is imported for every kind all the same.
RULE_MODULE_KINDS: dict[str, frozenset[OpKind]] = {
    "alter_column_type": frozenset({OpKind.ALTER_COLUMN_TYPE}),
    "change_engine": frozenset({OpKind.CHANGE_ENGINE}),
    "convert_charset": frozenset({OpKind.CONVERT_CHARSET}),
    "delete_without_where": frozenset({OpKind.DELETE}),
    "drop_column": frozenset({OpKind.DROP_COLUMN}),
    "drop_database": frozenset({OpKind.DROP_DATABASE}),
    "drop_partition": frozenset({OpKind.DROP_PARTITION, OpKind.TRUNCATE_PARTITION}),
    "drop_table": frozenset({OpKind.DROP_TABLE}),
    "rename_column": frozenset({OpKind.RENAME_COLUMN}),
    "rename_table": frozenset({OpKind.RENAME_TABLE}),
    "suppression_without_reason": frozenset(),
    "truncate_table": frozenset({OpKind.TRUNCATE_TABLE}),
    "unanalyzable": frozenset({OpKind.UNANALYZABLE}),
    "unused_suppression": frozenset(),
    "update_without_where": frozenset({OpKind.UPDATE}),
}


def _rule_module_names() -> list[str]:
    """The rule modules of this package (one rule per file), by name.

    Read off the directory: importing :mod:`pkgutil` costs a short check more than the
    listing; a package that is not a directory (a zip import) asks the import system.
    """
    try:
        names = {
            entry.removesuffix(".py")
            for directory in __path__
            for entry in os.listdir(directory)
            if entry.endswith(".py")
        }
    except OSError:
        import pkgutil

        names = {module_info.name for module_info in pkgutil.iter_modules(__path__)}
    return sorted(name for name in names if not name.startswith("_"))


def _load(module_name: str) -> Rule:
    module = importlib.import_module(f"{__name__}.{module_name}")
    rule = getattr(module, "RULE", None)
    if not isinstance(rule, Rule):
        raise TypeError(f"{module.__name__} does not define RULE = Rule(...)")
    return rule


@functools.cache
def _discover() -> tuple[Rule, ...]:
    return tuple(sorted(map(_load, _rule_module_names()), key=lambda rule: rule.id))


def rule_ids() -> list[str]:
    return [rule.id for rule in all_rules()]


def get_rule(rule_id: str) -> Rule:
    """The rule called ``rule_id``; :class:`UnknownNameError` lists the known ids."""
    for rule in all_rules():
        if rule.id == rule_id:
            return rule
    raise UnknownNameError("rule", rule_id, rule_ids())


@functools.cache
def _unlisted_modules() -> tuple[str, ...]:
    """Rule modules that :data:`RULE_MODULE_KINDS` does not know: imported for every kind."""
    return tuple(name for name in _rule_module_names() if name not in RULE_MODULE_KINDS)


@functools.cache
def rules_for_kind(kind: OpKind) -> tuple[Rule, ...]:
    """The rules that look at operations of ``kind``, sorted by id.

    Imports only their modules (and any module :data:`RULE_MODULE_KINDS` does not list),
    not the whole catalogue: a check loads the rules its operations need.
    """
    names = [name for name, kinds in RULE_MODULE_KINDS.items() if kind in kinds]
    rules = [_load(name) for name in (*names, *_unlisted_modules())]
    return tuple(sorted((rule for rule in rules if kind in rule.kinds), key=lambda r: r.id))

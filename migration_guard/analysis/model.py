"""The data that flows through the static check.

``Statement`` (text with its source position) -> ``Operation`` (what it does to
which table) -> ``Finding`` (what a rule thinks of it). All three are plain,
immutable values so that every stage can be tested without a database.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field

#: The classes below that a check makes per statement keep every dataclass
#: behaviour (frozen, ``==``, ``hash``, ``repr``, ``dataclasses.replace``) but
#: write their own ``__init__``: a frozen dataclass's generated one sets each
#: field through ``object.__setattr__``, several times slower than filling the
#: instance dictionary at once. tests/unit/test_model.py holds each ``__init__``
#: to the fields.
#: Every suppression comment holds it (case-insensitively); see :mod:`.suppress`.
SUPPRESSION_MARKER = "migration-guard"
FAST_INIT = ("Statement", "TableRef", "ColumnType", "ColumnDef", "Operation", "Finding")


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, init=False)
class Statement:
    """One SQL statement and where it came from.

    ``line``/``column`` are 1-based and point at what the user wrote: the first
    character of the statement in a ``.sql`` file, or the ``op.`` call in an
    Alembic revision file that produced the generated SQL.

    ``unit`` groups statements that belong together for exemptions such as
    "dropping a table created earlier in the same file or revision" (the file
    path for SQL files, the revision id for Alembic revisions).
    """

    sql: str
    file: str
    line: int
    column: int = 1
    unit: str = ""
    end_line: int | None = None
    #: Operations already known from a higher-level source (Alembic operation
    #: objects) when no SQL could be rendered; the parser is skipped for them.
    known_operations: tuple[Operation, ...] = ()

    def __init__(
        self,
        sql: str,
        file: str,
        line: int,
        column: int = 1,
        unit: str = "",
        end_line: int | None = None,
        known_operations: tuple[Operation, ...] = (),
    ) -> None:
        # See FAST_INIT: a check makes one per statement.
        self.__dict__.update(
            sql=sql,
            file=file,
            line=line,
            column=column,
            unit=unit,
            end_line=end_line,
            known_operations=known_operations,
        )


class OpKind(str, enum.Enum):
    """What an operation does. Rules dispatch on this."""

    CREATE_TABLE = "create-table"
    DROP_TABLE = "drop-table"
    DROP_DATABASE = "drop-database"
    TRUNCATE_TABLE = "truncate-table"
    ADD_COLUMN = "add-column"
    DROP_COLUMN = "drop-column"
    RENAME_TABLE = "rename-table"
    RENAME_COLUMN = "rename-column"
    ALTER_COLUMN_TYPE = "alter-column-type"
    DROP_PARTITION = "drop-partition"
    TRUNCATE_PARTITION = "truncate-partition"
    CHANGE_ENGINE = "change-engine"
    CONVERT_CHARSET = "convert-charset"
    DELETE = "delete"
    UPDATE = "update"
    INSERT = "insert"
    SELECT = "select"
    #: Anything else that touches ``table`` without destroying data (indexes, comments...).
    OTHER_DDL = "other-ddl"
    #: Statements that touch no table (SET, transaction control, comments only).
    NO_OP = "no-op"
    #: The statement could not be understood, or its target cannot be known.
    UNANALYZABLE = "unanalyzable"


@dataclass(frozen=True, init=False)
class TableRef:
    """A table name as written, unquoted. ``schema`` is the database/schema qualifier."""

    name: str
    schema: str | None = None

    def __init__(self, name: str, schema: str | None = None) -> None:
        self.__dict__.update(name=name, schema=schema)  # see FAST_INIT

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def __str__(self) -> str:
        return self.qualified


@dataclass(frozen=True, init=False)
class ColumnType:
    """A column type as far as it is known: ``name`` upper-case (``VARCHAR``),
    ``args`` its parameters (``(255,)``), ``unsigned`` for MySQL integer types."""

    name: str
    args: tuple[int, ...] = ()
    unsigned: bool = False
    text: str = ""

    def __init__(
        self, name: str, args: tuple[int, ...] = (), unsigned: bool = False, text: str = ""
    ) -> None:
        self.__dict__.update(name=name, args=args, unsigned=unsigned, text=text)  # see FAST_INIT

    def __str__(self) -> str:
        return self.text or (
            self.name + (f"({','.join(map(str, self.args))})" if self.args else "")
        )


@dataclass(frozen=True, init=False)
class ColumnDef:
    name: str
    type: ColumnType | None = None
    nullable: bool | None = None

    def __init__(
        self, name: str, type: ColumnType | None = None, nullable: bool | None = None
    ) -> None:
        self.__dict__.update(name=name, type=type, nullable=nullable)  # see FAST_INIT


@dataclass(frozen=True, init=False)
class Operation:
    """One normalised effect of a statement.

    A statement may produce several operations (``ALTER TABLE t DROP a, DROP b``
    gives two DROP_COLUMN operations; ``DROP TABLE a, b`` two DROP_TABLE ones).
    """

    kind: OpKind
    statement: Statement
    table: TableRef | None = None
    column: str | None = None
    #: New name for renames (table or column).
    new_name: str | None = None
    #: New column type for ALTER_COLUMN_TYPE, created columns for CREATE_TABLE/ADD_COLUMN.
    new_type: ColumnType | None = None
    #: Previous type when the migration states it (Alembic ``existing_type=``).
    old_type: ColumnType | None = None
    columns: tuple[ColumnDef, ...] = ()
    #: For DELETE/UPDATE: whether a WHERE clause exists and whether it is tautological.
    has_where: bool | None = None
    where_is_tautology: bool = False
    #: For CHANGE_ENGINE / CONVERT_CHARSET: the target value.
    value: str | None = None
    #: For UNANALYZABLE: why.
    reason: str | None = None
    #: True when the statement merely says ``IF EXISTS`` etc. (kept for messages).
    if_exists: bool = False
    #: For DROP_PARTITION / TRUNCATE_PARTITION: the partitions named.
    partitions: tuple[str, ...] = ()

    def __init__(
        self,
        kind: OpKind,
        statement: Statement,
        table: TableRef | None = None,
        column: str | None = None,
        new_name: str | None = None,
        new_type: ColumnType | None = None,
        old_type: ColumnType | None = None,
        columns: tuple[ColumnDef, ...] = (),
        has_where: bool | None = None,
        where_is_tautology: bool = False,
        value: str | None = None,
        reason: str | None = None,
        if_exists: bool = False,
        partitions: tuple[str, ...] = (),
    ) -> None:
        # See FAST_INIT: a check makes one or more per statement.
        self.__dict__.update(
            kind=kind,
            statement=statement,
            table=table,
            column=column,
            new_name=new_name,
            new_type=new_type,
            old_type=old_type,
            columns=columns,
            has_where=has_where,
            where_is_tautology=where_is_tautology,
            value=value,
            reason=reason,
            if_exists=if_exists,
            partitions=partitions,
        )


#: Every field of :class:`Operation` with its default, in field order (``kind`` and
#: ``statement``, which have none, as None until set): see :func:`new_operation`.
_OPERATION_DEFAULTS: dict[str, object] = {
    name: None if spec.default is MISSING else spec.default
    for name, spec in Operation.__dataclass_fields__.items()
}


def new_operation(
    kind: OpKind,
    statement: Statement,
    table: TableRef | None = None,
    extra: Mapping[str, object] | None = None,
) -> Operation:
    """``Operation(kind, statement, table, **extra)``, for the quick path, which makes
    one per statement: the defaults are copied in one ``update`` instead of passing
    through the fourteen parameters of ``__init__``. ``extra`` names fields only
    (tests/unit/test_model.py holds the result equal to the constructor's)."""
    operation: Operation = object.__new__(Operation)
    fields = operation.__dict__
    fields.update(_OPERATION_DEFAULTS)
    fields["kind"] = kind
    fields["statement"] = statement
    fields["table"] = table
    if extra:
        fields.update(extra)
    return operation


@dataclass(frozen=True, init=False)
class Finding:
    """A rule's verdict on one operation, ready for rendering."""

    rule: str
    severity: Severity
    table: str | None
    file: str
    line: int
    column: int
    message: str
    statement: str
    hint: str = ""
    suppressed: bool = False
    reason: str | None = None
    #: Other (file, line) places a suppression comment may sit above: the
    #: statement that runs this one (PREPARE, CALL, CREATE PROCEDURE, the SET
    #: of the variable), when the finding is inside dynamic SQL or a body.
    anchors: tuple[tuple[str, int], ...] = ()

    def __init__(
        self,
        rule: str,
        severity: Severity,
        table: str | None,
        file: str,
        line: int,
        column: int,
        message: str,
        statement: str,
        hint: str = "",
        suppressed: bool = False,
        reason: str | None = None,
        anchors: tuple[tuple[str, int], ...] = (),
    ) -> None:
        # See FAST_INIT: a report may hold thousands.
        self.__dict__.update(
            rule=rule,
            severity=severity,
            table=table,
            file=file,
            line=line,
            column=column,
            message=message,
            statement=statement,
            hint=hint,
            suppressed=suppressed,
            reason=reason,
            anchors=anchors,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "table": self.table,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "statement": self.statement,
            "hint": self.hint,
            "suppressed": self.suppressed,
            "reason": self.reason,
        }


@dataclass
class Report:
    """Everything ``check`` found, plus notes for the user (not findings)."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    statements: int = 0

    @property
    def active(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed]

    @property
    def has_errors(self) -> bool:
        return any(f.severity is Severity.ERROR for f in self.active)

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(Severity, 0)
        suppressed = 0
        for finding in self.findings:  # one pass: a report may hold thousands
            if finding.suppressed:
                suppressed += 1
            else:
                counts[finding.severity] += 1
        return {
            "errors": counts[Severity.ERROR],
            "warnings": counts[Severity.WARNING],
            "notes": counts[Severity.NOTE],
            "suppressed": suppressed,
            "statements": self.statements,
            "files": len(self.files),
        }

"""Offline rendering of Alembic revisions with call-site capture.

A revision's ``upgrade()`` runs against a :class:`~alembic.runtime.migration.MigrationContext`
in ``as_sql`` mode, so no database is needed. Every piece of SQL Alembic would emit is
caught on its way to the output buffer and tagged with the revision file and the line of
the ``op.`` call that produced it (found by walking the Python stack to the innermost frame
of the revision file).

Where rendering cannot tell the truth, the Alembic operation objects are inspected instead
and turned into :class:`~migration_guard.analysis.model.Operation` values directly:

* ``batch_alter_table`` blocks are never rendered: on SQLite they need reflection (so they
  fail offline without ``copy_from``) and, when they do render, the table-recreate SQL
  (``DROP TABLE users`` / ``RENAME _alembic_tmp_users``) would look like a dropped table.
* ``alter_column`` keeps ``existing_type=`` so that a provable widening can be recognised,
  which the rendered SQL no longer says.
* Any operation whose rendering raises.

``op.get_bind()`` returns an offline connection whose queries are recorded as SQL and
return empty results, so migrations that read data before altering the schema keep going.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import re
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from types import FrameType, ModuleType, TracebackType
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
    from alembic.config import Config
    from alembic.operations import ops as alembic_ops
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Dialect

_REASON_LIMIT = 300
_REVISION_FILE_LIMIT = 4 * 1024 * 1024
_REVISION_RE = re.compile(r"^revision\s*(?::[^=\n]*)?=", re.MULTILINE)
_UPGRADE_RE = re.compile(r"^def\s+upgrade\s*\(", re.MULTILINE)


@dataclass
class RenderedRevision:
    """The statements one revision produces, each pointing at its ``op.`` call."""

    revision: str
    down_revision: tuple[str, ...]
    path: str
    statements: list[Statement] = field(default_factory=list)


def is_revision_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like an Alembic revision: a ``.py`` file with a module-level
    ``revision =`` assignment and a ``def upgrade``."""
    path = os.fspath(path)
    if not path.endswith(".py") or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as handle:
            text = handle.read(_REVISION_FILE_LIMIT).decode("utf-8", errors="replace")
    except OSError:
        return False
    return bool(_REVISION_RE.search(text) and _UPGRADE_RE.search(text))


def render_revision_file(path: str | os.PathLike[str], *, dialect: str) -> RenderedRevision:
    """Render one revision file offline for ``dialect`` without its project's ``env.py``.

    Errors while loading or running the revision become an ``unanalyzable`` statement.
    """
    path = os.path.abspath(os.fspath(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        module = _load_module(path)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        revision = RenderedRevision(revision=stem, down_revision=(), path=path)
        revision.statements.append(unrenderable_statement(path, stem, exc))
        return revision
    rev_id = str(getattr(module, "revision", None) or stem)
    rendered = RenderedRevision(revision=rev_id, down_revision=down_revisions(module), path=path)
    from alembic.config import Config

    with OfflineRenderer(dialect, Config()) as renderer:
        rendered.statements = renderer.render_module(module, path=path, unit=rev_id)
    return rendered


def down_revisions(module: ModuleType) -> tuple[str, ...]:
    """The revision's ``down_revision`` as a tuple (empty for a base revision)."""
    value = getattr(module, "down_revision", None)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(str(item) for item in value)
    except TypeError:
        return (str(value),)


def _load_module(path: str) -> ModuleType:
    name = f"_migration_guard_revision_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unrenderable_statement(path: str, unit: str, exc: BaseException) -> Statement:
    """An ``unanalyzable`` statement for a revision that raised ``exc``.

    It points at the line inside ``path`` where the error happened when the traceback
    (or the syntax error) says so, otherwise at line 1.
    """
    line, column = _error_position(path, exc)
    message = f"{type(exc).__name__}: {exc}".strip()
    if len(message) > _REASON_LIMIT:
        message = message[: _REASON_LIMIT - 3] + "..."
    reason = f"revision could not be rendered: {message}"
    return _known_statement(
        f"-- {reason}",
        path=path,
        line=line,
        column=column,
        unit=unit,
        build=lambda stmt: (Operation(kind=OpKind.UNANALYZABLE, statement=stmt, reason=reason),),
    )


def _error_position(path: str, exc: BaseException) -> tuple[int, int]:
    names = _file_names(path)
    if isinstance(exc, SyntaxError) and exc.filename and _normalise(exc.filename) in names:
        return max(exc.lineno or 1, 1), max(exc.offset or 1, 1)
    position = (1, 1)
    for frame in traceback.extract_tb(exc.__traceback__):
        if _normalise(frame.filename) in names and frame.lineno:
            colno = getattr(frame, "colno", None)
            position = (frame.lineno, (colno + 1) if colno is not None else 1)
    return position


def _normalise(filename: str) -> str:
    return os.path.normcase(os.path.realpath(filename))


def _file_names(path: str) -> frozenset[str]:
    return frozenset({path, os.path.abspath(path), _normalise(path)})


# --------------------------------------------------------------------------- rendering


class _StatementSink:
    """The ``output_buffer`` of the offline context: each ``static_output`` is one write."""

    def __init__(self) -> None:
        self.session: _RevisionSession | None = None

    def write(self, text: str) -> int:
        if self.session is not None:
            self.session.on_output(text)
        return len(text)

    def flush(self) -> None:
        return None


class OfflineRenderer:
    """An ``as_sql`` migration context for one dialect, reusable across revisions.

    Use as a context manager: it installs the ``alembic.op`` and ``alembic.context``
    proxies for the duration, as ``env.py`` would.
    """

    def __init__(self, dialect: str, config: Config, script: Any = None) -> None:
        from alembic.runtime.environment import EnvironmentContext

        self.dialect_name = dialect
        self._sink = _StatementSink()
        self._environment = EnvironmentContext(config, script)
        self._stack = contextlib.ExitStack()
        self._hooks: _OperationsHooks | None = None

    def __enter__(self) -> OfflineRenderer:
        from migration_guard.errors import UsageError

        self._stack.__enter__()
        self._stack.enter_context(self._environment)
        try:
            self._environment.configure(
                dialect_name=self.dialect_name,
                as_sql=True,
                output_buffer=self._sink,  # type: ignore[arg-type]
                literal_binds=True,
                transactional_ddl=False,
            )
        except Exception as exc:
            self._stack.close()
            raise UsageError(
                f"cannot render Alembic migrations for dialect {self.dialect_name!r}: {exc}"
            ) from exc
        context = self._environment.get_context()
        bind = OfflineBind(context)
        context.connection = bind  # type: ignore[assignment]
        context.impl.connection = bind  # type: ignore[assignment]
        from alembic.operations import Operations

        operations = self._stack.enter_context(Operations.context(context))
        self._hooks = _OperationsHooks(operations)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc, tb)

    @property
    def sql_dialect(self) -> Dialect:
        assert self._hooks is not None
        return self._hooks.operations.migration_context.dialect  # type: ignore[no-any-return]

    def render_module(self, module: ModuleType, *, path: str, unit: str) -> list[Statement]:
        """Run ``module.upgrade()`` and return what it produced, in order."""
        assert self._hooks is not None, "use OfflineRenderer as a context manager"
        load_error = getattr(module, "__migration_guard_load_error__", None)
        if isinstance(load_error, BaseException):
            return [unrenderable_statement(path, unit, load_error)]
        session = _RevisionSession(path, unit, self.dialect_name, self.sql_dialect)
        self._hooks.session = session
        self._sink.session = session
        try:
            upgrade = getattr(module, "upgrade", None)
            if not callable(upgrade):
                raise AttributeError("the revision has no upgrade() function")
            upgrade()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            session.statements.append(unrenderable_statement(path, unit, exc))
        finally:
            self._hooks.session = None
            self._sink.session = None
        return session.statements


# --------------------------------------------------------------------------- operations


class _BatchTarget:
    """Stands in for ``BatchOperationsImpl``: batch op constructors only read these two."""

    def __init__(self, table_name: str, schema: str | None) -> None:
        self.table_name = table_name
        self.schema = schema


class _OperationsHooks:
    """Reroutes an ``Operations`` instance's ``invoke`` and ``batch_alter_table``.

    The methods are replaced on the instance (not by subclassing) because Alembic's
    ``op`` module proxy is registered for the ``Operations`` class itself.
    """

    def __init__(self, operations: Any) -> None:
        self.operations = operations
        self.session: _RevisionSession | None = None
        self._invoke = operations.invoke
        operations.invoke = self.invoke
        operations.batch_alter_table = self.batch_alter_table

    def invoke(self, operation: Any) -> Any:
        if self.session is None:
            return self._invoke(operation)
        return self.session.invoke(operation, self._invoke)

    @contextlib.contextmanager
    def batch_alter_table(
        self, table_name: str, schema: str | None = None, **_options: Any
    ) -> Iterator[Any]:
        from alembic.operations import BatchOperations

        batch = BatchOperations(
            self.operations.migration_context,
            impl=_BatchTarget(table_name, schema),  # type: ignore[arg-type]
        )
        session = self.session

        def record(operation: Any) -> None:
            # Never rendered: see the module docstring.
            if session is not None:
                session.record_operation(operation, session.call_site())

        batch.invoke = record  # type: ignore[method-assign,assignment]
        yield batch


# --------------------------------------------------------------------------- capture


@dataclass
class _CallSite:
    line: int
    column: int
    end_line: int | None = None


@dataclass
class _Capture:
    site: _CallSite
    chunks: list[str] = field(default_factory=list)


class _RevisionSession:
    """Collects the statements of one revision while its ``upgrade()`` runs."""

    def __init__(self, path: str, unit: str, dialect: str, sql_dialect: Dialect) -> None:
        self.path = path
        self.unit = unit
        self.dialect = dialect
        self.sql_dialect = sql_dialect
        self.statements: list[Statement] = []
        self._names = _file_names(path)
        self._captures: list[_Capture] = []

    # -- call sites ---------------------------------------------------------------------

    def call_site(self) -> _CallSite:
        """The innermost frame of the revision file on the current stack."""
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename in self._names or _normalise(filename) in self._names:
                return _frame_site(frame)
            frame = frame.f_back
        return _CallSite(1, 1)

    # -- entry points ---------------------------------------------------------------------

    def invoke(self, operation: Any, run: Callable[[Any], Any]) -> Any:
        from alembic.operations import ops

        site = self.call_site()
        if isinstance(operation, ops.ExecuteSQLOp):
            raw = _raw_sql(operation.sqltext)
            if raw is not None:
                self.add_sql(raw, site)
                return None
        capture = _Capture(site)
        self._captures.append(capture)
        try:
            result = run(operation)
        except Exception:
            # Rendering is impossible offline: judge the operation object itself.
            self._captures.pop()
            self.record_operation(operation, site)
            return operation.to_table() if isinstance(operation, ops.CreateTableOp) else None
        self._captures.pop()
        if isinstance(operation, ops.AlterColumnOp):
            rendered = "\n".join(
                chunk.strip().rstrip(";").rstrip() for chunk in capture.chunks if chunk.strip()
            )
            self.record_operation(operation, site, rendered=rendered or None)
        else:
            for chunk in capture.chunks:
                self.add_sql(chunk, site)
        return result

    def on_output(self, text: str) -> None:
        if self._captures:
            self._captures[-1].chunks.append(text)
        elif text.strip():
            self.add_sql(text, self.call_site())

    # -- statements -------------------------------------------------------------------------

    def add_sql(self, text: str, site: _CallSite) -> None:
        """Split ``text`` and tag every statement with the call site (not positions inside it)."""
        if not text.strip():
            return
        for statement in _split(text, file=self.path, dialect=self.dialect, unit=self.unit):
            self.statements.append(
                replace(
                    statement,
                    file=self.path,
                    line=site.line,
                    column=site.column,
                    end_line=site.end_line,
                    unit=self.unit,
                )
            )

    def record_operation(
        self, operation: Any, site: _CallSite, *, rendered: str | None = None
    ) -> None:
        """Add a statement whose operations come from the Alembic operation object."""
        sql = rendered or describe_operation(operation, self.sql_dialect)
        self.statements.append(
            _known_statement(
                sql,
                path=self.path,
                line=site.line,
                column=site.column,
                end_line=site.end_line,
                unit=self.unit,
                build=lambda stmt: operations_from_alembic(operation, stmt, self.sql_dialect),
            )
        )


def _frame_site(frame: FrameType) -> _CallSite:
    line = frame.f_lineno or 1
    if sys.version_info >= (3, 11):
        position = next(
            itertools.islice(frame.f_code.co_positions(), frame.f_lasti // 2, None), None
        )
        if position is not None:
            start_line, end_line, column, _ = position
            if start_line is not None:
                return _CallSite(start_line, (column or 0) + 1, end_line)
        return _CallSite(line, 1)
    import linecache

    text = linecache.getline(frame.f_code.co_filename, line)
    column = len(text) - len(text.lstrip()) + 1 if text.strip() else 1
    return _CallSite(line, column)


def _raw_sql(sqltext: Any) -> str | None:
    """The literal SQL of ``op.execute`` when it is plain text (a ``str`` or ``text()``)."""
    if isinstance(sqltext, str):
        return sqltext
    from sqlalchemy.sql.elements import TextClause

    if isinstance(sqltext, TextClause) and not sqltext._bindparams:
        return str(sqltext.text)
    return None


def _split(text: str, *, file: str, dialect: str, unit: str) -> list[Statement]:
    from migration_guard.analysis.splitter import split_sql

    try:
        return list(split_sql(text, file=file, dialect=dialect, unit=unit))
    except Exception:
        # The splitter is fuzzed never to raise; if it does, keep the text whole so the
        # analyser still sees (and can refuse) it.
        return [Statement(sql=text.strip(), file=file, line=1, unit=unit)]


def _known_statement(
    sql: str,
    *,
    path: str,
    line: int,
    column: int,
    unit: str,
    build: Callable[[Statement], Sequence[Operation]],
    end_line: int | None = None,
) -> Statement:
    statement = Statement(
        sql=sql, file=path, line=line, column=column, unit=unit, end_line=end_line
    )
    return replace(statement, known_operations=tuple(build(statement)))


# --------------------------------------------------------------------------- op objects


class OfflineBind:
    """What ``op.get_bind()`` returns offline: statements are recorded, results are empty.

    Everything else is delegated to Alembic's mock connection (``dialect``, DDL visitors).
    """

    def __init__(self, context: MigrationContext) -> None:
        self._context = context
        self._mock = context.connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mock, name)

    def execute(
        self, statement: Any, parameters: Any = None, execution_options: Any = None
    ) -> OfflineResult:
        self._record(statement, parameters)
        return OfflineResult()

    def exec_driver_sql(
        self, statement: str, parameters: Any = None, execution_options: Any = None
    ) -> OfflineResult:
        self._context.impl.static_output(str(statement))
        return OfflineResult()

    def scalar(self, statement: Any, parameters: Any = None, **_kw: Any) -> None:
        self._record(statement, parameters)
        return None

    def scalars(self, statement: Any, parameters: Any = None, **_kw: Any) -> OfflineResult:
        self._record(statement, parameters)
        return OfflineResult()

    def connect(self, **_kw: Any) -> OfflineBind:
        return self

    def begin(self) -> _OfflineTransaction:
        return _OfflineTransaction()

    begin_nested = begin

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None

    def close(self) -> None:
        return None

    def in_transaction(self) -> bool:
        return False

    def _record(self, statement: Any, parameters: Any) -> None:
        from sqlalchemy.sql.elements import TextClause

        if isinstance(parameters, (list, tuple)):
            parameters = parameters[0] if parameters else None
        if isinstance(statement, TextClause) and isinstance(parameters, dict):
            with contextlib.suppress(Exception):
                statement = statement.bindparams(**parameters)
        impl = self._context.impl
        try:
            impl._exec(statement)
        except Exception:
            raw = getattr(statement, "text", None)
            impl.static_output(str(raw if isinstance(raw, str) else statement))


class _OfflineTransaction:
    def __enter__(self) -> _OfflineTransaction:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None


class OfflineResult:
    """An empty result: offline there are no rows to read."""

    rowcount = 0
    inserted_primary_key = None
    returns_rows = True

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def fetchall(self) -> list[Any]:
        return []

    all = fetchall

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return []

    def partitions(self, size: int | None = None) -> Iterator[list[Any]]:
        return iter(())

    def fetchone(self) -> None:
        return None

    first = fetchone
    scalar = fetchone
    one_or_none = fetchone
    scalar_one_or_none = fetchone

    def one(self) -> Any:
        from sqlalchemy.exc import NoResultFound

        raise NoResultFound("offline rendering: the query returned no rows")

    scalar_one = one

    def scalars(self, *_args: Any) -> OfflineResult:
        return self

    mappings = scalars
    columns = scalars
    unique = scalars
    tuples = scalars

    def keys(self) -> list[str]:
        return []

    def close(self) -> None:
        return None


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

__all__ = [
    "OfflineBind",
    "OfflineRenderer",
    "OfflineResult",
    "RenderedRevision",
    "column_type",
    "column_type_from_text",
    "describe_operation",
    "down_revisions",
    "is_revision_file",
    "operations_from_alembic",
    "render_revision_file",
    "unrenderable_statement",
]

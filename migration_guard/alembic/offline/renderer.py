"""The offline renderer: an ``as_sql`` migration context that runs a revision's
``upgrade()`` without a database and collects what it renders.

No real database is reachable from the revision's code meanwhile
(:mod:`.sealed`).

``batch_alter_table`` blocks are never rendered: on SQLite they need reflection (so
they fail offline without ``copy_from``) and, when they do render, the table-recreate
SQL (``DROP TABLE users`` / ``RENAME _alembic_tmp_users``) would look like a dropped
table. Their operations are judged from the operation objects instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.offline.bind import OfflineBind
from migration_guard.alembic.offline.capture import RevisionCapture, unrenderable_statement
from migration_guard.alembic.offline.sealed import no_database, patches_installed
from migration_guard.analysis.model import (
    Statement,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Dialect


class _StatementSink:
    """The ``output_buffer`` of the offline context: each ``static_output`` is one write."""

    def __init__(self) -> None:
        self.session: RevisionCapture | None = None

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
        self._stack.enter_context(patches_installed())
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
        session = RevisionCapture(path, unit, self.dialect_name, self.sql_dialect)
        self._hooks.session = session
        self._sink.session = session
        try:
            upgrade = getattr(module, "upgrade", None)
            if not callable(upgrade):
                raise AttributeError("the revision has no upgrade() function")
            with no_database() as refusals:  # its own engines must not run anything
                upgrade()
            if refusals:  # the revision caught the refusal and carried on
                raise refusals[0]
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
        self.session: RevisionCapture | None = None
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

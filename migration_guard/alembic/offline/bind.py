"""The offline bind: what ``op.get_bind()`` returns while a revision is rendered.

Migrations that read data before altering the schema keep going offline: their
queries are recorded as SQL and return empty results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext


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

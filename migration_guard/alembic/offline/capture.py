"""Call-site capture: every statement a revision renders is tagged with the revision
file and the line of the ``op.`` call that produced it.

The line is found by walking the Python stack to the innermost frame of the revision
file while the operation runs. Operations that cannot be rendered offline become
statements whose operations come from the Alembic operation object itself
(:mod:`migration_guard.alembic.offline.op_mapping`).
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.offline.op_mapping import describe_operation, operations_from_alembic
from migration_guard.alembic.runtime_sql import runs
from migration_guard.analysis.model import (
    Operation,
    OpKind,
    Statement,
)
from migration_guard.analysis.rules.unanalyzable import UNRENDERABLE

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect


_REASON_LIMIT = 300


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


class RevisionCapture:
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
        for piece in _split(text, file=self.path, dialect=self.dialect, unit=self.unit):
            # What runs, as the interceptor judges it: EXPLAIN ANALYZE's statement, the
            # statements of a compound block (not its BEGIN NOT ATOMIC / END IF syntax).
            sql = runs(piece.sql)
            if sql is None:
                continue
            self.statements.append(
                replace(
                    piece,
                    sql=sql,
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


def unrenderable_statement(path: str, unit: str, exc: BaseException) -> Statement:
    """An ``unanalyzable`` statement for a revision that raised ``exc``.

    It points at the line inside ``path`` where the error happened when the traceback
    (or the syntax error) says so, otherwise at line 1.
    """
    line, column = _error_position(path, exc)
    message = f"{type(exc).__name__}: {exc}".strip()
    if len(message) > _REASON_LIMIT:
        message = message[: _REASON_LIMIT - 3] + "..."
    reason = f"{UNRENDERABLE}: {message}"
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


@functools.lru_cache(maxsize=4096)
def _normalise(filename: str) -> str:
    # Cached: call_site() asks for every frame on the stack of every operation, and
    # realpath() costs a system call per path component.
    return os.path.normcase(os.path.realpath(filename))


def _file_names(path: str) -> frozenset[str]:
    return frozenset({path, os.path.abspath(path), _normalise(path)})

"""The rows written while a failed run was in progress, found by primary key.

Before a table is reloaded from the run's backup, :func:`snapshot` reads its rows as
the run left them; after the reload, :func:`compare` finds the rows that are new or
changed since the backup. Where the run changed only the table's definition those
rows were written by the application and :func:`reapply` writes them again on the
columns of the restored (pre-run) definition. The snapshot is held in memory, so it
reads every row of each table the run changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: How many primary keys a message lists before it says "...".
SHOWN_KEYS = 10


@dataclass
class TableRows:
    """A table's columns (name -> type as text) and rows, read at one moment."""

    columns: dict[str, str]
    primary_key: list[str]
    rows: list[dict[str, Any]]


@dataclass
class RowDiff:
    """Rows of the snapshot that the restored table does not hold as they were."""

    #: Rows whose key the restored table does not have.
    new: list[dict[str, Any]] = field(default_factory=list)
    #: (key, changed values) of rows the restored table has with other values.
    changed: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    #: Columns both definitions have, with the same type.
    columns: list[str] = field(default_factory=list)
    #: Columns both have whose type differs: values may differ because of the run's DDL.
    retyped: list[str] = field(default_factory=list)
    key: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.new) + len(self.changed)

    def describe(self) -> str:
        """``1 row added and 2 rows changed (id 4, 6, 7)``."""
        parts = []
        if self.new:
            parts.append(f"{_rows(len(self.new))} added")
        if self.changed:
            parts.append(f"{_rows(len(self.changed))} changed")
        keys = (
            [_key_text(row, self.key) for row in self.new]
            + [_key_text(key, self.key) for key, _values in self.changed]
            if self.key
            else []
        )
        shown = ", ".join(keys[:SHOWN_KEYS]) + (", ..." if len(keys) > SHOWN_KEYS else "")
        return " and ".join(parts) + (f" ({'/'.join(self.key)} {shown})" if shown else "")


def snapshot(conn: Connection, table: str) -> TableRows:
    """The definition and every row of ``table`` as it is now."""
    import sqlalchemy as sa

    reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
    columns = {column.name: _type_text(column.type) for column in reflected.columns}
    primary_key = [column.name for column in reflected.primary_key.columns]
    rows = [dict(row._mapping) for row in conn.execute(sa.select(reflected))]
    return TableRows(columns, primary_key, rows)


def compare(before_reload: TableRows, restored: TableRows) -> RowDiff:
    """What ``before_reload`` holds that ``restored`` (the backup's rows) does not."""
    common = [name for name in restored.columns if name in before_reload.columns]
    diff = RowDiff(
        columns=[n for n in common if restored.columns[n] == before_reload.columns[n]],
        retyped=[n for n in common if restored.columns[n] != before_reload.columns[n]],
    )
    key = restored.primary_key
    if key and all(name in before_reload.columns for name in key):
        diff.key = list(key)
        by_key = {tuple(row[name] for name in key): row for row in restored.rows}
        for row in before_reload.rows:
            old = by_key.get(tuple(row[name] for name in key))
            if old is None:
                diff.new.append({name: row[name] for name in common})
                continue
            values = {name: row[name] for name in common if row[name] != old[name]}
            if values:
                diff.changed.append(({name: row[name] for name in key}, values))
        return diff
    # No primary key: rows are compared whole, as a multiset, on the common columns.
    have = Counter(tuple(row[name] for name in common) for row in restored.rows)
    for whole in before_reload.rows:
        seen = tuple(whole[name] for name in common)
        if have[seen] > 0:
            have[seen] -= 1
        else:
            diff.new.append(dict(zip(common, seen, strict=True)))
    return diff


def reapply(conn: Connection, table: str, diff: RowDiff) -> None:
    """Write ``diff``'s rows into the restored ``table``: insert the new ones, update
    the changed columns of the others (in the caller's transaction)."""
    import sqlalchemy as sa

    reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
    if diff.new:
        conn.execute(reflected.insert(), diff.new)
    for key, values in diff.changed:
        condition = sa.and_(*(reflected.c[name] == value for name, value in key.items()))
        conn.execute(reflected.update().where(condition).values(**values))


def _type_text(type_: Any) -> str:
    try:
        return str(type_)
    except Exception:  # a type without a generic rendering: compare by its repr
        return repr(type_)


def _rows(count: int) -> str:
    return f"{count} row" + ("" if count == 1 else "s")


def _key_text(row: Mapping[str, Any], key: Sequence[str]) -> str:
    values = [str(row.get(name)) for name in key]
    return values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"

"""Changing a table's storage engine rebuilds the table and may silently lose data or guarantees.

Flagged for ``ALTER TABLE ... ENGINE=...`` (MySQL/MariaDB). The table is copied
row by row under a lock. Depending on the target:

- ``BLACKHOLE`` discards every row: the table is empty afterwards and stays
  empty. Always an error.
- ``MyISAM`` and ``Aria`` lose transactions, crash safety and foreign keys;
  a crash can corrupt the table and a failed migration can no longer be
  rolled back.
- ``MEMORY`` loses every row when the server restarts.
- ``InnoDB`` is the safe default; the change is reported as a warning because
  the rebuild still locks and copies the table.

Instead, keep InnoDB. If another engine is really needed, create a new table
with that engine, copy the rows, verify, and switch over in a later release.
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind, Severity
from migration_guard.analysis.rules import Rule, RuleContext, Violation

_CONSEQUENCES = {
    "BLACKHOLE": "BLACKHOLE discards every row: all data in the table is lost",
    "MYISAM": "MyISAM has no transactions, crash safety or foreign keys",
    "ARIA": "Aria has no real transactions or foreign keys",
    "MEMORY": "MEMORY loses every row when the server restarts",
    "HEAP": "MEMORY loses every row when the server restarts",
    "CSV": "CSV has no indexes, transactions or NULLs",
    "ARCHIVE": "ARCHIVE cannot update or delete rows and has no transactions",
    "FEDERATED": "FEDERATED stores no data locally",
}


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    engine = (operation.value or "").strip().strip("'\"`")
    upper = engine.upper()
    table = operation.table or "(unknown table)"
    if upper == "BLACKHOLE":
        yield Violation(
            f"ENGINE=BLACKHOLE on {table}: {_CONSEQUENCES[upper]}", operation.table, Severity.ERROR
        )
    elif upper in _CONSEQUENCES:
        yield Violation(
            f"ENGINE={engine} on {table} rebuilds the table, and {_CONSEQUENCES[upper]}",
            operation.table,
        )
    elif upper == "INNODB":
        yield Violation(
            f"ENGINE=InnoDB on {table} rebuilds and locks the whole table",
            operation.table,
            Severity.WARNING,
        )
    else:
        yield Violation(
            f"ENGINE={engine or '(unknown)'} on {table} rebuilds the table into an engine "
            "that may not be transactional or durable",
            operation.table,
        )


RULE = Rule(
    id="change-engine",
    summary="Changing the storage engine rebuilds the table and may lose data or transactions.",
    description=__doc__ or "",
    hint=(
        "Keep InnoDB; if another engine is needed, copy the rows into a new table with "
        "that engine, verify, and switch over in a later release."
    ),
    kinds=frozenset({OpKind.CHANGE_ENGINE}),
    check=check,
)

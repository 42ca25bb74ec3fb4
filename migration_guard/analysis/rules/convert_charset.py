"""Converting a table's character set rewrites every text column and can corrupt or truncate text.

Flagged for MySQL's ``ALTER TABLE ... CONVERT TO CHARACTER SET ...``. Every
row is rewritten under a lock. Characters the target set cannot represent
become ``?``; text that was stored in the wrong character set (double-encoded
"mojibake") is converted a second time; ``TEXT`` columns may be silently
promoted to larger types and index prefixes may no longer fit.

Instead, add new columns (or a new table) in the target character set, copy and
verify the data, then switch over (expand/contract). To change only the
default for *future* columns, use ``ALTER TABLE ... DEFAULT CHARACTER SET``,
which rewrites nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    charset = operation.value or "(unknown character set)"
    yield Violation(
        f"converting {operation.table or '(unknown table)'} to character set {charset} "
        "rewrites every text column; unrepresentable characters are lost",
        operation.table,
    )


RULE = Rule(
    id="convert-charset",
    summary="CONVERT TO CHARACTER SET rewrites every text column and can mangle text.",
    description=__doc__ or "",
    hint=(
        "Expand/contract: copy into new columns or a new table in the target character "
        "set, verify, then switch; DEFAULT CHARACTER SET changes only new columns."
    ),
    kinds=frozenset({OpKind.CONVERT_CHARSET}),
    check=check,
)

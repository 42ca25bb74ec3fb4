"""A protected table renamed during a run stays protected under its new name.

``ALTER TABLE customers RENAME TO clients`` (or ``RENAME TABLE``, or
``op.rename_table``) moves the rows: for the rest of the run a ``DROP``,
``TRUNCATE`` or ``DELETE`` of ``clients`` destroys exactly what protecting
``customers`` was for. The statement interceptor therefore widens the run's
protected patterns to the new name once the rename was judged (the static check
does the same in its :class:`~migration_guard.analysis.rules.RuleContext`).
"""

from __future__ import annotations

import re

from migration_guard.analysis.model import TableRef
from migration_guard.config import ProtectedTables

__all__ = ["protected_after_rename"]


def protected_after_rename(
    protected: ProtectedTables, old: TableRef, new: TableRef
) -> ProtectedTables | None:
    """``protected`` extended to ``new`` when ``old`` is protected and ``new`` is not
    yet; None when nothing changes."""
    if not protected.is_protected(old.name, old.schema):
        return None
    if protected.is_protected(new.name, new.schema):
        return None  # also "every table is protected": adding a pattern would narrow it
    schema = new.schema or protected.default_schema
    name = _glob_literal(new.name)
    return protected.with_patterns([f"{_glob_literal(schema)}.{name}" if schema else name])


def _glob_literal(text: str) -> str:
    """``text`` as a glob pattern that matches exactly ``text``."""
    return re.sub(r"([*?\[])", r"[\1]", text)

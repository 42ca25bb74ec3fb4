"""Offline rendering of Alembic revisions with call-site capture.

A revision's ``upgrade()`` runs against a :class:`~alembic.runtime.migration.MigrationContext`
in ``as_sql`` mode, so no database is needed. Every piece of SQL Alembic would emit is
caught on its way to the output buffer and tagged with the revision file and the line of
the ``op.`` call that produced it (:mod:`.capture`).

Where rendering cannot tell the truth, the Alembic operation objects are inspected instead
and turned into :class:`~migration_guard.analysis.model.Operation` values directly
(:mod:`.op_mapping`): ``batch_alter_table`` blocks, ``alter_column`` (for its
``existing_type=``) and any operation whose rendering raises.

``op.get_bind()`` returns an offline connection (:mod:`.bind`) whose queries are recorded
as SQL and return empty results, so migrations that read data before altering the schema
keep going. No other database is reachable from revision code meanwhile (:mod:`.sealed`).
"""

from __future__ import annotations

from migration_guard.alembic.offline.bind import OfflineBind, OfflineResult
from migration_guard.alembic.offline.capture import unrenderable_statement
from migration_guard.alembic.offline.op_mapping import (
    column_type,
    column_type_from_text,
    describe_operation,
    operations_from_alembic,
)
from migration_guard.alembic.offline.renderer import OfflineRenderer
from migration_guard.alembic.offline.revision_files import (
    RenderedRevision,
    down_revisions,
    is_revision_file,
    render_revision_file,
)

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

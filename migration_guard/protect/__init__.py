"""Protection inside the database: delete triggers and DDL privilege guards.

One :class:`~migration_guard.protect.base.Protector` per dialect, looked up in
:data:`PROTECTORS` by SQLAlchemy dialect name; :mod:`.operations` drives it
(install, status, verify, remove). This module is the package's public face:
it re-exports the database-independent types from :mod:`.model` (accounts,
options, plans), :mod:`.report` (status and probe results) and :mod:`.options`
(protect's configuration), and imports no database code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migration_guard.protect.model import (
    META_TABLE,
    TRIGGER_PREFIX,
    TRIGGER_SUFFIX,
    Account,
    PlanStep,
    ProtectPlan,
    TableOptions,
    dump_json,
    options_for,
)
from migration_guard.protect.options import parse_table_options
from migration_guard.protect.report import ProbeResult, ProtectStatus, TableStatus, render_probes
from migration_guard.registry import Registry

if TYPE_CHECKING:
    from migration_guard.protect.base import Protector

__all__ = [
    "META_TABLE",
    "PROTECTORS",
    "TRIGGER_PREFIX",
    "TRIGGER_SUFFIX",
    "Account",
    "PlanStep",
    "ProbeResult",
    "ProtectPlan",
    "ProtectStatus",
    "TableOptions",
    "TableStatus",
    "dump_json",
    "options_for",
    "parse_table_options",
    "render_probes",
]

PROTECTORS: Registry[type[Protector]] = Registry(
    "migration_guard.protectors",
    "protector",
    {
        "mysql": "migration_guard.protect.mysql:MySQLProtector",
        "mariadb": "migration_guard.protect.mysql:MySQLProtector",
        "sqlite": "migration_guard.protect.sqlite:SQLiteProtector",
        "postgresql": "migration_guard.protect.postgresql:PostgreSQLProtector",
    },
)

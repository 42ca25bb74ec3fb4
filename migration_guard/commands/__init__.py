"""One plain, typed function per command: ``fn(config, ...)``.

The CLI in :mod:`migration_guard.cli` is a thin layer over these; everything it
does is available from Python::

    from migration_guard.config import load_config
    from migration_guard.commands import check, create_backup, upgrade

    config = load_config()
    report = check(config, ["migrations/versions"], dialect="mysql")
    manifest = create_backup(config, url="sqlite:///app.db")

Imports are lazy so that ``check`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module that defines it
_COMMANDS = {
    "check": "migration_guard.commands.static_check",
    "keygen": "migration_guard.commands.backup",
    "keygen_x25519": "migration_guard.commands.backup",
    "create_backup": "migration_guard.commands.backup",
    "backup_location": "migration_guard.commands.backup",
    "list_backups": "migration_guard.commands.backup",
    "show_backup": "migration_guard.commands.backup",
    "verify_backup": "migration_guard.commands.backup",
    "prune_backups": "migration_guard.commands.backup",
    "restore": "migration_guard.commands.backup",
    "decrypt": "migration_guard.commands.backup",
    "upgrade": "migration_guard.commands.safe_upgrade",
    "downgrade": "migration_guard.commands.safe_upgrade",
    "protect_install": "migration_guard.commands.protect",
    "protect_status": "migration_guard.commands.protect",
    "protect_verify": "migration_guard.commands.protect",
    "protect_remove": "migration_guard.commands.protect",
    "status": "migration_guard.commands.ops",
    "monitor": "migration_guard.commands.ops",
    "drill": "migration_guard.commands.ops",
    "schedule": "migration_guard.commands.ops",
    "list_runs": "migration_guard.commands.runs",
    "resolve_run": "migration_guard.commands.runs",
}

__all__ = sorted(_COMMANDS)


def __getattr__(name: str) -> Any:
    module = _COMMANDS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

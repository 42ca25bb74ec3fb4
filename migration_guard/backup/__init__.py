"""Backups from Python: ``from migration_guard.backup import create, restore, verify``.

Everything is imported on first use so that importing this package costs nothing.
The operations live in modules named after the activity (``creation``,
``verification``, ``restoration``, ``pruning``, ``decryption``), not after the
functions: importing a submodule ``create`` would replace the function
``create`` on this package.
See docs/backups.md for the options and :mod:`migration_guard.backup.engine`
for the signatures.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migration_guard.backup.engine import (
        RestoreResult,
        VerifyResult,
        create,
        decrypt,
        keygen,
        keygen_x25519,
        list_backups,
        prune,
        restore,
        show,
        verify,
    )
    from migration_guard.backup.manifest import Manifest
    from migration_guard.backup.retention import PrunePlan, RetentionPolicy

_EXPORTS = {
    "create": "migration_guard.backup.engine",
    "restore": "migration_guard.backup.engine",
    "verify": "migration_guard.backup.engine",
    "prune": "migration_guard.backup.engine",
    "list_backups": "migration_guard.backup.engine",
    "show": "migration_guard.backup.engine",
    "decrypt": "migration_guard.backup.engine",
    "keygen": "migration_guard.backup.engine",
    "keygen_x25519": "migration_guard.backup.engine",
    "RestoreResult": "migration_guard.backup.engine",
    "VerifyResult": "migration_guard.backup.engine",
    "Manifest": "migration_guard.backup.manifest",
    "PrunePlan": "migration_guard.backup.retention",
    "RetentionPolicy": "migration_guard.backup.retention",
}

__all__ = [
    "Manifest",
    "PrunePlan",
    "RestoreResult",
    "RetentionPolicy",
    "VerifyResult",
    "create",
    "decrypt",
    "keygen",
    "keygen_x25519",
    "list_backups",
    "prune",
    "restore",
    "show",
    "verify",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

"""``[tool.migration_guard.upgrade]``: the defaults of ``upgrade``/``downgrade``.

Read once per run through :func:`migration_guard.config.read_section`, so an unknown
key or a value of the wrong type is a :class:`~migration_guard.errors.ConfigError`
naming the key before anything is locked or changed. See docs/upgrade.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migration_guard.config import Config, read_section
from migration_guard.errors import ConfigError

#: ``--backup`` / ``backup``: when the safety backup is taken.
BACKUP_MODES = ("always", "destructive", "never")
#: ``backup_scope``: what the safety backup covers.
BACKUP_SCOPES = ("touched", "full")

_TYPES: Mapping[str, type | tuple[type, ...]] = {
    "lock_timeout": (int, float),
    "backup_scope": str,
    "backup": str,
}


@dataclass(frozen=True)
class UpgradeSettings:
    """``[tool.migration_guard.upgrade]``; see docs/upgrade.md."""

    lock_timeout: float = 60.0
    #: ``touched``: the tables the plan touches, the protected ones and the version table;
    #: ``full``: the whole database.
    backup_scope: str = "touched"
    #: Default of ``--backup``.
    backup: str = "destructive"


def upgrade_settings(config: Config) -> UpgradeSettings:
    """Validated ``[tool.migration_guard.upgrade]``; unknown keys are a ConfigError."""
    raw: Mapping[str, Any] = config.sections.get("upgrade", {}) or {}
    where = f"{config.source or 'config'}: [tool.migration_guard.upgrade]"
    values = read_section(raw, where=where, types=_TYPES)
    timeout = values.get("lock_timeout", 60.0)
    if timeout < 0:
        raise ConfigError(
            f"{where}: lock_timeout must be a number of seconds >= 0, e.g. lock_timeout = 60",
            key="lock_timeout",
        )
    values["lock_timeout"] = float(timeout)
    if values.get("backup_scope", "touched") not in BACKUP_SCOPES:
        raise ConfigError(
            f"{where}: backup_scope must be one of {', '.join(BACKUP_SCOPES)}",
            key="backup_scope",
        )
    if values.get("backup", "destructive") not in BACKUP_MODES:
        raise ConfigError(f"{where}: backup must be one of {', '.join(BACKUP_MODES)}", key="backup")
    return UpgradeSettings(**values)

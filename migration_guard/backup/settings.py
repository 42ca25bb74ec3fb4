"""``[tool.migration_guard.backup]``: the backup settings, read and checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from migration_guard.backup.retention import POLICY_KEYS, RetentionPolicy
from migration_guard.config import Config, read_section
from migration_guard.errors import ConfigError

#: What ``verify_after_backup`` may say: ``quick`` re-reads the file just written (level 0),
#: ``level1`` runs a level-1 verification (``full`` is its older name), ``off`` neither.
VERIFY_AFTER_BACKUP = ("quick", "level1", "full", "off")
#: The value :class:`BackupSettings` holds for each accepted spelling.
_VERIFY_AFTER_BACKUP_MEANS = {"level1": "full"}
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class BackupSettings:
    """``[tool.migration_guard.backup]``; see docs/backups.md."""

    keep_days: int = 30
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    auto_prune: bool = False
    compress: str = "zstd"
    level: int | None = None
    backend: str | None = None
    catalog_table: str | None = None
    threads: int = 2
    #: ``quick`` re-hashes the written file, ``full`` (written ``level1`` or ``full`` in the
    #: configuration) runs a level-1 verify that pins the backup, ``off`` skips.
    verify_after_backup: str = "quick"
    #: Also record the server's own ``CHECKSUM TABLE`` (reads every table again).
    server_checksums: bool = False
    #: Refuse a backup without a key. ``None``: yes once the catalog holds an
    #: encrypted backup, unless the caller opts out (``encrypt=False``).
    require_encryption: bool | None = None

    @property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(
            keep_days=self.keep_days,
            keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly,
            keep_monthly=self.keep_monthly,
        )


_SETTING_TYPES: dict[str, type] = {
    "keep_days": int,
    "keep_daily": int,
    "keep_weekly": int,
    "keep_monthly": int,
    "auto_prune": bool,
    "compress": str,
    "level": int,
    "backend": str,
    "catalog_table": str,
    "threads": int,
    "verify_after_backup": str,
    "server_checksums": bool,
    "require_encryption": bool,
}
#: The smallest value each count accepts.
_MINIMUMS = {**dict.fromkeys(POLICY_KEYS, 0), "threads": 1}


def backup_settings(config: Config) -> BackupSettings:
    """Validated ``[tool.migration_guard.backup]`` settings; unknown keys are a ConfigError."""
    where = f"{config.source or 'config'}: [tool.migration_guard.backup]"
    values: dict[str, Any] = read_section(
        config.sections.get("backup", {}) or {}, where=where, types=_SETTING_TYPES
    )
    for key, minimum in _MINIMUMS.items():
        if key in values and values[key] < minimum:
            raise ConfigError(f"{where}: {key} must not be negative", key=key)
    if values.get("verify_after_backup", "quick") not in VERIFY_AFTER_BACKUP:
        raise ConfigError(
            f"{where}: verify_after_backup must be one of {', '.join(VERIFY_AFTER_BACKUP)}",
            key="verify_after_backup",
        )
    if "verify_after_backup" in values:
        value = values["verify_after_backup"]
        values["verify_after_backup"] = _VERIFY_AFTER_BACKUP_MEANS.get(value, value)
    table = values.get("catalog_table")
    if table is not None and not _TABLE_NAME.match(table):
        raise ConfigError(
            f"{where}: catalog_table must be a plain table name (letters, digits, _)",
            key="catalog_table",
        )
    return BackupSettings(**values)

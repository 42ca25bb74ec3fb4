"""The storage check: how much the backup directory holds."""

from __future__ import annotations

import os
from pathlib import Path

from migration_guard.durations import format_size
from migration_guard.errors import describe
from migration_guard.monitoring.health import FAILED, OK, SKIPPED, CheckResult, HealthContext


def storage_used(directory: Path) -> int:
    """Bytes of every file directly in the backup directory."""
    total = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def check_max_storage(context: HealthContext) -> list[CheckResult]:
    """The backup directory must not hold more than ``max_storage``."""
    limit = context.settings.max_storage
    if context.location_error:
        return []
    if limit is None:
        return [CheckResult("max_storage", SKIPPED, "no max_storage set")]
    try:
        used = storage_used(context.backup_dir)
    except OSError as exc:
        return [
            CheckResult(
                "max_storage", FAILED, f"cannot measure {context.backup_dir}: {describe(exc)}"
            )
        ]
    status = FAILED if used > limit else OK
    return [CheckResult("max_storage", status, f"{format_size(used)} used of {format_size(limit)}")]

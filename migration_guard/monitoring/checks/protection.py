"""The protection-drift check: the one check that reads the database, not the backups."""

from __future__ import annotations

import os

from migration_guard.config import URL_ENV
from migration_guard.errors import MigrationGuardError
from migration_guard.monitoring.health import FAILED, OK, SKIPPED, CheckResult, HealthContext
from migration_guard.protect.operations import protect_status


def check_protection_drift(context: HealthContext) -> list[CheckResult]:
    """Protection installed in the database must still be intact (triggers, grants)."""
    url = context.config.url or os.environ.get(URL_ENV)
    if not url:
        return [
            CheckResult(
                "protection_drift",
                SKIPPED,
                f"no database URL (url or {URL_ENV}) to check protection",
            )
        ]
    try:
        state = protect_status(context.config, url=url)
    except MigrationGuardError as exc:
        return [CheckResult("protection_drift", FAILED, f"cannot check protection: {exc}")]
    except Exception as exc:  # a crashing check must fail, never pass
        return [
            CheckResult(
                "protection_drift", FAILED, f"cannot check protection: {type(exc).__name__}"
            )
        ]
    if not state.installed:
        return [
            CheckResult(
                "protection_drift",
                SKIPPED,
                "protection is not installed (`migration-guard protect install`)",
            )
        ]
    if state.drifted:
        details = list(state.drift) + [
            f"table {table.table}: drifted" for table in state.tables if table.drifted
        ]
        return [
            CheckResult(
                "protection_drift",
                FAILED,
                "the installed protection differs from the configuration; run "
                "`migration-guard protect status`",
                details=details,
            )
        ]
    return [CheckResult("protection_drift", OK, "protection installed as configured")]

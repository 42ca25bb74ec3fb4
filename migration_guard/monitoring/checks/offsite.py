"""The offsite check: the newest backup has a copy in every configured offsite location."""

from __future__ import annotations

from migration_guard.monitoring.health import (
    FAILED,
    MONITORED_TYPES,
    OK,
    SKIPPED,
    CheckResult,
    HealthContext,
)


def check_offsite_copies(context: HealthContext) -> list[CheckResult]:
    """Every ``offsite`` location must hold the newest backup (archive and manifest).

    Only listed, not read back: ``backups verify`` reads every copy whole.
    """
    if not context.config.offsite:
        return [CheckResult("offsite_copies", SKIPPED, "no offsite location configured")]
    if context.location_error:
        return []
    newest = next((m for m in context.manifests if m.type in MONITORED_TYPES), None)
    if newest is None:
        return [CheckResult("offsite_copies", SKIPPED, "no backup yet")]
    from migration_guard.backup.catalog import Catalog
    from migration_guard.backup.offsite import backup_locations

    found, problems = backup_locations(context.config, Catalog(context.backup_dir), [newest])
    missing = [loc for loc in context.config.offsite if loc not in found[newest.id]]
    if missing:
        return [
            CheckResult(
                "offsite_copies",
                FAILED,
                f"the newest backup {newest.id} has no copy in {', '.join(missing)}; "
                "run `migration-guard backups sync`",
                details=problems,
            )
        ]
    return [
        CheckResult(
            "offsite_copies",
            OK,
            f"the newest backup {newest.id} is in all {len(context.config.offsite)} "
            "offsite location(s)",
        )
    ]

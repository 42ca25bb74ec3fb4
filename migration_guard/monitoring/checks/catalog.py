"""Checks on what the catalog holds: the location itself, backup age and backup size."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migration_guard.durations import format_duration, format_size
from migration_guard.monitoring.health import FAILED, OK, CheckResult, HealthContext

if TYPE_CHECKING:
    from migration_guard.backup.manifest import Manifest


def check_backup_location(context: HealthContext) -> list[CheckResult]:
    """The location must be readable and every manifest in it valid."""
    if context.location_error:
        return [CheckResult("backup_location", FAILED, context.location_error)]
    if context.catalog_problems:
        return [
            CheckResult(
                "backup_location",
                FAILED,
                f"{len(context.catalog_problems)} manifest(s) in {context.backup_dir} "
                "cannot be read",
                details=context.catalog_problems,
            )
        ]
    return [
        CheckResult(
            "backup_location", OK, f"{len(context.manifests)} backup(s) in {context.backup_dir}"
        )
    ]


def check_max_age(context: HealthContext) -> list[CheckResult]:
    """The newest backup of each type must be younger than its ``max_age``."""
    if context.location_error:
        return []
    ages = dict(context.settings.max_age)
    default = ages.pop("*", None)
    limits = dict(ages)
    if default is not None:
        for backup_type in {"full", *(t for t in context.types_present() if t != "tables")}:
            limits.setdefault(backup_type, default)
    results = []
    for backup_type, limit in sorted(limits.items()):
        newest = context.of_type(backup_type)
        if not newest:
            results.append(
                CheckResult(
                    "max_age",
                    FAILED,
                    f"no {backup_type} backup at all (expected one at least every "
                    f"{format_duration(limit)})",
                    subject=backup_type,
                )
            )
            continue
        age = context.age(newest[0].finished_at)
        status = FAILED if age > limit else OK
        results.append(
            CheckResult(
                "max_age",
                status,
                f"newest {backup_type} backup {newest[0].id} is {format_duration(age)} old "
                f"(limit {format_duration(limit)})",
                subject=backup_type,
            )
        )
    return results


def _total_rows(manifest: Manifest) -> int | None:
    counts = [entry.rows for entry in manifest.tables.values() if entry.ref is None]
    if not counts or any(count is None for count in counts):
        return None
    return sum(count for count in counts if count is not None)


def _comparable_size(manifest: Manifest) -> int:
    plain = manifest.artifact.plain_size
    return plain if plain is not None else manifest.artifact.size


def check_min_size(context: HealthContext) -> list[CheckResult]:
    """An empty, too small, shrunken or exploded newest backup per type is flagged."""
    if context.location_error:
        return []
    settings = context.settings
    results = []
    for backup_type in context.types_present():
        history = context.of_type(backup_type)
        newest = history[0]
        problems: list[str] = []
        if newest.artifact.size == 0 or newest.artifact.plain_size == 0:
            problems.append(f"{newest.id} is a 0-byte backup")
        if newest.parent:  # an incremental holds changes, no tables; any size is right
            pass
        elif not newest.tables:
            problems.append(f"{newest.id} contains no table at all")
        elif _total_rows(newest) == 0:
            problems.append(
                f"{newest.id} is an empty dump: 0 rows in {len(newest.tables)} table(s)"
            )
        if newest.artifact.size < settings.min_size:
            problems.append(
                f"{newest.id} is {format_size(newest.artifact.size)}, below "
                f"min_size {format_size(settings.min_size)}"
            )
        previous = [
            m for m in history[1:] if set(m.tables) == set(newest.tables) or backup_type != "tables"
        ]
        if previous and _comparable_size(previous[0]) > 0 and not newest.parent:
            ratio = _comparable_size(newest) / _comparable_size(previous[0])
            if ratio < settings.max_shrink:
                problems.append(
                    f"{newest.id} shrank to {ratio:.0%} of the previous {backup_type} backup "
                    f"{previous[0].id} ({format_size(_comparable_size(newest))} vs "
                    f"{format_size(_comparable_size(previous[0]))}; max_shrink "
                    f"{settings.max_shrink:g})"
                )
            elif ratio > settings.max_growth:
                problems.append(
                    f"{newest.id} grew {ratio:.1f}x against the previous {backup_type} backup "
                    f"{previous[0].id} (max_growth {settings.max_growth:g})"
                )
        if problems:
            results.append(
                CheckResult("min_size", FAILED, problems[0], details=problems, subject=backup_type)
            )
        else:
            results.append(
                CheckResult(
                    "min_size",
                    OK,
                    f"newest {backup_type} backup is {format_size(newest.artifact.size)}",
                    subject=backup_type,
                )
            )
    return results

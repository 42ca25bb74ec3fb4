"""Checks that backups were proven usable in time: verification and restore drills.

Both count from the oldest backup that is not proven yet. A backup is proven
when it, or a newer backup of the same source database, passed the proof: a
verification of level 1 or higher for ``verify_within`` (the re-read right after
writing, level 0, does not count), a restore test for ``drill_within``. The
check fails when a backup has waited longer than the window for its proof, or
when the most recent proof failed. A backup younger than the window is not a
failure, so a first ``backup`` followed by ``monitor`` is healthy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from migration_guard.backup.manifest import parse_time
from migration_guard.backup.retention import source_of
from migration_guard.durations import format_duration
from migration_guard.monitoring.health import (
    FAILED,
    MONITORED_TYPES,
    OK,
    SKIPPED,
    CheckResult,
    HealthContext,
)

if TYPE_CHECKING:
    from migration_guard.backup.manifest import Manifest


def _restore_tested(manifest: Manifest) -> bool:
    return manifest.verification.restore_test_ok is True


def _unproven(context: HealthContext, proven: Callable[[Manifest], bool]) -> list[Manifest]:
    """Backups that neither were proven themselves nor have a proven newer one of their
    source, newest first (safety backups are not judged)."""
    waiting: list[Manifest] = []
    seen_proven: set[str] = set()
    for manifest in context.manifests:  # newest first
        if manifest.type not in MONITORED_TYPES:
            continue
        source = source_of(manifest)
        if source in seen_proven:
            continue
        if proven(manifest):
            seen_proven.add(source)
        else:
            waiting.append(manifest)
    return waiting


def _waiting_result(
    check: str,
    context: HealthContext,
    window: timedelta,
    waiting: list[Manifest],
    proven_summary: str,
    remedy: Callable[[Manifest], str],
) -> list[CheckResult]:
    """OK while the oldest unproven backup is younger than ``window``, FAILED after."""
    if not waiting:
        return [CheckResult(check, OK, proven_summary)]
    oldest = min(waiting, key=lambda m: (m.finished, m.id))
    written = context.ago(oldest.finished_at)
    if context.age(oldest.finished_at) > window:
        newest_of_source = next(m for m in waiting if source_of(m) == source_of(oldest))
        return [
            CheckResult(
                check,
                FAILED,
                f"backup {oldest.id} was written {written} and neither it nor a newer "
                f"backup of {source_of(oldest)} was proven within {format_duration(window)}; "
                f"{remedy(newest_of_source)}",
                details=[f"{len(waiting)} backup(s) not proven yet"],
            )
        ]
    return [
        CheckResult(
            check,
            OK,
            f"{len(waiting)} backup(s) not proven yet; the oldest, {oldest.id}, was written "
            f"{written} (limit {format_duration(window)})",
        )
    ]


def check_verify_within(context: HealthContext) -> list[CheckResult]:
    """Every backup must be verified (level 1 or more; itself or a newer backup of its
    source) within ``verify_within`` of being written, and the most recent
    verification must have passed."""
    window = context.settings.verify_within
    if context.location_error:
        return []
    if window is None:
        return [CheckResult("verify_within", SKIPPED, "verify_within is off")]
    checked = [
        m
        for m in context.manifests
        if m.verification.last_verified_at and (m.verification.level or 0) >= 1
    ]
    latest = max(
        checked, key=lambda m: parse_time(m.verification.last_verified_at or ""), default=None
    )
    if latest is not None and latest.verification.ok is False:
        moment = latest.verification.last_verified_at or ""
        return [
            CheckResult(
                "verify_within",
                FAILED,
                f"the last verification ({latest.id}, {context.ago(moment)}) FAILED",
                details=list(latest.verification.details),
            )
        ]
    proven_summary = (
        f"{latest.id} verified {context.ago(latest.verification.last_verified_at or '')}"
        if latest is not None
        else "no backup to verify yet"
    )
    return _waiting_result(
        "verify_within",
        context,
        window,
        _unproven(context, lambda manifest: manifest.verified),
        proven_summary,
        lambda newest: (
            f"run `migration-guard backups verify {newest.id}`, or set "
            'verify_after_backup = "level1"'
        ),
    )


def check_drill_within(context: HealthContext) -> list[CheckResult]:
    """Every backup must be covered by a passed restore drill (of itself or a newer
    backup of its source) within ``drill_within``, and the last drill must have passed."""
    window = context.settings.drill_within
    if context.location_error:
        return []
    if window is None:
        return [CheckResult("drill_within", SKIPPED, "drill_within is off")]
    tested = [m for m in context.manifests if m.verification.restore_test_at]
    failed_drills = [e for e in context.events if e.subject == "drill" and e.outcome == "failure"]
    latest = max(
        tested, key=lambda m: parse_time(m.verification.restore_test_at or ""), default=None
    )
    moment = latest.verification.restore_test_at or "" if latest is not None else ""
    if failed_drills and (
        latest is None or parse_time(failed_drills[0].timestamp) > parse_time(moment)
    ):
        return [
            CheckResult(
                "drill_within",
                FAILED,
                f"the last restore drill failed "
                f"{context.ago(failed_drills[0].timestamp)}: "
                f"{failed_drills[0].summary}",
                details=failed_drills[0].details,
            )
        ]
    if latest is not None and latest.verification.restore_test_ok is not True:
        return [
            CheckResult(
                "drill_within",
                FAILED,
                f"the last restore drill ({latest.id}, {context.ago(moment)}) FAILED",
                details=list(latest.verification.details),
            )
        ]
    proven_summary = (
        f"restore drill of {latest.id} passed {context.ago(moment)}"
        if latest is not None
        else "no backup to drill yet"
    )
    return _waiting_result(
        "drill_within",
        context,
        window,
        _unproven(context, _restore_tested),
        proven_summary,
        lambda newest: "run `migration-guard drill --url SCRATCH_URL`",
    )

"""Checks that backups were proven usable recently: verification and restore drills."""

from __future__ import annotations

from migration_guard.backup.manifest import parse_time
from migration_guard.durations import format_duration
from migration_guard.monitoring.health import FAILED, OK, SKIPPED, CheckResult, HealthContext


def check_verify_within(context: HealthContext) -> list[CheckResult]:
    """Some backup must have been verified (level 1 or more) within ``verify_within``,
    and the most recent verification must have passed."""
    window = context.settings.verify_within
    if context.location_error:
        return []
    if window is None:
        return [CheckResult("verify_within", SKIPPED, "verify_within is off")]
    verified = [
        m
        for m in context.manifests
        if m.verification.last_verified_at and (m.verification.level or 0) >= 1
    ]
    if not verified:
        return [
            CheckResult(
                "verify_within",
                FAILED,
                "no backup was ever verified; run `migration-guard backups verify "
                "ID` or `migration-guard drill`",
            )
        ]
    latest = max(verified, key=lambda m: parse_time(m.verification.last_verified_at or ""))
    moment = latest.verification.last_verified_at or ""
    if latest.verification.ok is False:
        return [
            CheckResult(
                "verify_within",
                FAILED,
                f"the last verification ({latest.id}, {context.ago(moment)}) FAILED",
                details=list(latest.verification.details),
            )
        ]
    if context.age(moment) > window:
        return [
            CheckResult(
                "verify_within",
                FAILED,
                f"no backup verified within {format_duration(window)}; the last "
                f"verification was {context.ago(moment)} ({latest.id})",
            )
        ]
    return [CheckResult("verify_within", OK, f"{latest.id} verified {context.ago(moment)}")]


def check_drill_within(context: HealthContext) -> list[CheckResult]:
    """A restore drill (restore test) must have passed within ``drill_within``."""
    window = context.settings.drill_within
    if context.location_error:
        return []
    if window is None:
        return [CheckResult("drill_within", SKIPPED, "drill_within is off")]
    tested = [m for m in context.manifests if m.verification.restore_test_at]
    failed_drills = [e for e in context.events if e.subject == "drill" and e.outcome == "failure"]
    if not tested:
        if failed_drills:
            return [
                CheckResult(
                    "drill_within",
                    FAILED,
                    f"the last restore drill failed: {failed_drills[0].summary}",
                )
            ]
        return [
            CheckResult(
                "drill_within",
                FAILED,
                "no restore drill was ever run; run `migration-guard drill --url SCRATCH_URL`",
            )
        ]
    latest = max(tested, key=lambda m: parse_time(m.verification.restore_test_at or ""))
    moment = latest.verification.restore_test_at or ""
    if failed_drills and parse_time(failed_drills[0].timestamp) > parse_time(moment):
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
    if latest.verification.restore_test_ok is not True:
        return [
            CheckResult(
                "drill_within",
                FAILED,
                f"the last restore drill ({latest.id}, {context.ago(moment)}) FAILED",
                details=list(latest.verification.details),
            )
        ]
    if context.age(moment) > window:
        return [
            CheckResult(
                "drill_within",
                FAILED,
                f"no restore drill within {format_duration(window)}; the last one "
                f"was {context.ago(moment)} ({latest.id})",
            )
        ]
    return [
        CheckResult(
            "drill_within", OK, f"restore drill of {latest.id} passed {context.ago(moment)}"
        )
    ]

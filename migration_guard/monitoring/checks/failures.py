"""Checks on failed backup runs: failures come from the event log, successes from the catalog."""

from __future__ import annotations

from migration_guard.backup.manifest import parse_time
from migration_guard.monitoring.health import (
    FAILED,
    MONITORED_TYPES,
    OK,
    CheckResult,
    HealthContext,
)


def _backup_runs(context: HealthContext, backup_type: str) -> list[tuple[str, bool, str]]:
    """(time, succeeded, text) of the backup runs of one type, newest first.

    Successes come from the catalog (it survives a lost event log), failures from events.
    """
    runs = [(m.finished_at, True, m.id) for m in context.of_type(backup_type)]
    for event in context.events:
        if (
            event.subject == "backup"
            and event.outcome == "failure"
            and event.data.get("type") == backup_type
        ):
            runs.append((event.timestamp, False, event.summary))
    runs.sort(key=lambda run: parse_time(run[0]), reverse=True)
    return runs


def _failed_types(context: HealthContext) -> list[str]:
    types = set(context.types_present())
    for event in context.events:
        if event.subject == "backup" and event.outcome == "failure":
            backup_type = event.data.get("type")
            if isinstance(backup_type, str) and backup_type in MONITORED_TYPES:
                types.add(backup_type)
    return [t for t in MONITORED_TYPES if t in types]


def check_last_backup_failed(context: HealthContext) -> list[CheckResult]:
    """The most recent run of each backup type must have succeeded."""
    if context.location_error:
        return []
    results = []
    for backup_type in _failed_types(context):
        runs = _backup_runs(context, backup_type)
        if not runs:
            continue
        moment, succeeded, text = runs[0]
        if succeeded:
            results.append(
                CheckResult(
                    "last_backup_failed",
                    OK,
                    f"last {backup_type} backup succeeded ({context.ago(moment)})",
                    subject=backup_type,
                )
            )
        else:
            results.append(
                CheckResult(
                    "last_backup_failed",
                    FAILED,
                    f"the last {backup_type} backup failed {context.ago(moment)}: {text}",
                    subject=backup_type,
                )
            )
    return results


def check_consecutive_failures(context: HealthContext) -> list[CheckResult]:
    """No backup type may fail ``max_consecutive_failures`` times in a row."""
    if context.location_error:
        return []
    limit = context.settings.max_consecutive_failures
    results = []
    for backup_type in _failed_types(context):
        streak = 0
        for _, succeeded, _text in _backup_runs(context, backup_type):
            if succeeded:
                break
            streak += 1
        status = FAILED if streak >= limit else OK
        results.append(
            CheckResult(
                "consecutive_failures",
                status,
                f"{streak} consecutive failed {backup_type} backup(s) (limit {limit})",
                subject=backup_type,
            )
        )
    return results

"""Run records and the audit log of guarded runs.

A run record (``<backup dir>/runs/<run id>.json``) is rewritten atomically at each
step of a run, so that a run killed mid-migration leaves behind what the next run
needs to restore the state from before it. The audit log
(``<backup dir>/audit.jsonl``) gets one line per finished run: who ran what, the
findings, the approvals and the outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.backup.catalog import AUDIT_FILE
from migration_guard.backup.manifest import created_by
from migration_guard.config import Config
from migration_guard.dialects.digests import digest_method

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migration_guard.alembic.results import UpgradeResult
    from migration_guard.dialects.base import DialectOps, TableStats

RUNS_DIR = "runs"


def runs_dir(config: Config) -> Path:
    """Where run records live: ``<backup dir>/runs``."""
    from migration_guard.backup.catalog import resolve_backup_dir

    return resolve_backup_dir(config) / RUNS_DIR


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """Replace the run record at ``path`` atomically (a crash leaves the old or the new)."""
    from migration_guard.backup.catalog import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(record, indent=2, sort_keys=True).encode("utf-8"))


def append_audit(config: Config, entry: Mapping[str, Any]) -> Path:
    """Append one JSON line to ``<backup dir>/audit.jsonl`` (flock-serialised, fsynced)."""
    from migration_guard.backup.catalog import resolve_backup_dir

    directory = resolve_backup_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / AUDIT_FILE
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(ImportError, OSError):
            import fcntl

            fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return path


def audit_entry(
    result: UpgradeResult, *, command: str, target: str, started_at: str
) -> dict[str, Any]:
    """The audit-log line of a finished run (also what the upgrade event reports)."""
    return {
        "run_id": result.run_id,
        "command": command,
        "who": who(),
        "when": started_at,
        "database": result.database,
        "from": result.from_heads,
        "to": result.to_heads,
        "target": target,
        "outcome": result.outcome,
        "error": result.error,
        "findings": [
            {
                "rule": f.rule,
                "table": f.table,
                "file": f.file,
                "line": f.line,
                "severity": f.severity.value,
                "suppressed": f.suppressed,
            }
            for f in result.findings
        ],
        "approvals": result.approvals,
        "backup_id": result.backup_id,
        "just_in_time_backups": result.jit_backups,
        "restore": result.restore.to_dict() if result.restore else None,
        "duration_seconds": round(result.seconds, 3),
    }


def who() -> str:
    """``user@host`` of this process, for records, labels and the audit log."""
    return created_by()


def now() -> str:
    """The current UTC time as recorded in run records (ISO 8601, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stats_dict(stats: TableStats) -> dict[str, Any]:
    """A table's measurement as stored in the run record (``pre_stats``), with the
    method of its checksum (``digest``) where the dialect names one: a recovery,
    maybe by a later version, measures the table again by the same method."""
    return {
        "rows": stats.rows,
        "checksum": stats.checksum,
        "ddl_sha256": stats.ddl_sha256,
        "size": stats.size_bytes,
        **({"digest": stats.digest} if stats.digest is not None else {}),
    }


def measured_as_recorded(
    ops: DialectOps,
    conn: Connection,
    tables: Sequence[str],
    recorded: Mapping[str, Mapping[str, Any]],
) -> dict[str, TableStats]:
    """``tables`` measured to compare with their ``recorded`` measurements (``pre_stats``):
    each checksum by the method its record names (a record that names none: the
    dialect's unnamed one, as older versions wrote them). An unknown method:
    :class:`~migration_guard.errors.UsageError`, nothing measured."""
    groups: dict[str | None, list[str]] = {}
    for table in tables:
        method = digest_method(ops, (recorded.get(table) or {}).get("digest"))
        groups.setdefault(method, []).append(table)
    found: dict[str, TableStats] = {}
    for method, names in groups.items():
        found.update(ops.table_stats(conn, names, digest=method))
    return found


def measured(ops: DialectOps, conn: Connection, tables: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each of ``tables`` measured for the run record (:func:`stats_dict`), with the hash
    of its whole definition where the database has one (``definition_sha256``)."""
    measures = {name: stats_dict(stats) for name, stats in ops.table_stats(conn, tables).items()}
    for name, definition in ops.table_definitions(conn, tables).items():
        measures[name]["definition_sha256"] = definition
    return measures


def describe_interrupted(record: Mapping[str, Any]) -> str:
    """Which earlier run was interrupted, by whom and when, for the user."""
    return (
        f"run {record.get('run_id')} ({record.get('command')} to {record.get('target')}, "
        f"started {record.get('started_at')} by {record.get('who')}, pid "
        f"{record.get('pid')}) was interrupted mid-migration"
    )

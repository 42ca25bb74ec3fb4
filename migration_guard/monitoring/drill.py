"""The recovery drill: restore a backup into a scratch database and prove it.

This is the "monthly recovery test" made a command. It restores the newest
backup (or a chosen one) into a database with a generated name on the server of
the scratch URL (SQLite: a temporary file), compares every table's rows and
checksum with the manifest, times it, drops the scratch database and records
the outcome in the manifest, the event log and, on failure, a notification.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from migration_guard.config import SCRATCH_URL_ENV, Config
from migration_guard.errors import MigrationGuardError, UsageError
from migration_guard.events import Event
from migration_guard.monitoring.emit import emit, quiet


@dataclass
class DrillResult:
    """Outcome of one drill."""

    backup_id: str
    backup_type: str
    ok: bool
    seconds: float
    tables: int
    rows: int | None
    reason: str | None = None
    details: list[str] = field(default_factory=list)
    drilled_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "type": self.backup_type,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "tables": self.tables,
            "rows": self.rows,
            "reason": self.reason,
            "details": list(self.details),
            "drilled_at": self.drilled_at,
        }


def _pick(config: Config, backup_id: str | None) -> Any:
    """The backup to drill; one the local directory lacks comes from an offsite copy."""
    from migration_guard.backup.catalog import Catalog
    from migration_guard.backup.fetching import fetch_missing, newest_copy

    catalog = Catalog.for_config(config)
    if backup_id:
        if config.offsite:
            fetch_missing(config, catalog, backup_id)
        return catalog.get(backup_id)
    candidates = _local_candidates(catalog)
    if not candidates and config.offsite:
        # The host (or its disk) is gone: the drill proves the offsite copy restores.
        newest = newest_copy(config)
        if newest:
            fetch_missing(config, catalog, newest)
            candidates = _local_candidates(catalog)
    if not candidates:
        raise MigrationGuardError(
            f"nothing to drill: no backup in {catalog.path}; run `migration-guard backup` first"
        )
    return candidates[0]


def _local_candidates(catalog: Any) -> list[Any]:
    return [m for m in catalog.list() if m.type != "safety"]


def drill(config: Config, *, url: str | None, backup_id: str | None = None) -> DrillResult:
    """Restore ``backup_id`` (default: the newest backup) into a scratch database and check it.

    ``url`` names the scratch server (``MIGRATION_GUARD_SCRATCH_URL`` when None); the
    database in it is never touched, a new one with a generated name is used and
    dropped. Raises :class:`UsageError` when there is no scratch URL.
    """
    from migration_guard.backup.engine import verify
    from migration_guard.backup.manifest import format_time, utc_now

    scratch = url or os.environ.get(SCRATCH_URL_ENV)
    if not scratch:
        raise UsageError(
            "drill needs a scratch database server: pass --url SCRATCH_URL or set "
            f"{SCRATCH_URL_ENV} (a new database with a generated name is created there and "
            "dropped afterwards; for SQLite use sqlite:// for a temporary file)"
        )
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(scratch)
    except ArgumentError:
        raise UsageError(
            "the scratch URL is not a SQLAlchemy URL; expected e.g. "
            "mysql+pymysql://user@host/ or sqlite://"
        ) from None
    manifest = _pick(config, backup_id)
    rows = sum(e.rows or 0 for e in manifest.tables.values()) if manifest.tables else None
    started = time.monotonic()
    drilled_at = format_time(utc_now())
    result = DrillResult(
        manifest.id, manifest.type, False, 0.0, len(manifest.tables), rows, drilled_at=drilled_at
    )
    try:
        with quiet():  # the drill reports its own outcome, once
            verified = verify(config, manifest.id, restore_test=True, scratch_url=scratch)
        result.ok = verified.ok and verified.restore_test_ok is True
        result.reason = verified.reason
        result.details = list(verified.details)
    except UsageError:
        raise
    except MigrationGuardError as exc:
        result.reason = "error"
        result.details = [str(exc)]
    except Exception as exc:  # a drill reports, it does not crash
        result.reason = "error"
        result.details = [f"{type(exc).__name__} during the restore"]
    result.seconds = time.monotonic() - started
    _record_in_manifest(config, result)
    summary = (
        f"restore drill of {manifest.id} passed: {result.tables} table(s) restored and equal "
        f"in {result.seconds:.1f} s"
        if result.ok
        else f"restore drill of {manifest.id} FAILED ({result.reason}): "
        + (result.details[0] if result.details else "no details")
    )
    emit(
        config,
        Event(
            subject="drill",
            outcome="success" if result.ok else "failure",
            summary=summary,
            details=result.details,
            backup_id=manifest.id,
            data={
                "type": manifest.type,
                "seconds": round(result.seconds, 3),
                "tables": result.tables,
                "rows": rows,
            },
        ),
    )
    return result


def _record_in_manifest(config: Config, result: DrillResult) -> None:
    """Keep the drill's timing and verdict next to the verification ``verify`` wrote."""
    from migration_guard.backup.catalog import Catalog

    catalog = Catalog.for_config(config)
    try:
        manifest = catalog.get(result.backup_id)
        manifest.extra["last_drill"] = {
            "at": result.drilled_at,
            "ok": result.ok,
            "seconds": round(result.seconds, 3),
            "reason": result.reason,
        }
        if not result.ok and manifest.verification.restore_test_ok is not False:
            manifest.verification.restore_test_at = result.drilled_at
            manifest.verification.restore_test_ok = False
        catalog.update(manifest)
    except (MigrationGuardError, OSError) as exc:
        result.details.append(f"the drill result could not be saved in the manifest: {exc}")

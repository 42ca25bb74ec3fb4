"""After a restore: does the database hold what the manifest says the backup holds?

Each function returns human-readable mismatches; an empty list means equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from migration_guard.backup.manifest import ROW_DIGEST_METHOD, Manifest, TableEntry
from migration_guard.dialects.digests import digest_method
from migration_guard.errors import MigrationGuardError, UsageError

if TYPE_CHECKING:
    from migration_guard.backup.backends.base import TableContent
    from migration_guard.dialects.base import DialectOps, TableStats


def recorded_digest(ops: DialectOps, manifest: Manifest) -> str | None:
    """The row digest method the live side is measured with to compare it with
    ``manifest``: the one it records (an older manifest: the dialect's unnamed one).
    :class:`~migration_guard.errors.UsageError` for a method this version lacks."""
    try:
        return digest_method(ops, manifest.extra.get(ROW_DIGEST_METHOD))
    except MigrationGuardError as exc:
        raise UsageError(f"backup {manifest.id}: {exc.message}") from None


def compare_stats(
    expected: Mapping[str, TableEntry],
    actual: Mapping[str, TableStats],
    digest: str | None = None,
) -> list[str]:
    """Mismatches between the manifest's tables and the restored database's, on
    every measure both sides have. ``digest``: the manifest's row digest method
    (:func:`recorded_digest`); a checksum measured with another is a mismatch, not
    a comparison."""
    mismatches: list[str] = []
    for name, entry in sorted(expected.items()):
        if entry.ref is not None:
            continue
        got = actual.get(name)
        if got is None:
            mismatches.append(f"table {name}: missing after restore")
            continue
        if entry.rows is not None and got.rows is not None and got.rows != entry.rows:
            mismatches.append(f"table {name}: {got.rows} rows, expected {entry.rows}")
        if entry.checksum is not None and got.checksum is not None and got.digest != digest:
            mismatches.append(
                f"table {name}: checksum measured with {got.digest}, the backup's with {digest}"
            )
        elif (
            entry.checksum is not None
            and got.checksum is not None
            and str(got.checksum) != str(entry.checksum)
        ):
            mismatches.append(f"table {name}: checksum {got.checksum}, expected {entry.checksum}")
        if entry.ddl_sha256 and got.ddl_sha256 and got.ddl_sha256 != entry.ddl_sha256:
            mismatches.append(f"table {name}: definition (DDL) differs")
    return mismatches


def compare_content(
    expected: Mapping[str, TableEntry], content: Mapping[str, TableContent], source: str
) -> list[str]:
    """Mismatches between the manifest's row digests and those read from ``source``
    ("the restored stream", "a new dump of the restored database")."""
    mismatches: list[str] = []
    for name, entry in sorted(expected.items()):
        if entry.ref is not None or not entry.content_sha256:
            continue
        seen = content.get(name)
        if seen is None:
            mismatches.append(f"table {name}: no rows of it in {source}")
        elif seen.sha256 != entry.content_sha256:
            mismatches.append(
                f"table {name}: the rows in {source} differ from the backup's "
                f"(content_sha256 {seen.sha256[:12]}, expected {entry.content_sha256[:12]})"
            )
        elif seen.rows is not None and entry.rows is not None and seen.rows != entry.rows:
            mismatches.append(f"table {name}: {seen.rows} rows in {source}, expected {entry.rows}")
    return mismatches


def measure_checksums(entries: Mapping[str, TableEntry]) -> bool:
    """Whether any entry records a server checksum (only then is it worth reading)."""
    return any(entry.checksum is not None for entry in entries.values())


def compare_objects(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Views, triggers, routines, events: by definition hash when known, else by name."""
    mismatches: list[str] = []
    for kind, wanted in sorted(expected.items()):
        got = actual.get(kind) or {}
        singular = kind[:-1] if kind.endswith("s") else kind
        if isinstance(wanted, Mapping):
            for name, digest in sorted(wanted.items()):
                if name not in got:
                    mismatches.append(f"{singular} {name}: missing")
                elif got[name] != digest:
                    mismatches.append(f"{singular} {name}: definition differs")
        elif isinstance(wanted, (list, tuple)):
            names = sorted(map(str, wanted))
            mismatches.extend(f"{singular} {name}: missing" for name in names if name not in got)
    return mismatches

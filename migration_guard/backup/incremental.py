"""Incremental backups: the changes since the previous backup of the same source.

A chain is one full backup (its root, whose manifest records the binlog
coordinates of its snapshot) and the incrementals after it, each naming its
``parent`` and holding the events from the parent's end coordinates to its own
(``binlog.start`` and ``binlog.file``/``position``/``gtid``). Taking one needs a
backend with ``dump_since`` (``binlog`` for MySQL/MariaDB).

An incremental is one more kind of backup of :func:`creation.create
<migration_guard.backup.creation.create>`: :func:`incremental_job` says what to
dump and what the manifest records, and everything around it (keys, the refusal
of unencrypted backups, publishing, verification after the backup, offsite
copies, auto prune, events) is the same as for a full backup. Restoring a chain
is :mod:`~migration_guard.backup.chain`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.manifest import Manifest, redact_url
from migration_guard.backup.publish import DumpJob
from migration_guard.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.urls import PlainURL

INCREMENTAL = "incremental"
#: The backend that takes the incrementals of each dialect family.
INCREMENTAL_BACKEND = "binlog"
CHAIN_TYPES = ("full", INCREMENTAL)


def chain_end(catalog: Catalog, source: str) -> Manifest | None:
    """The newest full or incremental backup of ``source`` that records binlog coordinates."""
    candidates = [
        m
        for m in catalog.list()
        if m.source_url == source and m.type in CHAIN_TYPES and m.binlog and m.binlog.get("file")
    ]
    return max(candidates, key=lambda m: (m.finished_at, m.id), default=None)


def unsupported_message(dialect: str) -> str:
    """Why ``dialect`` has no incremental backups, and what to do instead (its backend says)."""
    from migration_guard.backup.backends import default_backend, get_backend

    reason = get_backend(default_backend(dialect)).no_incremental
    return f"--type incremental is not supported for {dialect} databases: {reason}"


def incremental_job(
    catalog: Catalog, target: URL | PlainURL, *, tables: Sequence[str] | None, backend: str | None
) -> DumpJob:
    """What an incremental backup of ``target`` dumps, checked before anything is written.

    :class:`UsageError` (exit 2) when the dialect has no incremental backend,
    the server keeps no binary log, or no full backup of the source exists yet;
    the dump raises :class:`BackupError` (exit 1) naming the gap when the
    changes since the parent can no longer be read (purged binlogs).
    """
    from migration_guard.backup.backends import get_backend

    if tables:
        raise UsageError("--type incremental backs up whole databases; drop --tables")
    if backend not in (None, INCREMENTAL_BACKEND):
        raise UsageError(
            f"--type incremental uses the {INCREMENTAL_BACKEND} backend; drop --backend {backend}"
        )
    dialect = target.get_backend_name()
    reader = get_backend(INCREMENTAL_BACKEND)
    dump_since = getattr(reader, "dump_since", None)
    if dialect.split("+", 1)[0] not in reader.dialects or dump_since is None:
        raise UsageError(unsupported_message(dialect))
    parent = chain_end(catalog, redact_url(target))
    if parent is None or parent.binlog is None:
        check_source = getattr(reader, "check_source", None)
        if check_source is not None:
            # No binary log is the problem to fix first (a full backup taken now would
            # record no coordinates). With a parent, the dump itself checks it.
            check_source(target)
        raise UsageError(
            f"there is no full backup of {redact_url(target)} with binlog coordinates yet: "
            "take a full backup first (migration-guard backup --type full); incremental "
            "backups hold the changes since it"
        )
    start = {
        "file": str(parent.binlog["file"]),
        "position": str(parent.binlog["position"]),
        "gtid": str(parent.binlog.get("gtid", "")),
    }

    def fields(result: Any) -> dict[str, Any]:
        return {
            "parent": parent.id,
            "server_version": parent.server_version,
            "binlog": dict(result.binlog or {}),
            "extra": {"database_options": parent.extra.get("database_options", {})},
        }

    return DumpJob(
        backend=INCREMENTAL_BACKEND,
        dump=lambda sink: dump_since(target, sink, start, None),
        fields=fields,
    )


def chain_index(manifests: Iterable[Manifest]) -> dict[str, dict[str, Any]]:
    """Per backup id: ``parent``, ``chain_root``, ``binlog_start`` and ``binlog_end``.

    ``chain_root`` is the full backup at the root of an incremental's chain (the
    backup itself for a full backup with binlog coordinates; None when the chain
    is broken or the backup is in no chain).
    """
    by_id = {m.id: m for m in manifests}
    index: dict[str, dict[str, Any]] = {}
    for manifest in by_id.values():
        root: Manifest | None = manifest
        seen: set[str] = set()
        while root is not None and root.type == INCREMENTAL and root.id not in seen:
            seen.add(root.id)
            root = by_id.get(root.parent or "")
        in_chain = manifest.type in CHAIN_TYPES and bool(manifest.binlog)
        binlog = manifest.binlog or {}
        start = binlog.get("start") if manifest.type == INCREMENTAL else None
        index[manifest.id] = {
            "parent": manifest.parent,
            "chain_root": root.id
            if in_chain and root is not None and root.type != INCREMENTAL
            else None,
            "binlog_start": _coordinates(start) if start else None,
            "binlog_end": _coordinates(binlog) if in_chain else None,
        }
    return index


def _coordinates(binlog: dict[str, Any]) -> dict[str, str]:
    return {
        "file": str(binlog.get("file", "")),
        "position": str(binlog.get("position", "")),
        "gtid": str(binlog.get("gtid", "") or ""),
    }

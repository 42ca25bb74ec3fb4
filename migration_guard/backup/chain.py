"""Restoring an incremental backup: its chain, replayed in order, up to a point in time.

A chain is one full backup (its root) and the incrementals after it, each
naming its ``parent`` (:mod:`~migration_guard.backup.incremental`). Restoring
an incremental restores the root and replays each incremental up to the one
asked for, in order. ``until`` (a time), ``until_position`` (``FILE:POS``) or
``until_gtid`` (``DOMAIN-SERVER-SEQ``) stop the replay before the first event
at that point; the chain is then followed past the backup named as far as the
point needs.

This module is also where :func:`restore` of the engine dispatches on the
backup type, so the full-backup path stays untouched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, BinaryIO

from migration_guard.backup import restoration
from migration_guard.backup.catalog import Catalog
from migration_guard.backup.incremental import INCREMENTAL
from migration_guard.backup.load import load_checked
from migration_guard.backup.manifest import Manifest, format_time
from migration_guard.backup.pins import pinning
from migration_guard.backup.streams import HashingSource, ProgressCallback
from migration_guard.backup.trust import check_before_restore, checked_archive, recheck_digest
from migration_guard.backup.verification import archive_key
from migration_guard.config import Config
from migration_guard.errors import BackupError, MigrationGuardError, RestoreFailed, UsageError
from migration_guard.urls import resolve_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.backup.backends.base import RestoreOptions
    from migration_guard.backup.backends.binlogpos import ReplayStop
    from migration_guard.backup.keys import UserKey
    from migration_guard.events import EventSink


def chain_of(catalog: Catalog, manifest: Manifest) -> list[Manifest]:
    """The backups from the root full backup to ``manifest``, oldest first, checked whole.

    Each incremental must start exactly where its parent ended: the same binlog
    file and position, and the same GTID position where both record one.
    """
    chain = [manifest]
    while chain[-1].type == INCREMENTAL:
        current = chain[-1]
        if not current.parent:
            raise BackupError(f"incremental backup {current.id} names no parent")
        try:
            parent = catalog.get(current.parent)
        except MigrationGuardError:
            raise BackupError(
                f"the chain of {manifest.id} is broken: its backup {current.parent} is missing"
            ) from None
        start = (current.binlog or {}).get("start") or {}
        ends = parent.binlog or {}
        for key in ("file", "position", "gtid"):
            if key == "gtid" and not (start.get(key) and ends.get(key)):
                continue
            if str(start.get(key)) != str(ends.get(key)):
                raise BackupError(
                    f"the chain of {manifest.id} is broken: {current.id} starts at {key} "
                    f"{start.get(key)} but its parent {parent.id} ends at {ends.get(key)}"
                )
        chain.append(parent)
        if len(chain) > 100_000:
            raise BackupError(f"the chain of {manifest.id} loops")
    return list(reversed(chain))


def _extend(catalog: Catalog, chain: list[Manifest]) -> list[Manifest]:
    """``chain`` followed forward through the incrementals taken after its last backup."""
    children: dict[str, list[Manifest]] = {}
    for member in catalog.list():
        if member.type == INCREMENTAL and member.parent:
            children.setdefault(member.parent, []).append(member)
    extended = list(chain)
    seen = {m.id for m in extended}
    while nexts := [m for m in children.get(extended[-1].id, []) if m.id not in seen]:
        following = min(nexts, key=lambda m: (m.started_at, m.id))
        extended.append(following)
        seen.add(following.id)
    return extended


@pinning("restore")
def restore(
    config: Config,
    backup_id: str,
    *,
    url: str | URL | None,
    tables: Sequence[str] | None = None,
    yes: bool = False,
    dry_run: bool = False,
    confirm: Callable[[str], bool] | None = None,
    safety_backup: bool = True,
    progress: ProgressCallback | None = None,
    on_event: EventSink | None = None,
    allow_unencrypted: bool = False,
    until: str | None = None,
    until_position: str | None = None,
    until_gtid: str | None = None,
    options: RestoreOptions | None = None,
) -> restoration.RestoreResult:
    """:func:`migration_guard.backup.restoration.restore`, and incremental backups.

    An incremental is restored into a new or empty database: the root full
    backup first, then every incremental of the chain up to ``backup_id``. All
    archives of the chain are checked whole before the first statement runs.
    A stop point replays only the changes before it: ``until`` (UTC, ISO 8601),
    ``until_position`` (``FILE:POS``, the event starting there is left out) or
    ``until_gtid`` (``DOMAIN-SERVER-SEQ``, that transaction is left out); then
    ``backup_id`` may be any backup of the chain, which is followed as far as needed.
    """
    catalog = Catalog.for_config(config)
    manifest = catalog.get(backup_id)
    asked = {"--until": until, "--until-position": until_position, "--until-gtid": until_gtid}
    given = [name for name, value in asked.items() if value is not None]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} exclude each other: give one stop point")
    if not given and manifest.type != INCREMENTAL:
        return restoration.restore(
            config,
            backup_id,
            url=url,
            tables=tables,
            yes=yes,
            dry_run=dry_run,
            confirm=confirm,
            safety_backup=safety_backup,
            progress=progress,
            on_event=on_event,
            allow_unencrypted=allow_unencrypted,
            options=options,
        )
    if tables:
        raise UsageError("an incremental backup restores whole databases; drop --tables")
    if url is None:
        raise UsageError("restore needs the target: pass --url TARGET_URL")
    target = resolve_url(config, url)
    chain = chain_of(catalog, manifest)
    stop = None
    if given:
        if not manifest.binlog:
            raise UsageError(
                f"{given[0]} replays the binary log after a full backup, and {manifest.id} "
                "records no binlog coordinates (the server had no binary log then)"
            )
        chain = chain_of(catalog, _extend(catalog, chain)[-1])
        stop = _stop_point(chain, until, until_position, until_gtid)
    incrementals = chain[1:]
    keys = {}
    for member in incrementals:
        keys[member.id] = archive_key(member, catalog.archive_path(member.id))
        check_before_restore(catalog, member, keys[member.id], allow_unencrypted=allow_unencrypted)
    from migration_guard.backup.database import dialect_ops

    ops = dialect_ops(target)
    if ops.database_exists(target) and not ops.is_empty(target):
        raise UsageError(
            f"restoring incremental backup {manifest.id} needs a new or empty database, and "
            f"{ops.database_name(target)!r} holds tables; restore into another database"
        )
    with contextlib.ExitStack() as stack:
        # Every archive of the chain is read whole and checked before anything is written.
        handles = {
            member.id: stack.enter_context(checked_archive(catalog, member, keys[member.id]))
            for member in incrementals
        }
        result = restoration.restore(
            config,
            chain[0].id,
            url=target,
            dry_run=dry_run,
            progress=progress,
            on_event=on_event,
            allow_unencrypted=allow_unencrypted,
        )
        if dry_run or not result.ok:
            result.notes.append(
                f"would replay {len(incrementals)} incremental backup(s) up to {chain[-1].id}"
                if dry_run
                else "the incremental backups were not replayed"
            )
            return result
        for member in incrementals:
            if stop is not None and stop.reached:
                break
            try:
                _replay(member, handles[member.id], keys[member.id], target, stop, progress)
            except MigrationGuardError as exc:
                raise RestoreFailed(
                    f"replaying incremental backup {member.id} into {result.database!r} failed: "
                    f"{exc.message}. The database holds the full backup {chain[0].id} and part "
                    "of the changes after it: drop it and restore again",
                    target_state="partial",
                    safety_backup_id=None,
                    exit_code=exc.exit_code,
                ) from exc
            result.notes.append(f"replayed incremental backup {member.id}")
    if stop is not None:
        result.notes.append(f"changes from {given[0]} {asked[given[0]]} on were not replayed")
    result.backup_id = manifest.id
    return result


def _stop_point(
    chain: list[Manifest], until: str | None, position: str | None, gtid: str | None
) -> ReplayStop:
    """The checked stop point inside ``chain``; exit 2 naming the fix otherwise."""
    from migration_guard.backup.backends.binlogpos import ReplayStop

    root, last = chain[0], chain[-1]
    if until is not None:
        moment = parse_until(until)
        if moment < root.finished:
            raise UsageError(
                f"--until {format_time(moment)} is before the full backup {root.id} of this "
                f"chain finished ({root.finished_at}); restore a backup of an older chain instead"
            )
        if moment > last.finished:
            raise UsageError(
                f"--until {format_time(moment)} is after the newest backup of this chain, "
                f"{last.id} ({last.finished_at}): the changes since are in no backup yet. Take "
                "an incremental backup (migration-guard backup --type incremental) first"
            )
        return ReplayStop(time=moment.timestamp())
    if position is not None:
        return ReplayStop(position=_position_in(chain, position))
    assert gtid is not None
    return ReplayStop(gtid=_gtid_in(chain, gtid))


def _span(chain: list[Manifest]) -> str:
    start, end = chain[0].binlog or {}, chain[-1].binlog or {}
    return (
        f"{start.get('file')}:{start.get('position')} (full backup {chain[0].id}) to "
        f"{end.get('file')}:{end.get('position')} ({chain[-1].id})"
    )


def _position_in(chain: list[Manifest], text: str) -> tuple[str, int]:
    from migration_guard.backup.backends.binlogpos import file_key, parse_position

    parsed = parse_position(text)
    if parsed is None:
        raise UsageError(
            f"--until-position {text!r} is not a binlog position; write FILE:POS, e.g. "
            "binlog.000003:1234 (the Log_name and Pos columns of SHOW BINLOG EVENTS)"
        )
    start, end = chain[0].binlog or {}, chain[-1].binlog or {}
    files = {str(start.get("file"))}
    for member in chain[1:]:
        files.update(str(name) for name in (member.binlog or {}).get("files", []))

    def key(file: object, at: object) -> tuple[tuple[str, int], int]:
        return file_key(str(file)), int(str(at))

    inside = key(start.get("file"), start.get("position")) <= key(*parsed)
    if not (inside and key(*parsed) <= key(end.get("file"), end.get("position"))) or (
        parsed[0] not in files
    ):
        raise UsageError(
            f"--until-position {text} is not inside the chain, which covers {_span(chain)}; "
            "name a position in that range, or a backup of the chain that holds it"
        )
    return parsed


def _gtid_in(chain: list[Manifest], text: str) -> tuple[int, int, int]:
    from migration_guard.backup.backends.binlogpos import gtid_seq, parse_gtid

    parsed = parse_gtid(text)
    if parsed is None:
        raise UsageError(
            f"--until-gtid {text!r} is not a MariaDB GTID; write DOMAIN-SERVER-SEQUENCE, e.g. "
            "0-1-1234 (the Gtid events of SHOW BINLOG EVENTS / mariadb-binlog)"
        )
    root_gtid = str((chain[0].binlog or {}).get("gtid") or "")
    last_gtid = str((chain[-1].binlog or {}).get("gtid") or "")
    if not root_gtid or not last_gtid:
        raise UsageError(
            f"the chain ending at {chain[-1].id} recorded no GTIDs (MySQL, or a server "
            "without them); stop by position instead: --until-position FILE:POS"
        )
    domain, _, seq = parsed
    first = gtid_seq(root_gtid, domain) or 0
    newest = gtid_seq(last_gtid, domain)
    if newest is None or not first < seq <= newest:
        raise UsageError(
            f"--until-gtid {text} is not inside the chain, which holds the transactions after "
            f"GTID {root_gtid} up to {last_gtid} ({chain[0].id} to {chain[-1].id})"
        )
    return parsed


def parse_until(text: str) -> datetime:
    """``--until`` as an aware UTC time; exit 2 naming the expected form otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UsageError(
            f"--until {text!r} is not a UTC time in ISO 8601; write it like "
            "2026-12-06T20:00:00Z (the Z, or +00:00, is required)"
        )
    return moment.astimezone(timezone.utc)


def _replay(
    member: Manifest,
    handle: BinaryIO,
    key: UserKey | None,
    target: URL,
    stop: ReplayStop | None,
    progress: ProgressCallback | None,
) -> None:
    """Replay one checked incremental archive, up to ``stop`` when given."""
    if stop is None:
        load_checked(member, handle, key, target, None, progress)
        return
    from migration_guard.backup import archive
    from migration_guard.backup.backends import get_backend

    replayer = get_backend(member.backend)
    source = HashingSource(handle, progress, os.fstat(handle.fileno()).st_size)
    reader = archive.open_reader(source, key=key)
    replayer.restore(  # type: ignore[call-arg]
        target,
        reader,  # type: ignore[arg-type]
        stream_format=member.artifact.stream_format,
        stop=stop,
    )
    recheck_digest(member, source)

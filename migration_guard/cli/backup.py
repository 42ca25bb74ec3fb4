"""``keygen``, ``backup``, ``backups``, ``restore`` and ``decrypt``: options and output
around :mod:`migration_guard.commands.backup`.

Keys are never options: they come from the environment (see docs/backups.md).
URLs are printed without passwords. Progress bars appear only on a terminal.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from migration_guard.cli import config_file_option
from migration_guard.cli._output import echo_json, format_option, load_config, stdout_console
from migration_guard.config import KEY_ENV, KEY_FILE_ENV, URL_ENV
from migration_guard.durations import format_size

if TYPE_CHECKING:
    from migration_guard.commands.backup import Manifest, ProgressCallback, TableEntry

FORMAT_OPTION = format_option("Output format; json prints objects with an `id` field.")


def _split(values: tuple[str, ...]) -> list[str]:
    """``--tables a --tables b,c`` -> ``[a, b, c]``."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@contextlib.contextmanager
def _progress(description: str, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar in bytes on stderr when it is a terminal; else nothing."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _encryption_text(manifest: Manifest) -> str:
    encryption = manifest.artifact.encryption
    return f"encrypted (key {encryption.key_fingerprint})" if encryption else "not encrypted"


def _verification_text(manifest: Manifest) -> str:
    verification = manifest.verification
    if verification.ok is None:
        return "never"
    state = "ok" if verification.ok else "FAILED"
    return f"{state} (level {verification.level}, {verification.last_verified_at})"


# -- keygen ------------------------------------------------------------------------------------
@click.command(
    help=f"""Print a new random 256-bit encryption key (mgk1:...).

    Store it in a secret manager and hand it to migration-guard through
    {KEY_ENV} or a 0600 file named by {KEY_FILE_ENV};
    never on the command line. Without the key, encrypted backups cannot be read.
    """
)
def keygen() -> None:
    from migration_guard.commands.backup import keygen as make_key

    click.echo(make_key())
    if sys.stdout.isatty():
        click.echo(
            f"Store this key safely ({KEY_ENV} or {KEY_FILE_ENV}); "
            "backups encrypted with it cannot be restored without it.",
            err=True,
        )


# -- backup ------------------------------------------------------------------------------------
@click.command()
@click.option("--url", help=f"SQLAlchemy URL (default: config url or {URL_ENV}).")
@click.option(
    "--type",
    "backup_type",
    type=click.Choice(["full", "critical", "tables", "incremental"]),
    default="full",
    show_default=True,
    help="full database, the protected tables (critical), --tables only, or the changes "
    "since the previous backup (incremental: MySQL/MariaDB binary log).",
)
@click.option("--tables", multiple=True, metavar="T", help="Tables to back up (repeatable).")
@click.option(
    "--compress",
    type=click.Choice(["zstd", "gzip", "none"]),
    default=None,
    help="Compression (default: config, else zstd).",
)
@click.option("--level", type=int, default=None, help="Compression level.")
@click.option(
    "--encrypt/--no-encrypt",
    default=None,
    help="Encrypt the archive (default: when a key is configured).",
)
@click.option("--backend", default=None, help="mysqldump, native, sqlite... (default: by dialect)")
@FORMAT_OPTION
@config_file_option
def backup(
    url: str | None,
    backup_type: str,
    tables: tuple[str, ...],
    compress: str | None,
    level: int | None,
    encrypt: bool | None,
    backend: str | None,
    fmt: str,
    config_file: str | None,
) -> None:
    """Back up a database into the backup directory."""
    from migration_guard.commands.backup import create_backup

    config = load_config(config_file)
    with _progress("backup", fmt == "text") as progress:
        manifest = create_backup(
            config,
            url=url,
            type=backup_type,
            tables=_split(tables) or None,
            compress=compress,
            level=level,
            encrypt=encrypt,
            backend=backend,
            progress=progress,
        )
    if fmt == "json":
        echo_json(manifest.to_dict())
        return
    if manifest.type == "incremental" and manifest.binlog:
        start = manifest.binlog.get("start") or {}
        click.echo(
            f"backup {manifest.id} created: the changes of {manifest.source_url} from "
            f"{start.get('file')}:{start.get('position')} to {manifest.binlog.get('file')}:"
            f"{manifest.binlog.get('position')} (parent {manifest.parent}), "
            f"{format_size(manifest.artifact.size)} ({_encryption_text(manifest)})"
        )
        return
    click.echo(
        f"backup {manifest.id} created: {len(manifest.tables)} table(s) from "
        f"{manifest.source_url}, {format_size(manifest.artifact.size)} "
        f"({manifest.artifact.compression}, {_encryption_text(manifest)})"
    )


# -- backups -----------------------------------------------------------------------------------
@click.group()
def backups() -> None:
    """List, show, verify and prune backups."""


@backups.command("list")
@FORMAT_OPTION
@config_file_option
def list_command(fmt: str, config_file: str | None) -> None:
    """List complete backups, newest first."""
    from migration_guard.commands.backup import backup_location, backup_locations, list_backups

    config = load_config(config_file)
    manifests = list_backups(config)
    if fmt == "json":
        locations, problems = backup_locations(config, manifests)
        for problem in problems:
            click.echo(f"warning: cannot list the offsite copies in {problem}", err=True)
        echo_json([{**m.to_dict(), "locations": locations[m.id]} for m in manifests])
        return
    if not manifests:
        click.echo(f"no backups in {backup_location(config)}")
        return
    from rich.table import Column, Table

    table = Table("type", "started (UTC)", "size", "tables", "encrypted", "verified")
    table.columns.insert(0, Column("id", no_wrap=True))
    for manifest in manifests:
        table.add_row(
            manifest.id,
            manifest.type,
            manifest.started_at,
            format_size(manifest.artifact.size),
            str(len(manifest.tables)),
            "yes" if manifest.encrypted else "no",
            _verification_text(manifest),
        )
    stdout_console().print(table)


@backups.command("sync")
@FORMAT_OPTION
@config_file_option
def sync_command(fmt: str, config_file: str | None) -> None:
    """Copy the backups an offsite location lacks (after a failed upload) to it."""
    from migration_guard.commands.backup import sync_backups

    result = sync_backups(load_config(config_file))
    if fmt == "json":
        echo_json(result.to_dict())
    else:
        for backup_id, location in result.copied:
            click.echo(f"copied {backup_id} to {location}")
        for failure in result.failures:
            click.echo(f"FAILED {failure}")
        click.echo(f"{len(result.copied)} copy(ies) made, {len(result.failures)} failed")
    sys.exit(0 if result.ok else 1)


@backups.command("show")
@click.argument("backup_id", metavar="ID")
@FORMAT_OPTION
@config_file_option
def show_command(backup_id: str, fmt: str, config_file: str | None) -> None:
    """Show one backup's manifest (an unambiguous id prefix is enough)."""
    from migration_guard.commands.backup import show_backup

    manifest = show_backup(load_config(config_file), backup_id)
    if fmt == "json":
        echo_json(manifest.to_dict())
        return
    from rich.table import Table

    lines = [
        ("id", manifest.id),
        ("type", manifest.type),
        ("source", manifest.source_url),
        ("server", manifest.server_version or "-"),
        ("started / finished", f"{manifest.started_at} / {manifest.finished_at}"),
        ("backend", f"{manifest.backend} ({manifest.artifact.stream_format})"),
        ("file", f"{manifest.artifact.file} ({format_size(manifest.artifact.size)})"),
        ("sha256", manifest.artifact.sha256),
        ("compression", manifest.artifact.compression),
        ("encryption", _encryption_text(manifest)),
        ("binlog", json.dumps(manifest.binlog) if manifest.binlog else "-"),
        ("verified", _verification_text(manifest)),
        ("created by", f"{manifest.created_by}, migration-guard {manifest.tool_version}"),
    ]
    if manifest.parent:
        lines.append(("parent", manifest.parent))
    console = stdout_console()
    for label, value in lines:
        console.print(f"[bold]{label}:[/bold] {value}", highlight=False, markup=True)
    table = Table("table", "rows", "content", "size")
    for name, entry in sorted(manifest.tables.items()):
        if entry.ref:
            table.add_row(name, "-", f"in {entry.ref}", "-")
        else:
            table.add_row(name, str(entry.rows), _content_text(entry), format_size(entry.size))
    console.print(table)


def _content_text(entry: TableEntry) -> str:
    """The table's content digest and/or server checksum, short enough for a column."""
    parts = []
    if entry.content_sha256:
        parts.append(f"sha256 {entry.content_sha256[:12]}")
    if entry.checksum is not None:
        parts.append(f"checksum {entry.checksum}")
    return ", ".join(parts) or "-"


@backups.command("verify")
@click.argument("backup_id", metavar="ID")
@click.option("--restore-test", is_flag=True, help="Also restore into a scratch database.")
@click.option(
    "--scratch-url",
    default=None,
    help=f"Server for the restore test (default: config url / {URL_ENV} / source).",
)
@FORMAT_OPTION
@config_file_option
def verify_command(
    backup_id: str, restore_test: bool, scratch_url: str | None, fmt: str, config_file: str | None
) -> None:
    """Check a backup: decrypt, decompress and hash it; optionally test a restore."""
    from migration_guard.commands.backup import verify_backup

    with _progress("verify", fmt == "text") as progress:
        result = verify_backup(
            load_config(config_file),
            backup_id,
            restore_test=restore_test,
            scratch_url=scratch_url,
            progress=progress,
        )
    if fmt == "json":
        echo_json(result.to_dict())
    else:
        state = "ok" if result.ok else f"FAILED ({result.reason})"
        click.echo(f"backup {result.backup_id}: verification level {result.level} {state}")
        for detail in result.details:
            click.echo(f"  {detail}")
    sys.exit(0 if result.ok else 1)


@backups.command("prune")
@click.option(
    "--dry-run", is_flag=True, help="Only show the groups, what would be deleted and why."
)
@FORMAT_OPTION
@config_file_option
def prune_command(dry_run: bool, fmt: str, config_file: str | None) -> None:
    """Delete backups the retention policy no longer keeps.

    The policy applies to each group of one source database and one backup
    type; the output lists the groups. Backups in use by a restore or a
    verification are kept, and nothing is deleted while a restore runs.
    """
    from migration_guard.commands.backup import prune_backups

    plan = prune_backups(load_config(config_file), dry_run=dry_run)
    if fmt == "json":
        echo_json({"dry_run": dry_run, **plan.to_dict()})
        return
    verb = "would delete" if dry_run else "deleted"
    deleted = dict(plan.delete)
    kept = dict(plan.keep)
    for group in plan.groups:
        click.echo(
            f"{group.source} ({group.type}): {len(group.keep)} kept, {len(group.delete)} {verb}"
        )
        for backup_id in group.delete:
            click.echo(f"  {verb} {backup_id}: {deleted[backup_id]}")
        for backup_id in group.keep:
            click.echo(f"  keep {backup_id}: {'; '.join(kept[backup_id])}")
    for note in plan.offsite:
        click.echo(f"  offsite: {note}")
    if plan.paused:
        click.echo(f"nothing is deleted now: {plan.paused}")
    click.echo(f"{len(plan.delete)} backup(s) {verb}, {len(plan.keep)} kept")


# -- restore -----------------------------------------------------------------------------------
def _typed_confirmation(database: str) -> bool:
    click.echo(
        f"The database {database!r} exists and is not empty. A safety backup is taken "
        "first, then it is overwritten.",
        err=True,
    )
    typed: str = click.prompt("Type the database name to continue", default="", err=True)
    return typed.strip() == database


@click.command()
@click.argument("backup_id", metavar="ID")
@click.option("--url", required=True, help="Target SQLAlchemy URL (any database name).")
@click.option("--tables", multiple=True, metavar="T", help="Restore only these tables.")
@click.option("--yes", is_flag=True, help="Overwrite a non-empty target without asking.")
@click.option("--dry-run", is_flag=True, help="Show what would happen; change nothing.")
@click.option(
    "--allow-unencrypted",
    is_flag=True,
    help="Restore an unencrypted backup although a key is configured.",
)
@click.option(
    "--until",
    metavar="TIME",
    default=None,
    help="Incremental backups: replay only the changes logged before TIME "
    "(UTC, ISO 8601, e.g. 2026-12-06T20:00:00Z).",
)
@click.option(
    "--keep-owners/--no-owner",
    default=False,
    help="PostgreSQL: give every object its owner from the source (the roles must exist); "
    "default: the restoring role owns everything.",
)
@click.option(
    "--grants/--no-grants",
    default=True,
    help="PostgreSQL: restore the source's GRANTs (default) or leave them out.",
)
@FORMAT_OPTION
@config_file_option
def restore(
    backup_id: str,
    url: str,
    tables: tuple[str, ...],
    yes: bool,
    dry_run: bool,
    allow_unencrypted: bool,
    until: str | None,
    keep_owners: bool,
    grants: bool,
    fmt: str,
    config_file: str | None,
) -> None:
    """Restore backup ID into the database at --url."""
    from migration_guard.commands.backup import restore as run_restore

    confirm = _typed_confirmation if sys.stdin.isatty() else None
    with _progress("restore", fmt == "text") as progress:
        result = run_restore(
            load_config(config_file),
            backup_id,
            url=url,
            tables=_split(tables) or None,
            yes=yes,
            dry_run=dry_run,
            confirm=confirm,
            progress=progress,
            allow_unencrypted=allow_unencrypted,
            until=until,
            keep_owners=keep_owners,
            grants=grants,
        )
    if fmt == "json":
        echo_json(result.to_dict())
    else:
        if dry_run:
            click.echo(f"dry run: restore of {result.backup_id} into {result.target_url}")
        else:
            state = "ok" if result.ok else "finished with differences"
            click.echo(
                f"restored {result.backup_id} into {result.target_url}: "
                f"{len(result.tables)} table(s), {state} ({result.seconds:.1f} s)"
            )
        for note in result.notes:
            click.echo(f"  {note}")
        for mismatch in result.mismatches:
            click.echo(f"  MISMATCH {mismatch}")
    sys.exit(0 if result.ok else 1)


# -- decrypt -----------------------------------------------------------------------------------
@click.command()
@click.argument("file", metavar="FILE")
@click.option("-o", "--output", "out", required=True, help="Plain output file (- for stdout).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@config_file_option
def decrypt(file: str, out: str, force: bool, config_file: str | None) -> None:
    """Turn an archive (a .mgb file or a backup id) into its plain stream, for manual recovery."""
    from migration_guard.commands.backup import decrypt as run_decrypt

    written = run_decrypt(load_config(config_file), file, out, force=force)
    if out != "-":
        click.echo(f"wrote {written} bytes to {out}", err=True)

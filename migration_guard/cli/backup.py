"""``keygen``, ``backup`` and ``backups``: options and output
around :mod:`migration_guard.commands.backup`.

Keys are never options: they come from the environment (see docs/backups.md).
URLs are printed without passwords. Progress bars appear only on a terminal.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from migration_guard.cli import config_file_option
from migration_guard.cli._chains import chain_order, chain_text
from migration_guard.cli._output import (
    echo_json,
    format_option,
    load_config,
    progress_bar,
    split_values,
    stdout_console,
)
from migration_guard.config import KEY_ENV, KEY_FILE_ENV, RECIPIENTS_ENV, URL_ENV
from migration_guard.durations import format_size

if TYPE_CHECKING:
    from migration_guard.commands.backup import Manifest, TableEntry

FORMAT_OPTION = format_option("Output format; json prints objects with an `id` field.")


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
    help=f"""Print a new random 256-bit encryption key (mgk1:...), or with --x25519 a
    new public/private key pair in age's format.

    Store a key in a secret manager and hand it to migration-guard through
    {KEY_ENV} or a 0600 file named by {KEY_FILE_ENV};
    never on the command line. Without the key, encrypted backups cannot be read.

    With --x25519 -o FILE the private key (identity, AGE-SECRET-KEY-1...) goes to
    FILE, a new 0600 file in age-keygen's format, and the public key (age1...) is
    printed: give that to backup hosts in {RECIPIENTS_ENV}; they can then write
    backups but not read them. Restores need {KEY_FILE_ENV}=FILE.
    """
)
@click.option(
    "--x25519", "x25519", is_flag=True, help="A public/private key pair (age's X25519 keys)."
)
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="FILE",
    help="With --x25519: write the identity to FILE (a new 0600 file), print the public key.",
)
def keygen(x25519: bool, output: str | None) -> None:
    from migration_guard.commands.backup import keygen as make_key
    from migration_guard.commands.backup import keygen_x25519

    if output is not None and not x25519:
        raise click.UsageError("-o/--output goes with --x25519")
    if not x25519:
        click.echo(make_key())
        if sys.stdout.isatty():
            click.echo(
                f"Store this key safely ({KEY_ENV} or {KEY_FILE_ENV}); "
                "backups encrypted with it cannot be restored without it.",
                err=True,
            )
        return
    pair = keygen_x25519(output)
    if pair.text is not None:
        click.echo(pair.text, nl=False)
        click.echo(f"Public key: {pair.recipient} (fingerprint {pair.fingerprint})", err=True)
        return
    click.echo(pair.recipient)
    click.echo(
        f"Identity (private key) written to {pair.path}; keep it off backup hosts. Public "
        f"key fingerprint {pair.fingerprint}: set {RECIPIENTS_ENV} to the line above where "
        f"backups are written, {KEY_FILE_ENV}={pair.path} where they are read.",
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
    with progress_bar("backup", fmt == "text") as progress:
        manifest = create_backup(
            config,
            url=url,
            type=backup_type,
            tables=split_values(tables) or None,
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
    from migration_guard.commands.backup import (
        backup_chains,
        backup_location,
        backup_locations,
        list_backups,
    )

    config = load_config(config_file)
    manifests = list_backups(config)
    chains = backup_chains(manifests)
    if fmt == "json":
        locations, problems = backup_locations(config, manifests)
        for problem in problems:
            click.echo(f"warning: cannot list the offsite copies in {problem}", err=True)
        echo_json(
            [{**m.to_dict(), **chains[m.id], "locations": locations[m.id]} for m in manifests]
        )
        return
    if not manifests:
        click.echo(f"no backups in {backup_location(config)}")
        return
    from rich.table import Column, Table

    table = Table("type", "started (UTC)", "size", "tables", "encrypted", "verified")
    table.columns.insert(0, Column("id", no_wrap=True))
    for manifest in chain_order(manifests):
        chain = chains[manifest.id]
        table.add_row(
            f"  └ {manifest.id}" if manifest.parent else manifest.id,
            chain_text(manifest, chain),
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

    with progress_bar("verify", fmt == "text") as progress:
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
    for root, members, chain_kept in plan.chains:
        state = "kept whole" if chain_kept else f"{verb} whole"
        click.echo(f"chain {root}: {len(members)} backup(s), {state}")
    for note in plan.offsite:
        click.echo(f"  offsite: {note}")
    if plan.paused:
        click.echo(f"nothing is deleted now: {plan.paused}")
    click.echo(f"{len(plan.delete)} backup(s) {verb}, {len(plan.keep)} kept")

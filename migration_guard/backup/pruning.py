"""The catalog as a whole: apply the retention policy, list backups, show one."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from migration_guard.backup.catalog import Catalog, remote_backup_dir
from migration_guard.backup.events import prune_event, run_reported
from migration_guard.backup.manifest import Manifest, utc_now
from migration_guard.backup.pins import live_pins, prune_lock
from migration_guard.backup.retention import PrunePlan, plan_prune
from migration_guard.backup.settings import backup_settings
from migration_guard.config import BACKUP_DIR_ENV, Config
from migration_guard.errors import BackupError

if TYPE_CHECKING:
    from migration_guard.events import EventSink


def prune(
    config: Config, *, dry_run: bool = False, now: Any = None, on_event: EventSink | None = None
) -> PrunePlan:
    """Apply the retention policy; ``dry_run`` only returns what would go.

    Backups pinned by a running restore or verification are kept (with what
    they need); while a restore runs nothing is deleted at all
    (:attr:`PrunePlan.paused` says why).

    ``on_event`` receives a ``prune.success`` event (not for a dry run) or
    ``prune.failure``.
    """
    return run_reported(
        on_event,
        lambda result, error, seconds: prune_event(dry_run, result, error, seconds),
        lambda: _prune(config, dry_run, now),
    )


def _prune(config: Config, dry_run: bool, now: Any) -> PrunePlan:
    from migration_guard.backup.manifest import ManifestError

    settings = backup_settings(config)
    catalog = _refreshed(config)
    if not catalog.path.is_dir():
        raise BackupError(
            f"refusing to prune: the backup location {catalog.path} does not exist or is "
            f"not a directory; check backup_dir / {BACKUP_DIR_ENV}"
        )
    # Under the lock no pin appears: what is not pinned now cannot be in use until we are done.
    # A dry run deletes nothing and so needs no lock (and creates no lock file).
    with contextlib.nullcontext() if dry_run else prune_lock(catalog.path):
        try:
            manifests = catalog.list(strict=True)
        except ManifestError as exc:
            raise BackupError(f"refusing to prune: {exc}") from None
        pins = live_pins(catalog.path, remove_stale=not dry_run)
        restores = [pin for pin in pins if pin.purpose == "restore"]
        paused = (
            f"a restore of {restores[0].backup_id} is running ({restores[0].describe()}); "
            "nothing is pruned during a restore"
            if restores
            else None
        )
        holders: dict[str, list[str]] = {}
        for pin in pins:
            holders.setdefault(pin.backup_id, []).append(pin.describe())
        pinned = {backup_id: "; ".join(texts) for backup_id, texts in holders.items()}
        plan = plan_prune(
            manifests, now or utc_now(), settings.retention, pinned=pinned, paused=paused
        )
        if not dry_run:
            for backup_id, _ in plan.delete:
                catalog.delete(backup_id)
            catalog.cleanup_leftovers()
        if config.offsite and plan.delete:
            from migration_guard.backup.offsite import prune_copies

            plan.offsite = prune_copies(config, plan.delete_ids, dry_run=dry_run)
    return plan


def _refreshed(config: Config) -> Catalog:
    """The catalog; with ``backup_dir`` in object storage, its cache brought up to date."""
    catalog = Catalog.for_config(config)
    if remote_backup_dir(config) is not None:
        from migration_guard.backup.fetching import refresh_cache

        catalog.ensure()
        refresh_cache(config, catalog)
    return catalog


def list_backups(config: Config) -> list[Manifest]:
    """Every complete backup in the catalog, newest first."""
    return _refreshed(config).list()


def show(config: Config, backup_id: str) -> Manifest:
    """The manifest of one backup (a unique id prefix is enough)."""
    return Catalog.for_config(config).get(backup_id)

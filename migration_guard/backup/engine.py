"""Create, restore, verify and prune backups, independent of any one database.

This module is the stable import path of the backup operations; each lives in
its own module (:mod:`~migration_guard.backup.creation`,
:mod:`~migration_guard.backup.verification`, :mod:`~migration_guard.backup.restoration`,
:mod:`~migration_guard.backup.pruning`, :mod:`~migration_guard.backup.decryption`).
None of them branches on a dialect: per-database facts come from
:mod:`migration_guard.dialects`, the dump and load from the backend registry.
"""

from __future__ import annotations

from migration_guard.backup.catalog import atomic_write_bytes
from migration_guard.backup.chain import restore
from migration_guard.backup.creation import USER_TYPES, create, type_name
from migration_guard.backup.decryption import NewIdentity, decrypt, keygen, keygen_x25519
from migration_guard.backup.incremental import chain_index
from migration_guard.backup.pruning import list_backups, prune, show
from migration_guard.backup.restoration import RestoreResult
from migration_guard.backup.settings import VERIFY_AFTER_BACKUP, BackupSettings, backup_settings
from migration_guard.backup.streams import ProgressCallback
from migration_guard.backup.verification import VerifyResult, verify
from migration_guard.urls import resolve_url

__all__ = [
    "USER_TYPES",
    "VERIFY_AFTER_BACKUP",
    "BackupSettings",
    "NewIdentity",
    "ProgressCallback",
    "RestoreResult",
    "VerifyResult",
    "atomic_write_bytes",
    "backup_settings",
    "chain_index",
    "create",
    "decrypt",
    "keygen",
    "keygen_x25519",
    "list_backups",
    "prune",
    "resolve_url",
    "restore",
    "show",
    "type_name",
    "verify",
]

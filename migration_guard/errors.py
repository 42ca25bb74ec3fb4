"""Every error migration-guard raises on purpose.

The CLI maps :class:`UsageError` (bad input, bad configuration) to exit code 2
and every other :class:`MigrationGuardError` to exit code 1. Messages name the
problem and the fix; they never contain secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migration_guard.analysis.model import Finding


class MigrationGuardError(Exception):
    """Root of every error migration-guard raises deliberately."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(MigrationGuardError):
    """The user asked for something that cannot work as given (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """The configuration file or an option value is invalid."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class InputError(UsageError):
    """An input path, stream or argument cannot be used."""


class UnknownNameError(UsageError, LookupError):
    """A name was looked up in a registry (dialect, backend, rule...) and is not known."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        listing = ", ".join(self.known) if self.known else "(none)"
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {listing}")


class AlembicConfigError(UsageError):
    """The Alembic project (alembic.ini, script_location, env.py) cannot be loaded."""


class RevisionRangeError(UsageError):
    """A revision or revision range does not exist in the Alembic project."""


class DatabaseUnavailableError(MigrationGuardError):
    """The database cannot be reached or refused the credentials."""


class BlockedMigration(MigrationGuardError):
    """A migration was refused because of unapproved destructive findings."""

    def __init__(self, message: str, findings: Sequence[Finding]) -> None:
        super().__init__(message)
        self.findings = list(findings)


class BackupError(MigrationGuardError):
    """A backup could not be created, verified, pruned or restored."""


class ArchiveError(BackupError):
    """An archive is corrupt, truncated, reordered or tampered with.

    ``reason`` is one of ``truncated``, ``reordered``, ``corrupted``,
    ``wrong-key``, ``not-an-archive``, ``unsupported-version``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class EncryptionKeyError(UsageError):
    """An encryption key is missing, malformed or unsafe to read."""


class ToolMissingError(UsageError):
    """An external client binary (mariadb-dump, mysqldump, pg_dump...) is not installed."""


class UnknownBackupError(UsageError):
    """A backup id does not exist in the catalog."""


class LockTimeout(MigrationGuardError):
    """Another migration run holds the database's migration lock and did not let go in time.

    ``holder`` describes who holds it (connection, user@host, pid) as far as known.
    """

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class BlockedStatement(MigrationGuardError):
    """A statement about to run was refused by the upgrade guard before reaching the server.

    ``finding`` says which rule and table; ``sql`` is the statement that was stopped.
    """

    def __init__(self, message: str, finding: Finding, sql: str) -> None:
        super().__init__(message)
        self.finding = finding
        self.sql = sql


class ProtectError(MigrationGuardError):
    """Installing, checking or removing database-side protection failed.

    ``rolled_back`` tells whether the steps already applied were undone.
    """

    def __init__(self, message: str, *, rolled_back: bool = True) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


class AutogenerateRefused(MigrationGuardError):
    """``alembic revision --autogenerate`` would drop protected tables or columns and the
    autogenerate plugin runs in ``refuse`` mode.

    ``drops`` describes each refused drop (e.g. ``protected table "orders"``).
    """

    def __init__(self, message: str, *, drops: Sequence[str]) -> None:
        super().__init__(message)
        self.drops = list(drops)

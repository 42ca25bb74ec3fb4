"""Every error migration-guard raises on purpose.

The CLI maps :class:`UsageError` (bad input, bad configuration) to exit code 2
and every other :class:`MigrationGuardError` to exit code 1. Messages name the
problem and the fix; they never contain secrets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Protocol


class Finding(Protocol):
    """What an error needs of a finding; ``analysis.model.Finding`` is the real one.

    A protocol, so that this bottom layer never imports ``analysis``.
    """

    @property
    def rule(self) -> str: ...

    @property
    def table(self) -> str | None: ...

    @property
    def message(self) -> str: ...

    def to_dict(self) -> dict[str, object]: ...


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


#: ``user:password@`` in a URL, and ``password=...`` in DSNs and option files.
_URL_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):[^@\s]*@")
_KEY_VALUE_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd)\s*=\s*('[^']*'|\"[^\"]*\"|\S+)")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URL passwords, ``password=`` values or any of ``secrets``.

    The one place that keeps secrets out of messages: :func:`translate` runs
    every translated message through it.
    """
    text = _URL_PASSWORD.sub(r"\g<scheme>:***@", text)
    text = _KEY_VALUE_PASSWORD.sub(r"\1=***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


#: How one kind of outside exception becomes a :class:`MigrationGuardError`:
#: a class (built from the message) or a function of the exception and message.
Translation = type[MigrationGuardError] | Callable[[BaseException, str], MigrationGuardError]


@contextmanager
def translate(
    mapping: Mapping[type[BaseException], Translation],
    *,
    doing: str,
    secrets: Iterable[str] = (),
) -> Iterator[None]:
    """Turn outside exceptions into :class:`MigrationGuardError`, as httpx's ``map_exceptions``.

    ``mapping`` is checked in order; the first class the exception is an
    instance of decides. The message is ``"{doing}: {detail}"`` with secrets
    removed by :func:`redact`. Our own errors and unmapped exceptions pass
    through untouched; the original is kept as ``__cause__``.
    """
    try:
        yield
    except MigrationGuardError:
        raise
    except BaseException as exc:
        for kind, target in mapping.items():
            if isinstance(exc, kind):
                detail = redact(describe(exc), secrets)
                message = f"{doing}: {detail}" if doing else detail
                if isinstance(target, type):
                    raise target(message) from exc
                raise target(exc, message) from exc
        raise


def describe(exc: BaseException) -> str:
    """A one-line description of an outside exception, without its traceback.

    Driver errors (``pymysql``, ``psycopg``) are reduced to their server
    message; ``OSError`` to its ``strerror`` and file name.
    """
    original = getattr(exc, "orig", None)  # SQLAlchemy wraps the DBAPI error
    if original is not None:
        exc = original
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return f"({args[0]}) {args[1]}"  # PyMySQL: (code, message)
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class RestoreFailed(BackupError):
    """A restore stopped; the message says what state the target is in.

    ``target_state`` is ``unchanged``, ``not-created`` or ``partial``;
    ``safety_backup_id`` names the backup holding the target's previous state.
    The exit code is the one of the error that stopped the restore.
    """

    def __init__(
        self,
        message: str,
        *,
        target_state: str,
        safety_backup_id: str | None,
        exit_code: int = 1,
    ) -> None:
        super().__init__(message)
        self.target_state = target_state
        self.safety_backup_id = safety_backup_id
        self.exit_code = exit_code

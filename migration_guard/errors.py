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


# The patterns below are sources, compiled (and cached by :mod:`re`) on first use:
# every command imports this module, few ever redact anything.
#: ``user:password@`` in a URL, and ``password=...`` in DSNs and option files.
_URL_PASSWORD = r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):[^@\s]*@"
_KEY_VALUE_PASSWORD = r"(?i)\b(password|passwd|pwd)\s*=\s*('[^']*'|\"[^\"]*\"|\S+)"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URL passwords, ``password=`` values or any of ``secrets``.

    The one place that keeps secrets out of messages: :func:`translate` runs
    every translated message through it.
    """
    text = re.sub(_URL_PASSWORD, r"\g<scheme>:***@", text)
    text = re.sub(_KEY_VALUE_PASSWORD, r"\1=***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


#: A quoted value in a database's or client tool's error text: '...' or "...", or
#: an opening quote whose value goes on past the end of the line. No backslash
#: escapes: MySQL prints values raw, and a cut too early only redacts more.
_QUOTED = r"(?m)'(?:[^'\n]|'')*(?:'|$)" + r'|"(?:[^"\n]|"")*(?:"|$)'
#: What comes right before a quoted *name* (kept) rather than a row value (removed):
#: ``for key 'email'``, ``column 'note'``, ``user 'app'@'%'``, ``in 'field list'``.
_NAME_BEFORE = (
    r"(?i)(?:\b(?:table|column|key|index|database|schema|constraint|user|function|"
    r"procedure|view|trigger|field|savepoint|variable|engine|charset|collation|set|in)\s*|@)$"
)
#: What comes right before a quoted server *message* (redacted inside, not whole):
#: ``Got error: 1045: "Access denied for user ..."``, ``(1062, "Duplicate entry ...")``.
_MESSAGE_BEFORE = r"(?i)(?:error: \d+: |\(\d+, )$"
#: MySQL/MariaDB print a value raw, quotes inside it included: these messages are
#: cut where the text after the value starts (the last such place on the line).
_RAW_VALUES = (
    r"(?im)(?P<lead>duplicate entry |value: )'[\s\S]*'(?P<tail> for (?:key|column) )"
    r"|(?P<lead2>(?:incorrect|truncated incorrect) [\w ]*value: )'.*'$"
)
#: PostgreSQL's ``Key (email)=(alice@example.com) already exists`` and ``Failing row
#: contains (...)``: to the last parenthesis of the line, as values may hold some.
_KEY_VALUES = r"(?P<lead>\)=|Failing row contains )(?:\([\s\S]*\)|\([^)]*\Z)"
REDACTED_VALUE = "***"


def redact_values(text: str) -> str:
    """``text`` without the row values a database or client tool quotes in an error.

    ``Duplicate entry 'alice@example.com' for key 'email'`` becomes
    ``Duplicate entry '***' for key 'email'``: values go, the names of tables,
    columns, keys, databases and users stay. For the text of driver and tool
    errors that may echo backed-up rows (they reach messages, event logs and
    notifications); :func:`redact` still removes passwords.
    """

    def replace(match: re.Match[str]) -> str:
        quoted = match.group(0)
        before = max(0, match.start() - 40), match.start()
        if re.compile(_NAME_BEFORE).search(match.string, *before):
            return quoted
        closing = quoted[0] if len(quoted) > 1 and quoted.endswith(quoted[0]) else ""
        if re.compile(_MESSAGE_BEFORE).search(match.string, *before):
            inner = quoted[1 : len(quoted) - len(closing)]
            return f"{quoted[0]}{redact_values(inner)}{closing}"
        return f"{quoted[0]}{REDACTED_VALUE}{closing}"

    def replace_raw(match: re.Match[str]) -> str:
        if match.group("lead") is not None:
            return f"{match.group('lead')}'{REDACTED_VALUE}'{match.group('tail')}"
        return f"{match.group('lead2')}'{REDACTED_VALUE}'"

    text = re.sub(_RAW_VALUES, replace_raw, text)
    text = re.sub(_KEY_VALUES, lambda m: f"{m.group('lead')}({REDACTED_VALUE})", text)
    return re.sub(_QUOTED, replace, text)


#: How one kind of outside exception becomes a :class:`MigrationGuardError`:
#: a class (built from the message) or a function of the exception and message.
Translation = type[MigrationGuardError] | Callable[[BaseException, str], MigrationGuardError]


@contextmanager
def translate(
    mapping: Mapping[type[BaseException], Translation],
    *,
    doing: str,
    secrets: Iterable[str] = (),
    row_data: bool = False,
) -> Iterator[None]:
    """Turn outside exceptions into :class:`MigrationGuardError`, as httpx's ``map_exceptions``.

    ``mapping`` is checked in order; the first class the exception is an
    instance of decides. The message is ``"{doing}: {detail}"`` with secrets
    removed by :func:`redact`, and with ``row_data`` (the error may quote rows
    of a backup) quoted values removed by :func:`redact_values`. Our own errors
    and unmapped exceptions pass through untouched; the original is kept as
    ``__cause__``.
    """
    try:
        yield
    except MigrationGuardError:
        raise
    except BaseException as exc:
        for kind, target in mapping.items():
            if isinstance(exc, kind):
                detail = redact(describe(exc), secrets)
                if row_data:
                    detail = redact_values(detail)
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


class LoadRolledBack(BackupError):
    """A load that ran in one database transaction failed, and the server rolled it
    back: the target holds exactly what it held before (PostgreSQL's transactional DDL)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

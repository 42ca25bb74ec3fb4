"""The PostgreSQL client programs: finding them, their version, giving them credentials.

Credentials reach ``pg_dump`` and ``pg_restore`` only through a 0600
``PGPASSFILE`` in a private 0700 scratch directory (:mod:`..scratch`) that is
removed afterwards; host, port, user and database travel in a connection string
on argv that holds no password, and the child's environment is the allow-listed
one of :func:`.mysql_client.child_environment` plus ``PGPASSFILE`` (the path,
not the secret).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from sqlalchemy.engine import URL

from migration_guard.backup.backends.mysql_client import tool_version
from migration_guard.backup.scratch import scratch_directory
from migration_guard.errors import ToolMissingError, UsageError

DUMP_TOOL = "pg_dump"
RESTORE_TOOL = "pg_restore"
INSTALL_HINT = (
    "install the PostgreSQL client tools of at least the server's major version "
    "(Debian/Ubuntu: apt-get install postgresql-client-{major}, from the PGDG repository "
    "if the distribution's is older; Fedora/RHEL: dnf install postgresql{major}; "
    "macOS: brew install postgresql@{major})"
)

#: Settings of a URL's query that pg_dump understands as connection parameters.
_PASSED_PARAMETERS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
)


def find_pg_tool(name: str, purpose: str, major: int | None = None) -> str:
    """The path of ``name`` on ``PATH``; :class:`ToolMissingError` if it is not installed."""
    path = shutil.which(name)
    if path is None:
        hint = INSTALL_HINT.format(major=major if major else "NN")
        raise ToolMissingError(f"{name} is needed to {purpose} but is not installed; {hint}")
    return path


def tool_major(tool: str) -> int | None:
    """The major version of a PostgreSQL client program (``pg_dump (PostgreSQL) 15.20``: 15)."""
    return parse_major(tool_version(tool))


def parse_major(version_line: str) -> int | None:
    """The major version in a ``--version`` line, or None when there is none."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", version_line)
    if match is None:
        return None
    major = int(match.group(1))
    # Before 10 the major version had two parts (9.6); those are all older than any server here.
    return major


def version_problem(
    tool: str, tool_major_version: int | None, server_version_num: int
) -> str | None:
    """Why ``tool`` cannot dump a server of ``server_version_num``, or None.

    pg_dump refuses servers of a newer major version (and its output could miss
    what it does not know); an older server is fine.
    """
    server_major = server_version_num // 10000
    if tool_major_version is None:
        return f"cannot tell the version of {tool}; " + INSTALL_HINT.format(major=server_major)
    if tool_major_version < server_major:
        return (
            f"{Path(tool).name} is version {tool_major_version} but the server is "
            f"PostgreSQL {server_major}: {Path(tool).name} must be at least the server's major "
            f"version; " + INSTALL_HINT.format(major=server_major)
        )
    return None


def _conninfo_value(value: str) -> str:
    """``value`` quoted for a libpq connection string."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _query_value(url: URL, key: str) -> str | None:
    value = url.query.get(key)
    if isinstance(value, tuple):
        return value[-1] if value else None
    return value


def conninfo(url: URL, database: str | None = None) -> str:
    """A libpq connection string for ``url`` without its password (that is in the PGPASSFILE)."""
    parts: dict[str, str] = {}
    host = url.host or _query_value(url, "host")
    if host:
        parts["host"] = host
    if url.port:
        parts["port"] = str(int(url.port))
    if url.username:
        parts["user"] = url.username
    parts["dbname"] = database if database is not None else (url.database or "")
    for key in _PASSED_PARAMETERS:
        value = _query_value(url, key)
        if value:
            parts[key] = value
    return " ".join(f"{key}={_conninfo_value(value)}" for key, value in parts.items())


def _pgpass_field(value: str) -> str:
    """One field of a ``.pgpass`` line: ``:`` and ``\\`` escaped with a backslash."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def pgpass_text(url: URL) -> str:
    """The one ``.pgpass`` line that gives ``url``'s password for any host, port and database."""
    if url.password is None:
        return ""
    user = _pgpass_field(url.username or "*")
    password = str(url.password)
    if "\n" in password or "\r" in password:
        raise UsageError(
            "a password with a line break cannot be passed to pg_dump through a PGPASSFILE; "
            "change the password"
        )
    return f"*:*:*:{user}:{_pgpass_field(password)}\n"


@contextlib.contextmanager
def pg_credentials(url: URL) -> Iterator[Mapping[str, str]]:
    """The environment additions for a client program: ``PGPASSFILE`` of a 0600 file.

    The file lives in a private 0700 directory removed on exit whatever happens
    (after a SIGKILL, the next backup or restore removes it). Without a password
    the file is empty, so a ``~/.pgpass`` of the caller is not consulted either.
    """
    with scratch_directory("client") as directory:
        path = directory / "pgpass"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(pgpass_text(url))
        yield {"PGPASSFILE": str(path)}

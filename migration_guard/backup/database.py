"""The live-database side of backups: which tables, scratch databases, where a backup fits.

Every per-database fact comes from :mod:`migration_guard.dialects`; nothing
here branches on a dialect name.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.backup.manifest import Manifest, redact_url
from migration_guard.config import URL_ENV, Config
from migration_guard.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migration_guard.dialects.base import DialectOps


def dialect_ops(url: URL) -> DialectOps:
    """The per-database operations for ``url``."""
    return ops_for(url.get_backend_name())


def ops_for(dialect: str) -> DialectOps:
    """The per-database operations for a dialect name (``mysql``, ``sqlite``...)."""
    from migration_guard.dialects import get_dialect_ops

    return get_dialect_ops(dialect)


def connection(url: URL) -> contextlib.AbstractContextManager[Connection]:
    """One short transaction on ``url``."""
    from migration_guard.dialects.base import transaction

    return transaction(url)


def same_family(dialect: str, other: str) -> bool:
    """Whether a backup taken from a ``dialect`` database restores into an ``other`` one."""
    return ops_for(dialect).family == ops_for(other).family


def expand_critical(config: Config, url: URL) -> list[str]:
    """The tables of ``url`` that ``protected_tables`` protects (``--type critical``)."""
    if not config.protected_tables:
        raise UsageError(
            "--type critical backs up the protected tables, and none are configured; set "
            "protected_tables in [tool.migration_guard] or use --type full / --type tables"
        )
    ops = dialect_ops(url)
    with connection(url) as conn:
        live = ops.list_tables(conn)
    matcher = config.protected
    selected = [name for name in live if matcher.is_protected(name)]
    if not selected:
        raise UsageError(
            "--type critical: no table of the database matches protected_tables "
            f"({', '.join(config.protected_tables)})"
        )
    return selected


def check_tables_exist(url: URL, tables: Sequence[str]) -> list[str]:
    """``tables`` without duplicates; a :class:`UsageError` names those ``url`` lacks."""
    ops = dialect_ops(url)
    with connection(url) as conn:
        live = set(ops.backup_tables(conn))
    missing = [t for t in tables if t not in live]
    if missing:
        raise UsageError(f"--tables: no such table in {redact_url(url)}: {', '.join(missing)}")
    return list(dict.fromkeys(tables))


def scratch_target(
    config: Config, manifest: Manifest, scratch_url: str | None, private: Path | None = None
) -> URL:
    """Where a restore test goes: a new database with a generated name.

    A database in a file goes next to ``scratch_url``'s, else into ``private``
    (a private scratch directory), else into the temporary directory.
    """
    from sqlalchemy.engine import URL, make_url

    name = f"mg_verify_{secrets.token_hex(4)}"
    near = make_url(scratch_url) if scratch_url else None
    if near is None and private is not None:
        # Only says where: a file database goes into this URL's directory.
        near = URL.create(manifest.dialect, database=str(private / "scratch.db"))
    serverless = ops_for(manifest.dialect).serverless_scratch_url(near, name)
    if serverless is not None:
        return serverless
    if scratch_url:
        base = make_url(scratch_url)
    else:
        candidate = config.url or os.environ.get(URL_ENV) or manifest.source_url
        base = make_url(candidate)
    if not same_family(base.get_backend_name(), manifest.dialect):
        raise UsageError(
            f"--scratch-url is a {base.get_backend_name()} URL but backup {manifest.id} is "
            f"{manifest.dialect}; give a URL of a {manifest.dialect} server"
        )
    return dialect_ops(base).scratch_url(base, name)


def database_options(manifest: Manifest) -> dict[str, Any]:
    """How the backed-up database was created: character set and collation (PostgreSQL:
    also its locale and extensions)."""
    options = manifest.extra.get("database_options")
    return dict(options) if isinstance(options, Mapping) else {}


#: What a character set or collation name looks like on every supported server.
OPTION_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def _checked_options(ops: DialectOps, admin: Connection | None, options: Mapping[str, Any]) -> None:
    problems = []
    for name in ("charset", "collation"):
        value = options.get(name)
        if value is not None and not (isinstance(value, str) and OPTION_NAME.match(value)):
            problems.append(f"{name} {str(value)[:80]!r} is not a {name} name")
    if not problems:
        problems = ops.database_option_problems(admin, options)
    if problems:
        raise UsageError(
            "the manifest's database_options cannot be used to create the target database: "
            + "; ".join(problems)
            + ". The manifest may have been edited; restore into an existing database "
            "created by hand (CREATE DATABASE ... CHARACTER SET ...), or put back the "
            "original manifest"
        )


def check_identifiers(manifest: Manifest) -> None:
    """Refuse a manifest whose table names the database could not hold (an edited manifest)."""
    ops = ops_for(manifest.dialect)
    problems = []
    for name in manifest.tables:
        problem = ops.identifier_problem(name)
        if problem:
            problems.append(f"table name {name[:80]!r} {problem}")
    if problems:
        raise UsageError(
            f"the manifest of backup {manifest.id} names tables no {manifest.dialect} database "
            "can hold: " + "; ".join(problems[:5]) + ". The manifest may have been edited; "
            "put back the original manifest"
        )


def check_database_options(ops: DialectOps, url: URL, options: Mapping[str, Any]) -> None:
    """Refuse a character set or collation from a manifest that the server does not know.

    Manifest values never reach SQL unchecked: they must look like a name, then
    be one the server lists (``information_schema`` on MySQL/MariaDB).
    """
    if not options:
        return
    with connection(ops.admin_url(url)) as admin:
        _checked_options(ops, admin, options)


def create_database(ops: DialectOps, url: URL, options: Mapping[str, Any]) -> None:
    """Create ``url``'s database, empty, with the ``options`` of :func:`database_options`.

    The options are checked first (:func:`check_database_options`).
    """
    with connection(ops.admin_url(url)) as admin:
        if options:
            _checked_options(ops, admin, options)
        ops.create_database_like(admin, ops.database_name(url), options)


def drop_database(ops: DialectOps, url: URL) -> None:
    """Drop ``url``'s database."""
    with connection(ops.admin_url(url)) as admin:
        ops.drop_database(admin, ops.database_name(url))

"""One typed configuration, read once and handed down.

Sources, later ones winning: defaults, ``[tool.migration_guard]`` of the file
named by ``--config-file`` / ``MIGRATION_GUARD_CONFIG`` (else ``./pyproject.toml``),
environment variables for URLs and paths, and finally CLI options.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from migration_guard.errors import ConfigError, translate

# Every environment variable migration-guard reads, named once.
CONFIG_ENV = "MIGRATION_GUARD_CONFIG"
URL_ENV = "MIGRATION_GUARD_URL"
BACKUP_DIR_ENV = "MIGRATION_GUARD_BACKUP_DIR"
KEY_ENV = "MIGRATION_GUARD_KEY"
KEY_FILE_ENV = "MIGRATION_GUARD_KEY_FILE"
PASSPHRASE_ENV = "MIGRATION_GUARD_PASSPHRASE"
RECIPIENTS_ENV = "MIGRATION_GUARD_RECIPIENTS"
RECIPIENTS_FILE_ENV = "MIGRATION_GUARD_RECIPIENTS_FILE"
SCRATCH_URL_ENV = "MIGRATION_GUARD_SCRATCH_URL"
OFFSITE_ENV = "MIGRATION_GUARD_OFFSITE"
OFFSITE_LOCK_DAYS_ENV = "MIGRATION_GUARD_OFFSITE_LOCK_DAYS"
SMTP_PASSWORD_ENV = "MIGRATION_GUARD_SMTP_PASSWORD"
WEBHOOK_ENV = "MIGRATION_GUARD_WEBHOOK"
APP_PASSWORD_ENV = "MIGRATION_GUARD_APP_PASSWORD"
APP_URL_ENV = "MIGRATION_GUARD_APP_URL"


_Match = Callable[[str], "re.Match[str] | None"]


class Dialect(str, enum.Enum):
    """The one list of SQL dialects migration-guard knows, by SQLAlchemy name."""

    MYSQL = "mysql"
    MARIADB = "mariadb"
    POSTGRESQL = "postgresql"
    SQLITE = "sqlite"

    def __str__(self) -> str:
        return self.value

    @property
    def is_mysql_family(self) -> bool:
        return self in (Dialect.MYSQL, Dialect.MARIADB)

    @property
    def sqlglot_name(self) -> str:
        """The name sqlglot uses for this dialect (``postgres`` for PostgreSQL)."""
        return _SQLGLOT_NAMES[self]


_SQLGLOT_NAMES = {
    Dialect.MYSQL: "mysql",
    Dialect.MARIADB: "mysql",
    Dialect.POSTGRESQL: "postgres",
    Dialect.SQLITE: "sqlite",
}
#: Other spellings users and libraries write for a dialect.
DIALECT_ALIASES = {"postgres": "postgresql", "pg": "postgresql", "sqlite3": "sqlite"}
DIALECTS = tuple(d.value for d in Dialect)
MYSQL_FAMILY = frozenset({Dialect.MYSQL.value, Dialect.MARIADB.value})
DEFAULT_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class ProtectedTables:
    """Decides whether a table is protected.

    Patterns are case-insensitive globs and may be schema-qualified
    (``app.customers``, ``billing.*``). An unqualified pattern matches the
    table in any schema. With no patterns at all every table is protected
    (safe by default); otherwise exactly the matching tables are, plus the
    Alembic version table.
    """

    patterns: tuple[str, ...] = ()
    version_table: str = DEFAULT_VERSION_TABLE
    #: The schema (MySQL/MariaDB: the database) an unqualified name is in, when known
    #: (a guarded run sets the connection's): ``app.customers`` then protects
    #: ``customers`` written without a qualifier.
    default_schema: str | None = None

    @property
    def protects_everything(self) -> bool:
        return not self.patterns

    def is_protected(self, name: str, schema: str | None = None) -> bool:
        if not self.patterns:
            return True
        version_table, unqualified, qualified = self._matchers
        lowered = name.lower()
        if lowered == version_table or (unqualified is not None and unqualified(lowered)):
            return True
        schema = schema or self.default_schema
        return bool(schema and qualified is not None and qualified(f"{schema.lower()}.{lowered}"))

    @functools.cached_property
    def _matchers(self) -> tuple[str, _Match | None, _Match | None]:
        """The lower-cased version table, and one compiled pattern each for the
        unqualified and the schema-qualified globs (None: there are none), as
        :func:`fnmatch.fnmatchcase` would match them one by one. A check asks once
        per finding."""

        def compiled(globs: list[str]) -> _Match | None:
            if not globs:
                return None
            return re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob in globs)).match

        lowered = [pattern.lower() for pattern in self.patterns]
        return (
            self.version_table.lower(),
            compiled([pattern for pattern in lowered if "." not in pattern]),
            compiled([pattern for pattern in lowered if "." in pattern]),
        )

    def with_patterns(self, extra: Iterable[str]) -> ProtectedTables:
        return dataclasses.replace(self, patterns=self.patterns + tuple(extra))


@dataclass(frozen=True)
class Config:
    """Every setting migration-guard reads. See docs/configuration.md."""

    #: Glob patterns of protected tables; empty means every table.
    protected_tables: tuple[str, ...] = ()
    #: SQL dialect for ``check`` when it cannot be taken from the Alembic URL.
    dialect: str | None = None
    #: Path of alembic.ini.
    alembic_config: str = "alembic.ini"
    #: Name of Alembic's version table (always protected).
    version_table: str = DEFAULT_VERSION_TABLE
    #: Paths excluded from ``check`` directory scans (globs).
    exclude: tuple[str, ...] = ()
    #: Default database URL (SQLAlchemy form, no secrets in files: prefer the env).
    url: str | None = None
    #: Where backups and the catalog live.
    backup_dir: str = ".migration-guard/backups"
    #: Offsite locations every backup is copied to (``s3://BUCKET/PREFIX``, ``file:///DIR``).
    offsite: tuple[str, ...] = ()
    #: Lock every offsite copy against deletion for this many days (S3 Object Lock).
    offsite_lock_days: int | None = None
    #: Where this configuration was read from (None: defaults only).
    source: str | None = None
    #: Unparsed sub-tables owned by later subsystems (backup, monitor, notify...).
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def protected(self) -> ProtectedTables:
        return ProtectedTables(self.protected_tables, self.version_table)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


_SCALAR_KEYS = {f.name for f in dataclasses.fields(Config)} - {"source", "sections"}
#: Sub-tables that later subsystems own; each validates its own keys.
_SECTIONS = (
    "backup",
    "upgrade",
    "protect",
    "monitor",
    "notify",
    "schedule",
    "tables",
    "autogenerate",
)
_TUPLE_KEYS = {"protected_tables", "exclude", "offsite"}
_INT_KEYS = {"offsite_lock_days"}


def _config_path(explicit: str | os.PathLike[str] | None) -> tuple[str | None, bool]:
    """The file to read and whether the user named it (then it must exist).

    Plain strings and :mod:`os.path`: ``check`` (a pre-commit hook) never imports
    :mod:`pathlib`, whose import costs more than a short check's own work."""
    if explicit:
        return os.fspath(explicit), True
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return from_env, True
    default = "pyproject.toml"
    return (default if os.path.isfile(default) else None), False


def _validate(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    known = sorted(_SCALAR_KEYS | set(_SECTIONS))
    values: dict[str, Any] = {}
    sections: dict[str, Mapping[str, Any]] = {}
    for key, value in table.items():
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"{source}: [tool.migration_guard.{key}] must be a table", key=key
                )
            sections[key] = value
            continue
        if key not in _SCALAR_KEYS:
            raise ConfigError(
                f"{source}: unknown key {key!r} in [tool.migration_guard]; "
                f"known keys: {', '.join(known)}",
                key=key,
            )
        if key in _TUPLE_KEYS:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f'{source}: {key} must be a list of strings, e.g. {key} = ["users"]',
                    key=key,
                )
            values[key] = tuple(value)
        elif key in _INT_KEYS:
            values[key] = _lock_days(value, source=f"{source}: {key}")
        elif not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string", key=key)
        else:
            values[key] = value
    if "dialect" in values:
        values["dialect"] = normalise_dialect(values["dialect"], source=f"{source}: dialect")
    if "offsite" in values:
        values["offsite"] = offsite_locations(values["offsite"], source=f"{source}: offsite")
    values["sections"] = sections
    return values


def offsite_locations(raw: Iterable[str], *, source: str) -> tuple[str, ...]:
    """The offsite locations, checked: each ``scheme://...`` or an absolute path, no credentials.

    Credentials never belong here: S3 credentials come from the AWS configuration.
    """
    locations: list[str] = []
    for entry in raw:
        location = entry.strip()
        if not location:
            continue
        _scheme, separator, rest = location.partition("://")
        if not separator and not location.startswith("/"):
            raise ConfigError(
                f"{source}: {location!r} is not a location; write s3://BUCKET/PREFIX "
                "or file:///ABSOLUTE/DIRECTORY",
                key="offsite",
            )
        if separator and "@" in rest.split("/", 1)[0]:
            raise ConfigError(
                f"{source}: an offsite location must not carry credentials; remove the "
                "user and password and set them in the AWS configuration "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or a profile)",
                key="offsite",
            )
        locations.append(location)
    return tuple(dict.fromkeys(locations))


def _remote_backup_dir(values: dict[str, Any]) -> None:
    """A ``backup_dir`` in object storage (``s3://...``) is also the first offsite location:
    everything that copies, verifies, fetches and prunes copies then works on it."""
    raw = values.get("backup_dir")
    if not isinstance(raw, str):
        return
    scheme, separator, _rest = raw.partition("://")
    if not separator or scheme == "file":
        return
    (location,) = offsite_locations([raw], source="backup_dir")
    values["backup_dir"] = location
    values["offsite"] = (location, *(o for o in values.get("offsite", ()) if o != location))


def _lock_days(value: object, *, source: str) -> int | None:
    """``offsite_lock_days``: a whole number of days, at least 1 (0 means no lock)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"{source} must be a whole number of days (e.g. offsite_lock_days = 30; 0: no lock)",
            key="offsite_lock_days",
        )
    return value or None


def normalise_dialect(name: str, *, source: str = "--dialect") -> str:
    lowered = name.strip().lower()
    lowered = DIALECT_ALIASES.get(lowered, lowered)
    if lowered not in DIALECTS:
        raise ConfigError(
            f"{source}: unknown dialect {name!r}; known dialects: {', '.join(DIALECTS)}",
            key="dialect",
        )
    return lowered


#: Every spelling of ``[tool.migration_guard]`` in TOML holds this text.
_TABLE_NAME = "migration_guard"


def _toml() -> ModuleType:
    """The TOML reader, imported when a file is read (``tomli`` before Python 3.11)."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli  # pragma: no cover - exercised on Python 3.10 only

    reader: ModuleType = tomli  # pragma: no cover
    return reader  # pragma: no cover


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read ``[tool.migration_guard]`` from ``path`` (or the default locations).

    Raises :class:`ConfigError` for unreadable or invalid TOML and unknown keys.
    """
    config_path, named = _config_path(path)
    values: dict[str, Any] = {}
    source = None
    if config_path is not None:
        source = config_path
        if not os.path.isfile(config_path):
            if named:
                raise ConfigError(
                    f"config file {source} does not exist; fix the path given by "
                    f"--config-file or {CONFIG_ENV}"
                )
        else:
            toml = _toml()
            with translate(
                {
                    toml.TOMLDecodeError: ConfigError,
                    UnicodeDecodeError: ConfigError,
                    OSError: ConfigError,
                },
                doing=f"{source} is not valid TOML or cannot be read",
            ):
                with open(config_path, encoding="utf-8") as handle:
                    text = handle.read()
                # The project's own pyproject.toml, found by default, is read only when it
                # can hold our table: most hold none, and parsing them costs a pre-commit run.
                document = toml.loads(text) if named or _TABLE_NAME in text else {}
            tool = document.get("tool", {})
            table = tool.get("migration_guard", {}) if isinstance(tool, dict) else {}
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: tool.migration_guard must be a table")
            values = _validate(table, source)
    env_url = os.environ.get(URL_ENV)
    if env_url:
        values["url"] = env_url
    env_dir = os.environ.get(BACKUP_DIR_ENV)
    if env_dir:
        values["backup_dir"] = env_dir
    env_offsite = os.environ.get(OFFSITE_ENV)
    if env_offsite is not None and env_offsite.strip():
        values["offsite"] = offsite_locations(env_offsite.split(","), source=OFFSITE_ENV)
    _remote_backup_dir(values)
    env_lock_days = os.environ.get(OFFSITE_LOCK_DAYS_ENV)
    if env_lock_days is not None and env_lock_days.strip():
        values["offsite_lock_days"] = _lock_days(env_lock_days, source=OFFSITE_LOCK_DAYS_ENV)
    return Config(source=source, **values)


def read_section(
    table: Mapping[str, Any],
    *,
    where: str,
    types: Mapping[str, type | tuple[type, ...]],
    key_prefix: str = "",
) -> dict[str, Any]:
    """The one reader of a ``[tool.migration_guard.*]`` sub-table.

    Rejects unknown keys (naming the known ones) and values of the wrong type
    with a :class:`ConfigError`; returns the keys that were given. ``bool`` is
    never accepted where ``int`` is asked for. ``key_prefix`` (``"notify."``) is
    put before the key in the error's ``key`` and in a wrong type's message
    (``notify.webhook must be a string``), as a section whose other messages
    name its keys dotted wants; an unknown key is quoted as written, beside the
    known keys it may have meant.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in types:
            raise ConfigError(
                f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(types))}",
                key=f"{key_prefix}{key}",
            )
        expected = types[key]
        expected_tuple = expected if isinstance(expected, tuple) else (expected,)
        if (isinstance(value, bool) and bool not in expected_tuple) or not isinstance(
            value, expected_tuple
        ):
            names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in expected_tuple)
            raise ConfigError(
                f"{where}: {key_prefix}{key} must be {names}", key=f"{key_prefix}{key}"
            )
        values[key] = value
    return values


_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}

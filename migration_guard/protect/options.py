"""Protect's own settings: ``[tool.migration_guard.protect]``, the per-table
``[tool.migration_guard.tables.<table>]`` options and its environment variables.

Keys and types are checked by :func:`migration_guard.config.read_section`, the
one reader of configuration sub-tables; only the values' meaning is checked here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from migration_guard.config import APP_PASSWORD_ENV, APP_URL_ENV, Config, read_section
from migration_guard.errors import ConfigError, UsageError
from migration_guard.protect.model import DELETE_MODES, TableOptions

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = [
    "APP_PASSWORD_ENV",
    "APP_URL_ENV",
    "PROTECT_TYPES",
    "TABLE_OPTION_TYPES",
    "configured_app_users",
    "parse_table_options",
    "require_app_url",
]

#: The keys of ``[tool.migration_guard.protect]`` and their types.
PROTECT_TYPES: Mapping[str, type | tuple[type, ...]] = {"app_users": (list, str)}
#: The keys of ``[tool.migration_guard.tables.<table>]`` and their types.
TABLE_OPTION_TYPES: Mapping[str, type | tuple[type, ...]] = {"deletes": str}


def parse_table_options(section: Mapping[str, Any]) -> dict[str, TableOptions]:
    """Validate ``[tool.migration_guard.tables]``; keys are table names (case-insensitive)."""
    options: dict[str, TableOptions] = {}
    for table, values in section.items():
        where = f"[tool.migration_guard.tables.{table}]"
        if not isinstance(values, Mapping):
            raise ConfigError(f'{where} must be a table, e.g. deletes = "allow"', key="tables")
        given = read_section(values, where=where, types=TABLE_OPTION_TYPES)
        deletes = given.get("deletes", "block")
        if deletes not in DELETE_MODES:
            raise ConfigError(
                f"{where}: deletes must be one of {', '.join(DELETE_MODES)}, not {deletes!r}",
                key="tables",
            )
        options[str(table).lower()] = TableOptions(deletes=str(deletes))
    return options


def configured_app_users(config: Config) -> tuple[str, ...]:
    """``app_users`` of ``[tool.migration_guard.protect]``: the default for ``--app-user``."""
    given = read_section(
        config.sections.get("protect", {}),
        where="[tool.migration_guard.protect]",
        types=PROTECT_TYPES,
    )
    users = given.get("app_users", [])
    if isinstance(users, str):
        users = [users]
    if not all(isinstance(user, str) for user in users):
        raise ConfigError(
            'protect.app_users must be a list of accounts, e.g. app_users = ["app@%"]',
            key="protect.app_users",
        )
    return tuple(users)


def require_app_url(app_url: URL | None, account: str, form: str) -> URL:
    """The URL ``verify`` connects with as the application's ``account`` (``role``,
    ``account``); without one, a usage error naming both ways to give it (``form`` is
    the shape of ``--app-user``)."""
    if app_url is None:
        raise UsageError(
            f"protect verify connects as the application {account}: give --app-user {form} "
            f"with its password in {APP_PASSWORD_ENV}, or its whole URL in {APP_URL_ENV}"
        )
    return app_url

"""Reading the monitoring sub-tables (``notify``, ``monitor``, ``schedule``) of the config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migration_guard.config import Config, read_section


def where(config: Config, section: str) -> str:
    """How messages name the sub-table: ``pyproject.toml: [tool.migration_guard.notify]``."""
    return f"{config.source or 'config'}: [tool.migration_guard.{section}]"


def read(
    config: Config,
    section: str,
    table: Mapping[str, Any],
    types: Mapping[str, type | tuple[type, ...]],
) -> dict[str, Any]:
    """:func:`config.read_section` with the bad key dotted (``notify.webhook``), as every
    other setting error of these sections names it."""
    return read_section(table, where=where(config, section), types=types, key_prefix=f"{section}.")

"""One plain, typed function per command: ``fn(config, ...)``.

The CLI in :mod:`migration_guard.cli` is a thin layer over these; everything it
does is available from Python::

    from migration_guard.config import load_config
    from migration_guard.commands import check

    report = check(load_config(), ["migrations/versions"], dialect="mysql")
"""

from __future__ import annotations

from migration_guard.commands.check import check

__all__ = ["check"]

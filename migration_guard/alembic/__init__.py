"""Everything Alembic-specific: offline rendering (``plan``), the safe-upgrade
runner, statement interception, the lock, the ``env.py`` guard and the plugin.

``from migration_guard.alembic import guard`` is the one-liner for a user's
``env.py`` (see docs/alembic.md); it is imported lazily so that importing this
package stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["guard"]


def __getattr__(name: str) -> Any:
    if name == "guard":
        from migration_guard.alembic.env import guard

        return guard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""migration-guard: keeps schema migrations from destroying production data.

The public API is imported lazily so that ``migration-guard check`` (a
pre-commit hook) starts fast; import submodules such as
``migration_guard.commands`` or ``migration_guard.backup`` directly.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

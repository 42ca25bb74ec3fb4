"""``protect install|status|verify|remove``: protection inside the database.

Plain typed functions; the CLI is a thin layer over them and reaches protect
through this module only. The work is done by
:mod:`migration_guard.protect.operations`.
"""

from __future__ import annotations

from migration_guard.protect.operations import (
    ProtectResult,
    app_url_for,
    expand_patterns,
    protect_install,
    protect_remove,
    protect_status,
    protect_verify,
    protector_for,
)
from migration_guard.protect.options import APP_PASSWORD_ENV, APP_URL_ENV, configured_app_users
from migration_guard.protect.report import render_probes

__all__ = [
    "APP_PASSWORD_ENV",
    "APP_URL_ENV",
    "ProtectResult",
    "app_url_for",
    "configured_app_users",
    "expand_patterns",
    "protect_install",
    "protect_remove",
    "protect_status",
    "protect_verify",
    "protector_for",
    "render_probes",
]

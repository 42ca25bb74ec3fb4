"""``protect install|status|verify|remove``: protection inside the database.

Plain typed functions; the CLI is a thin layer over them. The work is done by
:mod:`migration_guard.protect.operations`.
"""

from __future__ import annotations

from migration_guard.protect.operations import (
    APP_PASSWORD_ENV,
    APP_URL_ENV,
    PROTECT_KEYS,
    ProtectResult,
    app_url_for,
    configured_app_users,
    expand_patterns,
    protect_install,
    protect_remove,
    protect_status,
    protect_verify,
    protector_for,
)

__all__ = [
    "APP_PASSWORD_ENV",
    "APP_URL_ENV",
    "PROTECT_KEYS",
    "ProtectResult",
    "app_url_for",
    "configured_app_users",
    "expand_patterns",
    "protect_install",
    "protect_remove",
    "protect_status",
    "protect_verify",
    "protector_for",
]

"""Install, check, verify and remove protection inside the database.

The engine behind ``commands.protect`` (and the upgrade guard's and the
monitor's drift checks). Protected tables are ``config.protected_tables`` plus
``protect`` patterns, expanded against the live schema.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError

from migration_guard.config import Config
from migration_guard.errors import UsageError, translate
from migration_guard.protect import PROTECTORS
from migration_guard.protect.base import Protector
from migration_guard.protect.model import Account, ProtectPlan
from migration_guard.protect.options import (
    APP_PASSWORD_ENV,
    APP_URL_ENV,
    configured_app_users,
    parse_table_options,
)
from migration_guard.protect.report import ProbeResult, ProtectStatus
from migration_guard.urls import resolve_url


@dataclass
class ProtectResult:
    """What ``protect install`` or ``protect remove`` planned and whether it ran."""

    plan: ProtectPlan
    applied: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "notes": list(self.notes), "plan": self.plan.to_dict()}

    def render(self) -> str:
        text = self.plan.render()
        if self.plan.is_empty:
            return text
        if self.applied:
            text += f"applied {len(self.plan.steps)} step(s)\n"
        else:
            text += "nothing was changed; run again with --yes to apply these statements\n"
        return text + "".join(f"{note}\n" for note in self.notes)


def protector_for(url: URL) -> Protector:
    """The protector for ``url``'s dialect; unsupported dialects are a usage error."""
    protector_class = PROTECTORS.get(url.get_backend_name())
    return protector_class()


def expand_patterns(
    patterns: Sequence[str], tables: Sequence[str], database: str | None = None
) -> list[str]:
    """Live tables matching any pattern (case-insensitive globs, ``db.table`` allowed).

    A pattern that matches no table is a :class:`UsageError` naming it.
    """
    selected: list[str] = []
    unmatched: list[str] = []
    for pattern in patterns:
        lowered = pattern.lower()
        hits = []
        for table in tables:
            name = table.lower()
            # A listed name may itself be qualified (``app.customers`` on PostgreSQL).
            if fnmatch.fnmatchcase(name, lowered) or (
                "." in lowered
                and database is not None
                and fnmatch.fnmatchcase(f"{database.lower()}.{name}", lowered)
            ):
                hits.append(table)
        if not hits:
            unmatched.append(pattern)
        selected.extend(hit for hit in hits if hit not in selected)
    if unmatched:
        raise UsageError(
            f"protected-table pattern(s) {', '.join(repr(p) for p in unmatched)} match no table "
            f"in the database; existing tables: {', '.join(tables) or '(none)'}"
        )
    return sorted(selected)


def _patterns(config: Config, protect: Sequence[str]) -> list[str]:
    patterns = list(config.protected_tables) + list(protect)
    if not patterns:
        raise UsageError(
            "no protected tables configured: pass --protect PATTERN or set protected_tables in "
            "[tool.migration_guard] (protecting every table with triggers is rarely intended)"
        )
    return patterns


def _accounts(config: Config, app_users: Sequence[str | Account]) -> list[Account]:
    accounts: list[Account] = []
    for item in app_users or configured_app_users(config):
        account = item if isinstance(item, Account) else Account.parse(item)
        if account not in accounts:
            accounts.append(account)
    return accounts


def protect_install(
    config: Config,
    *,
    url: str | URL | None = None,
    app_users: Sequence[str | Account] = (),
    protect: Sequence[str] = (),
    dry_run: bool = False,
    yes: bool = False,
) -> ProtectResult:
    """Plan protection of the configured tables; apply it only with ``yes`` and not ``dry_run``.

    Raises :class:`UsageError` for bad input before anything changes, and
    :class:`~migration_guard.errors.ProtectError` when applying fails (saying
    whether the completed steps were rolled back).
    """
    options = parse_table_options(config.sections.get("tables", {}))
    patterns = _patterns(config, protect)
    accounts = _accounts(config, app_users)
    database_url = resolve_url(config, url)
    protector = protector_for(database_url)
    with protector.connect(database_url) as conn:
        database = protector.database_name(conn)
        tables = expand_patterns(patterns, protector.list_tables(conn), database)
        plan = protector.plan_install(conn, tables, accounts, options)
        if dry_run or not yes or plan.is_empty:
            return ProtectResult(plan, applied=False)
        notes = protector.apply(conn, plan)
        return ProtectResult(plan, applied=True, notes=notes)


def protect_status(
    config: Config,
    *,
    url: str | URL | None = None,
    app_users: Sequence[str | Account] = (),
    protect: Sequence[str] = (),
    connection: Connection | None = None,
) -> ProtectStatus:
    """Per protected table: trigger intact, privilege guard per account, drift.

    ``connection`` reuses a caller's open connection to the same database (the
    upgrade guard checks the status on its own connection).
    """
    database_url = resolve_url(config, url)
    protector = protector_for(database_url)
    patterns = list(config.protected_tables) + list(protect)
    opened = (
        contextlib.nullcontext(connection)
        if connection is not None
        else protector.connect(database_url)
    )
    with opened as conn:
        live = protector.list_tables(conn)
        database = protector.database_name(conn)
        wanted: list[str] = []
        for pattern in patterns:
            try:
                wanted.extend(expand_patterns([pattern], live, database))
            except UsageError:
                continue  # a configured table that does not exist yet is not drift
        return protector.status(conn, _accounts(config, app_users), sorted(set(wanted)))


def app_url_for(config: Config, admin_url: URL, app_users: Sequence[str | Account]) -> URL | None:
    """The application account's URL from the environment, never from argv."""
    from_env = os.environ.get(APP_URL_ENV)
    if from_env:
        with translate(
            {ArgumentError: UsageError},
            doing=f"{APP_URL_ENV} is not a SQLAlchemy URL",
            secrets=(from_env,),
        ):
            app_url = make_url(from_env)
        return app_url
    accounts = _accounts(config, app_users)
    if not accounts:
        return None
    if len(accounts) > 1:
        raise UsageError(
            "protect verify probes one application account at a time; give one --app-user"
        )
    password = os.environ.get(APP_PASSWORD_ENV)
    return admin_url.set(username=accounts[0].user, password=password)


def protect_verify(
    config: Config,
    *,
    url: str | URL | None = None,
    app_users: Sequence[str | Account] = (),
) -> list[ProbeResult]:
    """Attempt the refused operations as the application account; harmless either way."""
    database_url = resolve_url(config, url)
    protector = protector_for(database_url)
    app_url = app_url_for(config, database_url, app_users) if protector.uses_accounts else None
    return protector.verify(database_url, app_url)


def protect_remove(
    config: Config,
    *,
    url: str | URL | None = None,
    app_users: Sequence[str | Account] = (),
    dry_run: bool = False,
    yes: bool = False,
) -> ProtectResult:
    """Drop the guard triggers and restore the grants recorded at install."""
    database_url = resolve_url(config, url)
    protector = protector_for(database_url)
    with protector.connect(database_url) as conn:
        plan = protector.plan_remove(conn, _accounts(config, app_users))
        if dry_run or not yes or plan.is_empty:
            return ProtectResult(plan, applied=False)
        notes = protector.apply(conn, plan)
        return ProtectResult(plan, applied=True, notes=notes)

"""``upgrade`` and ``downgrade``: Alembic migrations made all or nothing.

Both run Alembic with the project's own ``env.py`` under the guard of
:mod:`migration_guard.alembic.runner`: lock, plan, check, safety backup, migration with
every statement intercepted, and on failure a restore of the state from before the run
with a proof. The run's events go to the monitoring sink (record and notify); the
engine below only hands them over. See docs/upgrade.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from migration_guard.alembic.runner import (
    ConfirmCallback,
    GuardOptions,
    RestoreReport,
    UpgradeResult,
    parse_allowances,
    run_guarded,
)
from migration_guard.config import Config
from migration_guard.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["RestoreReport", "UpgradeResult", "downgrade", "upgrade"]


def upgrade(
    config: Config,
    revision: str = "head",
    *,
    alembic_config: str | None = None,
    x_args: Sequence[str] = (),
    protect: Sequence[str] = (),
    allow: Sequence[str] = (),
    reason: str | None = None,
    dry_run: bool = False,
    yes: bool = False,
    backup: str | None = None,
    confirm: ConfirmCallback | None = None,
    lock_timeout: float | None = None,
    connection: Connection | None = None,
) -> UpgradeResult:
    """Upgrade the database of the Alembic project to ``revision``, all or nothing.

    ``allow`` holds ``RULE:TABLE`` approvals (``reason`` required). ``backup`` is
    ``always``, ``destructive`` (default, from config) or ``never``. ``confirm(name)``
    asks the user to type a table (or database) name; without it and without ``yes``
    an approved destructive step is refused with a :class:`UsageError`.

    Raises :class:`~migration_guard.errors.BlockedMigration` (unapproved findings),
    :class:`~migration_guard.errors.LockTimeout` and usage errors before anything
    changed. A failure during the migration is restored; the result says so
    (``outcome`` ``restored`` or ``restore-failed``, exit code 1).

    ``connection`` is handed to an ``env.py`` that follows Alembic's cookbook
    pattern (``config.attributes["connection"]``); the guard then locks, backs up
    and restores the database of that connection. An ``env.py`` that ignores it
    is guarded on whatever connection it opens itself.
    """
    return _run(
        "upgrade",
        config,
        revision,
        alembic_config=alembic_config,
        x_args=x_args,
        protect=protect,
        allow=allow,
        reason=reason,
        dry_run=dry_run,
        yes=yes,
        backup=backup,
        confirm=confirm,
        lock_timeout=lock_timeout,
        connection=connection,
    )


def downgrade(
    config: Config,
    revision: str,
    *,
    alembic_config: str | None = None,
    x_args: Sequence[str] = (),
    protect: Sequence[str] = (),
    allow: Sequence[str] = (),
    reason: str | None = None,
    dry_run: bool = False,
    yes: bool = False,
    backup: str | None = None,
    confirm: ConfirmCallback | None = None,
    lock_timeout: float | None = None,
    connection: Connection | None = None,
) -> UpgradeResult:
    """Downgrade to ``revision`` under the same guard as :func:`upgrade`.

    Downgrades drop what upgrades created, so their ``downgrade()`` functions are
    checked, backed up and restored the same way.
    """
    if not revision:
        raise UsageError("downgrade needs a target revision, e.g. -1 or base")
    return _run(
        "downgrade",
        config,
        revision,
        alembic_config=alembic_config,
        x_args=x_args,
        protect=protect,
        allow=allow,
        reason=reason,
        dry_run=dry_run,
        yes=yes,
        backup=backup,
        confirm=confirm,
        lock_timeout=lock_timeout,
        connection=connection,
    )


def _run(
    command: str,
    config: Config,
    revision: str,
    *,
    alembic_config: str | None,
    x_args: Sequence[str],
    protect: Sequence[str],
    allow: Sequence[str],
    reason: str | None,
    dry_run: bool,
    yes: bool,
    backup: str | None,
    confirm: ConfirmCallback | None,
    lock_timeout: float | None,
    connection: Connection | None,
) -> UpgradeResult:
    from migration_guard.alembic.plan import load_alembic_config

    allowances = parse_allowances(allow, reason)
    if reason and not allow:
        raise UsageError("--reason goes with --allow RULE:TABLE; give the approval it explains")
    cfg = load_alembic_config(alembic_config or config.alembic_config)
    if connection is not None:
        cfg.attributes["connection"] = connection  # Alembic's cookbook pattern
    options = GuardOptions(
        command=command,
        target=revision,
        protect=tuple(protect),
        allow=tuple(allowances),
        dry_run=dry_run,
        yes=yes,
        backup=backup,
        confirm=confirm,
        lock_timeout=lock_timeout,
    )
    from migration_guard.monitoring.emit import sink

    return run_guarded(config, cfg, options, x_args=x_args, on_event=sink(config))

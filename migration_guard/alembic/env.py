"""The env.py guard: the safe upgrade for teams that keep typing ``alembic upgrade``.

In ``env.py``, wrap the migration run::

    from migration_guard.alembic.env import guard

    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with guard(context, connection):
            with context.begin_transaction():
                context.run_migrations()

A plain ``alembic upgrade`` then gets the same lock, check, safety backup, statement
interception and restore-with-proof as ``migration-guard upgrade``. Approvals come from
inline suppressions (``# migration-guard: allow RULE because: REASON``): there is no
``--allow`` on Alembic's command line, and running ``alembic upgrade`` is taken as the
confirmation. A failure is restored, reported on stderr and re-raised, so Alembic
still exits non-zero; so is one found by the checks after the last revision (the
foreign keys after a batch rebuild, a swallowed block), within the same command.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

from migration_guard.alembic.hooks import ACTIVE_RUNS
from migration_guard.alembic.results import UpgradeResult
from migration_guard.alembic.session import (
    DryRunComplete,
    GuardOptions,
    GuardSession,
    InterruptedRunRestored,
)
from migration_guard.config import Config, load_config
from migration_guard.errors import MigrationGuardError
from migration_guard.events import EventSink, registered_sink

log = logging.getLogger(__name__)

__all__ = ["guard"]


@contextlib.contextmanager
def guard(
    context: Any,
    connection: Any = None,
    *,
    config: Config | None = None,
    backup: str | None = None,
    report: Any = None,
    on_event: EventSink | None = None,
) -> Iterator[UpgradeResult]:
    """Guard the ``context.run_migrations()`` inside the ``with`` block.

    ``context`` is ``alembic.context`` (or an ``EnvironmentContext``); ``connection``
    is the one passed to ``context.configure`` (it is taken from the context when
    omitted). ``config`` defaults to ``[tool.migration_guard]`` of ./pyproject.toml or
    ``MIGRATION_GUARD_CONFIG``. ``report(text)`` receives the account of a failure
    (default: stderr). ``on_event`` receives the events of the run and its backups
    (default: the registered event sinks, i.e. the event log and the configured
    notifications).
    Offline (``--sql``) runs pass through unguarded.
    """
    del connection  # the one configured on the context is what runs the migrations
    migration_context = context.get_context()
    environment = getattr(migration_context, "environment_context", None) or context
    if ACTIVE_RUNS or migration_context.as_sql or migration_context.connection is None:
        # Offline, or `migration-guard upgrade` is already guarding this very run.
        yield UpgradeResult(command="alembic", target="")
        return
    options = GuardOptions(command="alembic", target="(env.py)", yes=True, backup=backup)
    config = config if config is not None else load_config()
    session = GuardSession(config, options, on_event=on_event or registered_sink(config))
    write = report or (lambda text: sys.stderr.write(text))
    try:
        connection = migration_context.connection
        was_in_transaction = connection.in_transaction()
        try:
            session.prepare(environment)
            if not was_in_transaction and connection.in_transaction():
                # Reading the heads auto-began a transaction; Alembic's begin_transaction()
                # would then think the caller owns one and never commit.
                connection.commit()
        except DryRunComplete:  # pragma: no cover - dry runs are a CLI feature
            yield session.result
            return
        except InterruptedRunRestored:
            # An earlier run died mid-migration; it was restored instead of migrating.
            from migration_guard.render.upgrade import render_text

            write(render_text(session.result))
            then = (
                "run the upgrade again"
                if session.result.outcome == "recovered"
                else "finish the restore by hand as the report says"
            )
            raise MigrationGuardError(
                f"{session.result.error}. Nothing of this run was migrated: {then}"
            ) from None
        detached = False
        try:
            yield session.result
            session.detach()
            detached = True
            # The end-of-run checks (the foreign keys after a batch rebuild, a block the
            # revision swallowed) fail here: restored now, as `upgrade` does.
            session.succeed()
        except BaseException as error:
            if not detached:
                session.detach()
            session.fail(error)
            from migration_guard.render.upgrade import render_text

            write(render_text(session.result))
            raise
    finally:
        session.release()
        session.audit()

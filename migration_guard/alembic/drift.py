"""The drift warning of a guarded run: the in-database protection no longer matches its
configuration. It warns, never stops, so that the guard does not depend on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from migration_guard.alembic.results import describe_failure

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migration_guard.alembic.session import GuardSession


def check_protection(session: GuardSession, conn: Connection, tables: Sequence[str]) -> None:
    """Warn, never stop, when the in-database protection is installed and has drifted."""
    from migration_guard.protect import PROTECTORS

    assert session.url is not None
    try:
        protector = PROTECTORS.get(session.url.get_backend_name())
        if not protector.installed(conn, tables):
            return  # never installed here: nothing can have drifted
        from migration_guard.protect.operations import protect_status

        status = protect_status(session.config, url=session.url, connection=conn)
    except Exception as exc:  # the guard must not depend on the protection being healthy
        session.result.notes.append(
            f"could not check the protection status: {describe_failure(exc)}"
        )
        return
    if status.installed and status.drifted:
        session.result.notes.append(
            "warning: the in-database protection has drifted from its configuration; "
            "run `migration-guard protect status` for details"
        )

"""What the dialects' migration locks share: the holder's description and the
heartbeat's question on a lock's own connection."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress

from sqlalchemy.engine import Connection


def lock_holder_text(
    user: str | None, host: str | None, pid: object = None, connection_id: object = None
) -> str:
    """``user@host, pid N, connection C`` with the unknown parts left out."""
    parts: list[str] = []
    if user or host:
        parts.append(f"{user or '?'}@{host or '?'}")
    if pid not in (None, ""):
        parts.append(f"pid {pid}")
    if connection_id not in (None, ""):
        parts.append(f"connection {connection_id}")
    return ", ".join(parts) or "an unknown holder"


def lock_query_true(conn: Connection, sql: str, params: Mapping[str, object]) -> bool:
    """Whether ``sql`` (one value) is true on a lock's own connection; False when that
    connection fails (a lost connection has released its lock). Ends the read's
    transaction either way, so the connection holds no snapshot between heartbeats."""
    import sqlalchemy as sa

    try:
        held = conn.execute(sa.text(sql), dict(params)).scalar()
        conn.commit()
    except sa.exc.SQLAlchemyError:
        with suppress(sa.exc.SQLAlchemyError):
            conn.rollback()
        return False
    return bool(held)

"""Record an event and notify about it: the one door through which events leave.

Engines never import this module; they are handed :func:`sink` ``(config)`` by
the command that calls them (see :data:`migration_guard.events.EventSink`).
The notification code (``smtplib``, ``urllib``) is imported only when a
``[tool.migration_guard.notify]`` section exists, so that every command without
notifications is spared its import.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

from migration_guard.config import Config
from migration_guard.events import Event, EventSink
from migration_guard.monitoring.eventlog import record

log = logging.getLogger("migration_guard.monitoring")

_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("mg_events_quiet", default=False)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Within this block :func:`emit` does nothing (a drill reports its own verify)."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def emit(config: Config, event: Event, *, create_location: bool = False) -> None:
    """Record ``event`` and send the notifications configured for it. Never raises."""
    if _quiet.get():
        return
    record(config, event, create_location=create_location)
    if event.interrupted or not config.sections.get("notify"):
        return  # nothing configured: spare every command the import of smtplib & co.
    try:
        from migration_guard.monitoring import notify

        notify.notify(config, event)
    except Exception as exc:  # pragma: no cover - notify() itself never raises
        log.warning("notification for %s failed: %s", event.name, exc)


def sink(config: Config, *, create_location: bool = True) -> EventSink:
    """The :data:`EventSink` a command hands down to an engine: record and notify.

    ``create_location`` defaults to True because engines report on the backup
    location they are about to create; a first failing backup must leave a trace.
    """

    def deliver(event: Event) -> None:
        emit(config, event, create_location=create_location)

    return deliver

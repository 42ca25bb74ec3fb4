"""The record of one thing that happened, and how lower layers hand it upward.

An :class:`Event` is plain data. Engines (``backup``, ``alembic``) build
events and pass them to an :data:`EventSink` they were given; they never
import ``monitoring``, which provides the sink that records and notifies
(``monitoring.emit.sink``). This module is in the bottom layer so that every
part can name the type.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from migration_guard.registry import Registry

log = logging.getLogger("migration_guard.events")

#: What an event says about the outcome; ``notify.on`` filters on these.
OUTCOMES = ("failure", "unhealthy", "recovered", "success")
SEVERITIES = {"failure": "error", "unhealthy": "error", "recovered": "info", "success": "info"}


@dataclass
class Event:
    """One thing that happened: ``subject`` (backup, prune, verify, drill, monitor, upgrade,
    notify) and ``outcome`` (one of :data:`OUTCOMES`)."""

    subject: str
    outcome: str
    summary: str
    details: list[str] = field(default_factory=list)
    backup_id: str | None = None
    timestamp: str = ""
    host: str = ""
    #: Extra facts: the backup type, durations, counts...
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.timestamp:
            # Full precision, as manifests' times: the health checks order a failure event
            # against the catalog's successes, often within the same second.
            now = datetime.now(timezone.utc).isoformat()
            self.timestamp = now.replace("+00:00", "Z")
        if not self.host:
            self.host = socket.gethostname()

    @property
    def name(self) -> str:
        """``backup.failure``, ``monitor.recovered``..."""
        return f"{self.subject}.{self.outcome}"

    @property
    def interrupted(self) -> bool:
        """The user interrupted the operation (Ctrl-C): record it, but notify nobody."""
        return bool(self.data.get("interrupted"))

    @property
    def severity(self) -> str:
        return SEVERITIES.get(self.outcome, "info")

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.name,
            "subject": self.subject,
            "outcome": self.outcome,
            "severity": self.severity,
            "summary": self.summary,
            "details": list(self.details),
            "backup_id": self.backup_id,
            "timestamp": self.timestamp,
            "host": self.host,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        subject, _, outcome = str(data.get("event", "")).partition(".")
        return cls(
            subject=str(data.get("subject") or subject or "unknown"),
            outcome=str(data.get("outcome") or outcome or "failure"),
            summary=str(data.get("summary", "")),
            details=[str(d) for d in data.get("details") or []],
            backup_id=data.get("backup_id"),
            timestamp=str(data.get("timestamp", "")),
            host=str(data.get("host", "")),
            data=dict(data.get("data") or {}),
        )


#: Where an engine hands its events: recording and notifying are the caller's business.
EventSink = Callable[[Event], None]

#: ``factory(config) -> EventSink``: a sink for runs no command started (the ``env.py``
#: guard of a plain ``alembic upgrade``). ``monitoring`` registers its recording and
#: notifying sink here as an entry point, so that no engine imports ``monitoring``.
SinkFactory = Callable[[Any], EventSink]
SINK_FACTORIES: Registry[SinkFactory] = Registry(
    "migration_guard.event_sinks",
    "event sink",
    builtins={"monitoring": "migration_guard.monitoring.emit:sink"},
)


def registered_sink(config: Any) -> EventSink:
    """One sink that hands each event to every registered sink; a failing one is logged."""
    sinks: list[EventSink] = []
    for name in SINK_FACTORIES:
        try:
            sinks.append(SINK_FACTORIES.get(name)(config))
        except Exception as exc:  # a broken plugin must not break the run it reports on
            log.warning("event sink %s is unavailable: %s", name, exc)

    def deliver(event: Event) -> None:
        for sink in sinks:
            try:
                sink(event)
            except Exception as exc:  # reporting never changes the outcome it reports
                log.warning("event sink failed for %s: %s", event.name, exc)

    return deliver


def discard(event: Event) -> None:
    """The sink for callers that want no events."""

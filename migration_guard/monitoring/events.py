"""Where the backup engine and the safe upgrade still import their reporting hooks.

A re-export only, kept until those callers receive an
:data:`~migration_guard.events.EventSink` (``monitoring.emit.sink``) from their
command instead: the event log lives in :mod:`.eventlog`, recording plus
notifying in :mod:`.emit`, the hooks in :mod:`.reports`.
"""

from __future__ import annotations

from migration_guard.events import OUTCOMES, SEVERITIES, Event
from migration_guard.monitoring.reports import report_operation, report_upgrade

__all__ = ["OUTCOMES", "SEVERITIES", "Event", "report_operation", "report_upgrade"]

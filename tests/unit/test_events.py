"""Events: recorded always, handed to the notifiers only when some are configured."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from migration_guard.config import Config
from migration_guard.events import Event
from migration_guard.monitoring import eventlog
from migration_guard.monitoring.emit import emit
from migration_guard.monitoring.eventlog import read_events


def test_without_notify_settings_an_event_is_recorded_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path))
    monkeypatch.delitem(sys.modules, "migration_guard.monitoring.notify", raising=False)
    emit(Config(), Event("backup", "success", "backup done"), create_location=True)
    assert [e.summary for e in read_events(Config())] == ["backup done"]
    assert "migration_guard.monitoring.notify" not in sys.modules


def test_with_notify_settings_the_notifiers_get_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.monitoring import notify as notify_module

    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path))
    seen: list[str] = []
    monkeypatch.setattr(notify_module, "notify", lambda config, event: seen.append(event.summary))
    config = Config(sections={"notify": {"webhook": "http://127.0.0.1:9/hook"}})
    emit(config, Event("backup", "failure", "backup failed"), create_location=True)
    assert seen == ["backup failed"]
    assert eventlog.read_events(config)[0].summary == "backup failed"


def test_the_sink_a_command_hands_down_records_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.monitoring.emit import sink

    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path / "new"))
    sink(Config())(Event("backup", "failure", "first backup failed"))
    assert [e.summary for e in read_events(Config())] == ["first backup failed"]

"""``migration_guard.commands``' backup functions: everything the backup CLI does, from Python."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from migration_guard import commands
from migration_guard.commands import backup as backup_commands
from migration_guard.config import BACKUP_DIR_ENV, KEY_ENV, Config
from migration_guard.events import Event
from migration_guard.monitoring.eventlog import read_events


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv(BACKUP_DIR_ENV, str(tmp_path / "backups"))
    monkeypatch.delenv(KEY_ENV, raising=False)
    return Config()


def make_database(path: Path) -> str:
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO users (name) VALUES ('ada'), ('grace');"
    )
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def test_every_backup_command_is_a_plain_function(config: Config, tmp_path: Path) -> None:
    source = make_database(tmp_path / "app.db")
    assert commands.keygen().startswith("mgk1:")

    manifest = commands.create_backup(config, url=source)
    assert list(manifest.tables) == ["users"]
    assert commands.backup_location(config) == tmp_path / "backups"
    assert [m.id for m in commands.list_backups(config)] == [manifest.id]
    assert commands.show_backup(config, manifest.id[:20]).id == manifest.id
    assert commands.verify_backup(config, manifest.id).ok
    assert commands.prune_backups(config, dry_run=True).keep_ids == [manifest.id]

    result = commands.restore(config, manifest.id, url=f"sqlite:///{tmp_path / 'copy.db'}")
    assert result.ok and result.tables == ["users"]
    written = commands.decrypt(config, manifest.id, tmp_path / "plain.db")
    assert written == (tmp_path / "plain.db").stat().st_size > 0


def test_outcomes_are_recorded_once(config: Config, tmp_path: Path) -> None:
    manifest = commands.create_backup(config, url=make_database(tmp_path / "app.db"))
    commands.verify_backup(config, manifest.id)
    commands.prune_backups(config, dry_run=True)  # deciding is not an outcome
    commands.prune_backups(config)
    names = sorted(event.name for event in read_events(config))
    assert names == ["backup.success", "prune.success", "verify.success"]


def test_the_sink_the_commands_hand_to_the_engine_records(config: Config) -> None:
    sink = backup_commands._event_sink(config)
    sink(Event("backup", "success", "done by the engine"))
    assert [event.summary for event in read_events(config)] == ["done by the engine"]

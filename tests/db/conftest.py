"""Fixtures shared by the database tests of the guarded upgrade."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from migration_guard.config import Config
from tests.db.upgrade_project import Project, make_project, seed

#: What a backup test's configuration must not take from the developer's environment.
KEY_VARIABLES = (
    "MIGRATION_GUARD_KEY",
    "MIGRATION_GUARD_KEY_FILE",
    "MIGRATION_GUARD_PASSPHRASE",
    "MIGRATION_GUARD_RECIPIENTS",
    "MIGRATION_GUARD_RECIPIENTS_FILE",
    "MIGRATION_GUARD_URL",
    "MIGRATION_GUARD_CONFIG",
)


@pytest.fixture
def backup_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own backup directory; no key, URL or config file from the environment."""
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "backups"
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(directory))
    monkeypatch.chdir(tmp_path)
    return directory


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory of this process and its children, empty, for the test to
    look into (``tempfile`` caches the first one it found, so ``TMPDIR`` alone does not
    reach this process's scratch directories)."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def config(backup_dir: Path) -> Config:
    """The configuration of :func:`backup_dir` (a module may define its own ``config``)."""
    return Config()


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Project:
    """The example project on ``db_url`` (SQLite and MariaDB), seeded."""
    made = make_project(tmp_path / "proj", db_url)
    seed(made)
    return made


@pytest.fixture
def mysql_project(tmp_path: Path, mysql_url: str) -> Project:
    """The example project on a fresh MariaDB database, seeded."""
    made = make_project(tmp_path / "proj", mysql_url)
    seed(made)
    return made
